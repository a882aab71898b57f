"""A policy prepared for fast evaluation: rules indexed by syscall name, values expanded
and case-folded once, and runs of plain `name eq "value"` rules turned into dictionary
lookups. First-match order is kept exactly:

- every plain `eq` rule of a syscall is in one dictionary per argument name, which gives
  the earliest such rule for a value in one lookup, wherever it is in the policy (a
  learned policy has thousands, split into runs by the pattern rules between them);
- only the other rules before that one are evaluated, in order: the first that holds
  wins, else the literal one does;
- a pattern that can only hold for values starting with a fixed string (`re "^/usr/..."`,
  `match "/usr/*"`) is skipped with one `startswith`, and consecutive patterns on the
  same argument share their common prefix: a block of learned patterns below one
  directory costs one test for a value elsewhere.

A syscall's index is built the first time a call of it is matched: until then its rules
wait, in order, in a list (a learned policy's base names about 190 calls, of which a run
like `true` asks about three; building all of them cost about a millisecond of its
first call).
"""

from __future__ import annotations

from . import ast
from .match import Unreadable, evaluate

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    from collections.abc import Callable, Mapping, Sequence

    Args = Mapping[str, Sequence[str]]
_NO_PREFIX = None


class _EqRun:
    """Consecutive rules `NAME eq "VALUE" then ...` with no predicate: one lookup."""

    __slots__ = ("name", "first")

    def __init__(self, name: str, first: dict[str, ast.Rule]):
        self.name = name
        self.first = first  # case-folded value -> the earliest rule with it


class _General:
    """A rule evaluated on its own. `need`: (argument, index, prefix) when the rule can
    only hold for a value of that argument starting with `prefix` (case-sensitively)."""

    __slots__ = ("rule", "need")

    def __init__(self, rule: ast.Rule, need: tuple[str, int, str] | None):
        self.rule = rule
        self.need = need


class _Block:
    """Consecutive general rules that each need a prefix of the same argument: skipped
    as a whole when the value does not start with their common prefix."""

    __slots__ = ("name", "index", "prefix", "rules", "last")

    def __init__(self, first: _General, position: int):
        assert first.need is not None
        self.name, self.index, self.prefix = first.need
        self.rules = [first]
        self.last = position  # the step of its last rule

    def add(self, general: _General, position: int) -> bool:
        """Take the rule at step `position` if it follows this block's last one directly
        and needs a prefix of the same argument."""
        need = general.need
        if need is None or position != self.last + 1 or need[0] != self.name or need[1] != self.index:
            return False
        self.rules.append(general)
        self.prefix = _common_prefix(self.prefix, need[2])
        self.last = position
        return True


class _Index:
    """One syscall's rules: the steps in policy order, the literal dictionaries by
    argument name, and the general steps with their positions."""

    __slots__ = ("steps", "literal", "general")

    def __init__(self) -> None:
        self.steps: list[_EqRun | _General] = []
        self.literal: dict[str, dict[str, tuple[int, ast.Rule]]] = {}  # name -> value -> (step, rule)
        self.general: list[tuple[int, _General | _Block]] = []  # (position, step) of the other rules


class CompiledPolicy:
    def __init__(self, policy: ast.Policy, expand: Callable[[str], str]):
        self.policy = policy
        self.expand = expand
        self.version = 0  # how many of the policy's lines are compiled
        self._last: ast.Line | None = None  # the last of them, to notice lines inserted before it
        self.rule_count = 0  # the question's "filters"
        # rules whose `if user/group` names one (a lookup in the user database at each
        # match): then a match depends on more than the arguments and the ids
        self.named_predicates = 0
        self.by_syscall: dict[str, _Index] = {}
        self._waiting: dict[str, list[ast.Rule]] = {}  # the rules of syscalls not indexed yet, in order
        self.catch_up()

    def catch_up(self) -> bool:
        """Compile the lines appended since the last call (learning appends one rule at a
        time: recompiling everything for each would make -A quadratic). False when the
        policy changed in another way: then it must be compiled anew."""
        lines = self.policy.lines
        if self.version == len(lines) and (not lines or lines[-1] is self._last):
            return True  # nothing appended (every call of a run that learns nothing)
        if self.version and (len(lines) < self.version or lines[self.version - 1] is not self._last):
            return False
        indexed, waiting = self.by_syscall, self._waiting
        for line in lines[self.version:]:
            if isinstance(line, ast.Rule):
                self.rule_count += 1
                predicate = line.action.predicate
                if predicate is not None and not predicate.value.isdigit():
                    self.named_predicates += 1
                if line.syscall in indexed:
                    self._add(indexed[line.syscall], line)
                else:
                    waiting.setdefault(line.syscall, []).append(line)
        self.version = len(lines)
        self._last = lines[-1] if lines else None
        return True

    def _index(self, syscall: str) -> _Index | None:
        """The syscall's index, built now from its waiting rules if need be (None: no rule)."""
        index = self.by_syscall.get(syscall)
        if index is None:
            rules = self._waiting.pop(syscall, None)
            if rules is None:
                return None
            index = self.by_syscall[syscall] = _Index()
            for rule in rules:
                self._add(index, rule)
        return index

    def _add(self, index: _Index, rule: ast.Rule) -> None:
        """Appending keeps first-match order: the new rule comes after every other."""
        steps = index.steps
        if rule.expr is None:  # `permit` alone (most of a learned policy's base): always holds
            general = _General(rule, None)
            steps.append(general)
            index.general.append((len(steps) - 1, general))
            return
        symbol = _plain_eq(rule, self.expand)
        if symbol is None:
            expanded = _expanded(rule, self.expand)
            general = _General(expanded, _need(expanded))
            steps.append(general)
            position = len(steps) - 1
            last = index.general[-1][1] if index.general else None
            if isinstance(last, _Block) and last.add(general, position):
                return  # the block holds it (the block's position is its first rule's)
            index.general.append((position, _Block(general, position) if general.need is not None else general))
            return
        key = symbol.value
        if steps and isinstance(steps[-1], _EqRun) and steps[-1].name == symbol.name:
            steps[-1].first.setdefault(key, rule)
        else:
            steps.append(_EqRun(symbol.name, {key: rule}))
        index.literal.setdefault(symbol.name, {}).setdefault(key, (len(steps) - 1, rule))

    def first_match(self, syscall: str, args: Args, predicate_ok: Callable[[ast.Predicate], bool],
                    accept: Callable[[ast.Rule], bool] | None = None) -> ast.Rule | None:
        """The first rule for `syscall` that matches `args`; with `accept`, the first such
        rule among those `accept` takes (plain first-name rules aside: only the two-name
        check of decide/policy.py uses it, for other names)."""
        index = self._index(syscall)
        if index is None:
            return None
        limit, found = len(index.steps), None
        if accept is None:
            for name, keys in index.literal.items():  # the earliest literal rule that holds
                values = args.get(name)
                if values and not isinstance(values[0], Unreadable):
                    hit = keys.get(values[0])
                    if hit is not None and hit[0] < limit:
                        limit, found = hit
        for position, step in index.general:  # the other rules before it, in order
            if position >= limit:
                break
            if isinstance(step, _Block):
                values = args.get(step.name)
                if not values or step.index >= len(values) or not values[step.index].startswith(step.prefix):
                    continue
                for general in step.rules:
                    rule = _holds(general, args, predicate_ok, accept)
                    if rule is not None:
                        return rule
            else:
                rule = _holds(step, args, predicate_ok, accept)
                if rule is not None:
                    return rule
        return found


