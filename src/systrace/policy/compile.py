"""What the kernel can decide for a set of policies (the fast path).

One seccomp filter serves every binary the command may exec, and it cannot be changed
after exec. So a syscall is decided in the kernel only when every policy that may apply
decides it the same way without looking at anything the kernel cannot see:

- a plain `permit`, `deny[errno]` or `kill` rule (no `log`, no predicate) as the first
  rule for the real syscall name, with no alias in play -> ALLOW / ERRNO / KILL_PROCESS;
- filter rules whose symbols are all integer arguments compared with eq/neq (prot, fd,
  uid, gid, signame, cmd, sockdom, socktype, mode) -> BPF argument tests, falling back
  to USER_NOTIF for the values no rule names.
Everything else goes to the supervisor. Used with -a (enforce): binaries without a
policy are not allowed to run there, so the loaded policies are all that apply; and with
-A, for every policy of the store and the base (wiring.learning_plan).
"""

from __future__ import annotations

from ..kernel import abi
from ..kernel.filter import U64, ArgRule, ArgTest, FilterPlan
from ..kernel.plain_signal import SIGNAL_NUMBERS
from ..kernel.syscalls_x86_64 import SYSCALLS
from ..translate import formats
from ..translate.table import TRANSLATORS, IntArg, PidArg, arg_names
from . import ast, errnos

NOTIFY = abi.RET_USER_NOTIF
MAX_ARG_RULES = 64


def kernel_plan(policies: list[ast.Policy]) -> FilterPlan:
    plan = FilterPlan(default=NOTIFY)
    if not policies:
        return plan
    by_syscall = [_rules_by_syscall(policy) for policy in policies]
    # a call some policy has no rule for is that policy's unmatched call, which only the
    # supervisor decides (it is logged): only the calls every policy names can share rules
    named = set(by_syscall[0]).intersection(*by_syscall[1:])
    for name, nr in SYSCALLS.items():
        if name not in named:
            continue
        decisions = [_decide(rules[name], name) for rules in by_syscall]
        first = decisions[0]
        if type(first) is int and all(decision == first for decision in decisions[1:]):
            if first != NOTIFY:  # one plain action in every policy (most of a learned base): what the prefix gives
                plan.actions[nr] = first
            continue
        shared = _shared_prefix(decisions)
        if not shared:
            continue
        if len(shared) == 1 and not shared[0].tests:
            if shared[0].action != NOTIFY:
                plan.actions[nr] = shared[0].action
        else:
            plan.arg_rules[nr] = shared
    return plan


def _shared_prefix(decisions: list) -> tuple[ArgRule, ...]:
    """The argument rules every policy starts with. First match wins, so a call one of
    them matches gets the same action from every policy; any other goes to USER_NOTIF.
    So policies that differ only further down (a learned `fd eq "3" and cmd eq
    "F_SETOWN"` below the base's fcntl rule) still share what comes first."""
    lists = [() if d is None else (ArgRule((), d),) if isinstance(d, int) else d for d in decisions]
    shared: list[ArgRule] = []
    for rules in zip(*lists, strict=False):  # the shortest list bounds the prefix
        if any(rule != rules[0] for rule in rules[1:]):
            break
        shared.append(rules[0])
    return tuple(shared)


def _rules_by_syscall(policy: ast.Policy) -> dict[str, list[ast.Rule]]:
    out: dict[str, list[ast.Rule]] = {}
    for rule in policy.rules:
        out.setdefault(rule.syscall, []).append(rule)
    return out


def _decide(rules: list[ast.Rule], syscall: str):
    """An int return value, a tuple of ArgRules, or None (the supervisor decides), from a
    policy's rules for `syscall` in order.

    Rules for the real name are evaluated before alias rules, so whatever they decide the
    kernel may decide too; values no rule names fall to USER_NOTIF (the plan's default),
    where the supervisor evaluates the real-name and alias rules in order."""
    if not rules:
        return None  # unmatched: enforce denies *and logs*, which needs the supervisor
    arg_rules: list[ArgRule] = []
    # Where the kernel still decides as the supervisor would: after a rule compiled in
    # part (a pidname test on pid 0), only the calls whose pid is 0 (the rule's hidden
    # part, a pid naming the caller by number, never is); the rest go to the supervisor.
    within: list[tuple[ArgTest, ...]] = [()]
    names: frozenset[str] | None = None  # (made for the first rule that tests something)
    for rule in rules:
        if rule.expr is not None:
            if names is None:
                names = frozenset(arg_names(syscall))
            if _known(rule.expr, names) is False:
                continue  # never matches (the parser warned): the supervisor would skip it too
        action = _plain_action(rule.action)
        if action is None:
            break  # this rule needs the supervisor; so does everything after it
        if rule.expr is None:
            if within == [()]:
                return tuple(arg_rules) + (ArgRule((), action),) if arg_rules else action
            arg_rules.extend(ArgRule(tests, action) for tests in within)
            break
        partial: list[list[ArgTest]] = []
        alternatives = _compile_expr(rule.expr, syscall, partial)
        if alternatives is None:
            break
        arg_rules.extend(ArgRule(tests, action) for tests in _restrict(alternatives, within))
        if len(arg_rules) > MAX_ARG_RULES:
            return None
        for domain in partial:  # the values for which that rule's tests are exact
            within = _restrict(within, [(test,) for test in domain])
    return tuple(arg_rules) or None