def _holds(general: _General, args: Args, predicate_ok: Callable[[ast.Predicate], bool],
           accept: Callable[[ast.Rule], bool] | None) -> ast.Rule | None:
    rule = general.rule
    if accept is not None and not accept(rule):
        return None
    need = general.need
    if need is not None:
        values = args.get(need[0])
        if not values or need[1] >= len(values) or not values[need[1]].startswith(need[2]):
            return None  # (an unreadable value starts with nothing a rule could need either way)
    if rule.expr is not None and not evaluate(rule.expr, args):
        return None
    if rule.action.predicate is None or predicate_ok(rule.action.predicate):
        return rule
    return None


def _common_prefix(a: str, b: str) -> str:
    length = min(len(a), len(b))
    for i in range(length):
        if a[i] != b[i]:
            return a[:i]
    return a[:length]


_RE_SPECIAL = set(".^$*+?{}[]\\|()")
_QUANTIFIERS = set("*+?{")


def _need(rule: ast.Rule) -> tuple[str, int, str] | None:
    """(argument, index, prefix) when the rule holds only for a value of that argument
    starting with `prefix`: a symbol (alone, or in an `and`) whose operator is `re` with
    a pattern anchored at the start, or `match` (anchored by nature), with a literal
    start. None when there is no such start (the rule is evaluated on every call)."""
    expr = rule.expr
    stack = [expr] if expr is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, ast.BinOp) and current.op == "and":
            stack.extend((current.right, current.left))
        elif isinstance(current, ast.Symbol):
            prefix = _literal_start(current.op, current.value)
            if prefix:
                return (current.name, current.index or 0, prefix)
    return _NO_PREFIX


def _literal_start(op: str, pattern: str) -> str:
    """The fixed start every value the pattern matches has ("" if none)."""
    out: list[str] = []
    if op == "match":  # fnmatch: up to the first wildcard or escape (compile_fnmatch)
        for char in pattern:
            if char in "*?[\\":
                break
            out.append(char)
        return "".join(out)
    if op != "re" or not pattern.startswith("^") or "|" in pattern:
        return ""  # unanchored, or an alternation that could start anywhere
    index = 1
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern) or pattern[index + 1].isalnum() or pattern[index + 1] in "<>`'":
                break  # \w, \1, \<...: not a literal (match.py _ERE_ESCAPES)
            literal, step = pattern[index + 1], 2
        elif char in _RE_SPECIAL:
            break
        else:
            literal, step = char, 1
        following = pattern[index + step] if index + step < len(pattern) else ""
        if following in _QUANTIFIERS:
            break  # "ab?" : the b may be absent (or repeated)
        out.append(literal)
        index += step
    return "".join(out)


def _plain_eq(rule: ast.Rule, expand: Callable[[str], str]) -> ast.Symbol | None:
    expr = rule.expr
    if not isinstance(expr, ast.Symbol) or expr.op != "eq" or expr.index not in (None, 0) or rule.action.predicate:
        return None
    return ast.Symbol(expr.name, None, "eq", expand(expr.value))


def _expanded(rule: ast.Rule, expand: Callable[[str], str]) -> ast.Rule:
    """The rule with $VARIABLES substituted in its values (they are fixed for a run)."""
    if rule.expr is None:
        return rule
    return ast.Rule(rule.emulation, rule.syscall, _expand_expr(rule.expr, expand), rule.action)


def _expand_expr(expr: ast.Expr, expand: Callable[[str], str]) -> ast.Expr:
    if isinstance(expr, ast.Symbol):
        return ast.Symbol(expr.name, expr.index, expr.op, expand(expr.value))
    if isinstance(expr, ast.Not):
        return ast.Not(_expand_expr(expr.expr, expand))
    if isinstance(expr, ast.BinOp):
        return ast.BinOp(expr.op, _expand_expr(expr.left, expand), _expand_expr(expr.right, expand))
    return expr