def _known(expr: ast.Expr, names: frozenset[str]) -> bool | None:
    """The expression's value whatever the call's arguments, if it has one: a test of
    an argument the call never has is false (policy/match.py), so is `a and` it, and
    `not` it is true. None: it depends on the arguments."""
    if isinstance(expr, ast.TrueExpr):
        return True
    if isinstance(expr, ast.Symbol):
        return False if expr.name not in names else None
    if isinstance(expr, ast.Not):
        inner = _known(expr.expr, names)
        return None if inner is None else not inner
    left, right = _known(expr.left, names), _known(expr.right, names)
    if expr.op == "and":
        return False if False in (left, right) else (True if left is True and right is True else None)
    return True if True in (left, right) else (False if left is False and right is False else None)


def _restrict(alternatives: list[tuple[ArgTest, ...]], domain: list[tuple[ArgTest, ...]]
              ) -> list[tuple[ArgTest, ...]]:
    """Each alternative and-ed with each of `domain`'s (contradictions dropped)."""
    out = []
    for tests in alternatives:
        for more in domain:
            combined = tests + tuple(test for test in more if test not in tests)
            if not _contradicts(combined) and combined not in out:
                out.append(combined)
    return out


def _contradicts(tests: tuple[ArgTest, ...]) -> bool:
    """Two `eq` tests of one argument on different values never hold together."""
    equal: dict[tuple[int, int], int] = {}
    for test in tests:
        if test.op == "eq" and test.mask == U64:
            key = (test.index, test.width)
            if equal.setdefault(key, test.value) != test.value:
                return True
    return False


def _plain_action(action: ast.Action) -> int | None:
    if action.log or action.predicate is not None or action.elevate is not None or action.flag is not None:
        return None
    if action.verdict == "permit":
        return abi.RET_ALLOW
    if action.verdict == "deny":
        return abi.ret_errno((errnos.lookup(action.errno) or 1) if action.errno else 1)
    if action.verdict == "kill":
        return abi.RET_KILL_PROCESS
    return None


def _compile_expr(expr: ast.Expr, syscall: str, partial: list[list[ArgTest]]
                  ) -> list[tuple[ArgTest, ...]] | None:
    """Disjunctive normal form of kernel tests; [] means never true; None: not compilable.
    When the tests hold only for some of the values for which the expression holds (a
    pid the kernel can name only when it is 0), `partial` gets the tests of the values
    for which they are exact (pid eq 0): a negation of such a part is never compiled."""
    if isinstance(expr, ast.TrueExpr):
        return [()]
    if isinstance(expr, ast.Symbol):
        return _compile_symbol(expr, syscall, negate=False, partial=partial)
    if isinstance(expr, ast.Not):
        if isinstance(expr.expr, ast.Symbol):
            return _compile_symbol(expr.expr, syscall, negate=True, partial=partial)
        return None
    left = _compile_expr(expr.left, syscall, partial)
    right = _compile_expr(expr.right, syscall, partial)
    if left is None or right is None:
        return None
    if expr.op == "or":
        return left + right
    product = [a + b for a in left for b in right]
    return product if len(product) <= MAX_ARG_RULES else None


def _compile_symbol(symbol: ast.Symbol, syscall: str, negate: bool, partial: list[list[ArgTest]]
                    ) -> list[tuple[ArgTest, ...]] | None:
    if symbol.name not in arg_names(syscall):  # the call never has it: false, whatever the operator
        return [()] if negate else []
    if symbol.op not in ("eq", "neq"):
        return None
    if symbol.name == "pidname":
        return _compile_pidname(symbol, syscall, (symbol.op == "eq") != negate, partial)
    specs = [spec for spec in TRANSLATORS.get(syscall, ()) if isinstance(spec, IntArg) and spec.name == symbol.name]
    all_names = [getattr(spec, "name", "filename") for spec in TRANSLATORS.get(syscall, ())]
    index = symbol.index or 0
    if index >= len(specs) or all_names.count(symbol.name) != len(specs):
        return None  # the argument is absent, or shares its name with a non-integer one
    spec = specs[index]
    equal = symbol.op == "eq"
    if negate:
        equal = not equal
    if spec.format is formats.set_or_get:  # NULL is "get", any other pointer "set"
        wanted = symbol.value
        if wanted not in ("get", "set"):
            return [] if equal else [()]
        null = (wanted == "get") == equal
        return [(ArgTest(spec.index, "eq" if null else "ne", 0, width=spec.width),)]
    if spec.format not in INVERTIBLE:
        return None  # no integer spells this value: the supervisor decides
    value = invert(spec.format, symbol.value, spec.width)
    if value is None:  # the text is no value's spelling: eq never holds, neq always does
        return [] if equal else [()]
    return [(ArgTest(spec.index, "eq" if equal else "ne", value, width=spec.width),)]


# What translate/pids.py names these numbers whoever calls (a layer above: the same text,
# tests/test_plan_agreement_pids.py checks it)
CONSTANT_PIDNAMES = {0: "<own process>"}
CONSTANT_GROUP_PIDNAMES = {0: "<own process group>", 0xFFFFFFFF: "<every process: -1>"}


def _compile_pidname(symbol: ast.Symbol, syscall: str, equal: bool, partial: list[list[ArgTest]]
                     ) -> list[tuple[ArgTest, ...]] | None:
    """`pidname` names a process by its relation to the caller, which only the supervisor
    can tell, except for the numbers whose name never depends on the caller: 0 (the
    caller itself; for kill its process group) and, for kill, -1. Tests on those hold
    for some of the values only (`partial`)."""
    specs = [spec for spec in TRANSLATORS.get(syscall, ()) if isinstance(spec, PidArg)]
    index = symbol.index or 0
    if index >= len(specs) or specs[index].pidfd:
        return None  # absent, or a descriptor: the process it refers to is the supervisor's to find
    spec = specs[index]
    constant = CONSTANT_GROUP_PIDNAMES if spec.group else CONSTANT_PIDNAMES
    tests = {value: ArgTest(spec.index, "eq", value, width=32) for value in constant}
    partial.append(list(tests.values()))
    return [(tests[value],) for value, name in constant.items()
            if (name == symbol.value) == equal]


INVERTIBLE = (formats.decimal, formats.mode, formats.prot, formats.signame, formats.fcntl_cmd, formats.sockdom,
              formats.socktype, formats.ioctl_request, formats.ptrace_request, formats.rlimit, formats.hexadecimal,
              formats.hexadecimal64)


def invert(format_function, text: str, width: int = 32) -> int | None:
    """The integer whose formatted form is `text` exactly (eq compares exactly), if any."""
    candidate = _parse(format_function, text)
    if candidate is None:
        return None
    if format_function(candidate) != text:
        return None
    return candidate & ((1 << width) - 1)


def _parse(format_function, text: str) -> int | None:
    upper = text.upper()
    try:
        if format_function in (formats.decimal,):
            return int(text, 10)
        if format_function is formats.mode:
            return int(text, 8)
        if format_function is formats.prot:
            if upper == "PROT_NONE":
                return 0
            bits = dict(formats.PROT_NAMES)
            return sum(bits[part] for part in upper.split("|"))
        if format_function is formats.signame:
            return 0 if upper == "SIG0" else SIGNAL_NUMBERS[upper]
        if format_function is formats.fcntl_cmd:
            reverse = {name: number for number, name in formats.FCNTL_COMMANDS.items()}
            return reverse[upper] if upper in reverse else int(text)
        for function, names in ((formats.ioctl_request, formats.IOCTL_REQUESTS),
                                (formats.ptrace_request, formats.PTRACE_REQUESTS)):
            if format_function is function:
                reverse = {name: number for number, name in names.items()}
                return reverse[upper] if upper in reverse else int(text, 16)
        if format_function is formats.rlimit:
            return formats.RLIMITS.index(upper) if upper in formats.RLIMITS else int(upper[len("RLIMIT_"):])
        if format_function in (formats.hexadecimal, formats.hexadecimal64):
            return int(text, 16)
        if format_function in (formats.sockdom, formats.socktype):
            import socket  # only for socket rules (start-up time)
        if format_function is formats.sockdom:
            return int(getattr(socket, upper)) if upper.startswith("AF_") else None
        if format_function is formats.socktype:
            parts = upper.split("|")
            total = int(getattr(socket, parts[0]))
            for part in parts[1:]:
                total |= int(getattr(socket, part))
            return total
    except (KeyError, ValueError, AttributeError):
        return None
    return None
