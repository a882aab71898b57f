"""The fallbacks that decide a call no rule matched: learn (-A) and enforce (-a, in
enforce.py: a run that enforces does not import what learning needs)."""

from __future__ import annotations

from ..facts import ROWS
from ..policy import ast
from ..policy.errors import printable
from ..policy.match import Unreadable
from ..policy.printer import rule_text
from . import PERMIT, Decision
from .enforce import Enforce as Enforce  # (its home was here)
from .generalise import EXCL, MAX_REMEMBERED, NOT_CREATED, NOTED_CALLS, MadeUp, learned_symbol, may_be_made_up
from .generalise import learned_args as without_descriptor_numbers

MAX_REPORTED = 100000  # learned rules remembered for the report of a run

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..call import Call
    from ..policy.store import Store, StoredPolicy


class Learn:
    """-A: an unmatched call is permitted and recorded in the binary's policy as a rule on
    its translated arguments (`filename eq "/x" then permit` for an aliased call), with
    what the run made up generalised (decide/generalise.py); a plain `permit` when
    nothing is translated."""

    reads_arguments_of = None  # every call: what it made up, what a rule names (translate/stage.py)

    def __init__(self, store: Store, use_aliases: bool = True, add_base: bool = False):
        self.store = store
        self.add_base = add_base  # --add-base: existing policies without the base get it too
        self.policy_for: Callable[[Call], StoredPolicy | None] | None = None  # with add_base: the policy decider's
        self.use_aliases = use_aliases
        self.permit = Decision(PERMIT, source="learn")
        self.made_up = MadeUp()
        self.learned: list[str] = []  # "binary: rule" this run added (the convergence mode reports them)
        self.literal: dict[str, list[tuple[StoredPolicy, str, list[tuple[str, str]]]]] = {}
        self.remembered = 0
        self.based: set[int] = set()  # policies this run started from the base (or left without it)
        self.notices: list[str] = []  # for the caller to print at the end: policies left without the base
        self._base: list[ast.Rule] | None = None

    def observe(self, call: Call) -> None:
        """Note what the call makes up: every call, also those a rule permits (a rename a
        learned rule covers still says its source was temporary)."""
        made_up = self.made_up
        made_up.note_pids((call.tgid, call.tid, call.ppid))
        if self.add_base and self.policy_for is not None and not call.no_learn:
            stored = self.policy_for(call)  # asked for: every policy the run uses, learning or not
            if stored is not None and id(stored) not in self.based:
                self._start_from_base(stored, call)
        if call.name not in NOTED_CALLS:
            return
        for component in made_up.note(call.name, list(call.translated)):  # type: ignore[arg-type]
            self.relearn(component)

    def decide(self, call: Call) -> Decision:
        self.observe(call)
        stored = call.policy
        if stored is not None and not call.ask and not call.no_learn:
            if self._start_from_base(stored, call):
                return self.permit
            syscall, args = learned_call(call, self.use_aliases)
            if not any(isinstance(value, Unreadable) for _, value in args):  # a rule on it never matches
                self.add(stored, syscall, args)
        return self.permit

    def _start_from_base(self, stored, call: Call) -> bool:
        """A policy this run creates starts with the base (decide/base.py); True when the
        base permits this call (it was decided before the base was there). An existing
        policy without it (hand-written, or learned before the base existed) gets it only
        with --add-base: adding permits to it is the user's choice; else one notice."""
        if id(stored) in self.based:
            return False
        from .base import BASE_COMMENT, base_rules, covers, has_base

        self.based.add(id(stored))
        if stored.path is not None or stored.policy.lines:
            if has_base(stored.policy) or not stored.writable:
                return False  # one read from -f or /etc/systrace is not systrace's to change
            if not self.add_base:
                where = f" ({stored.path})" if stored.path else ""
                self.notices.append(printable(f'note: the policy for {stored.policy.name}{where} has no base (README "The base"): '
                                    "under -a, error paths this run did not take may be denied; -A --add-base adds it"))
                return False
        if self._base is None:
            self._base = base_rules()
        stored.policy.lines.append(BASE_COMMENT)
        stored.added.append(BASE_COMMENT)
        for rule in self._base:
            self.store.add_rule(stored, rule)
        translation = call.translation
        by_name = getattr(translation, "by_name", None)
        return covers(self._base, call.name, by_name() if by_name is not None else {})

    def add(self, stored: StoredPolicy, syscall: str, args: list[tuple[str, str]]) -> None:
        rule = ast.Rule("native", syscall, exact_expr(args, self.made_up), ast.Action("permit"))
        if not self.store.add_rule(stored, rule):
            return
        if len(self.learned) < MAX_REPORTED:
            self.learned.append(f"{stored.policy.name}: {rule_text(rule)}")
        # a name learned literally may turn out to be made up when the run later unlinks or
        # renames it (or the directory it is in: `rm -r` of mktemp -d's directory): remember
        # the rule by each such name to learn it again then
        for name, value in args:
            components = dict.fromkeys(value.split("/")) if name in ("filename", "fdname") else {}
            for component in components:
                if component and self.made_up.created.get(component, NOT_CREATED) < EXCL and may_be_made_up(component) \
                        and self.remembered < MAX_REMEMBERED:
                    self.literal.setdefault(component, []).append((stored, syscall, args))
                    self.remembered += 1

    def relearn(self, component: str) -> None:
        """The run just made `component` up (unlinked, renamed...): the rules learned
        literally with it are learned again, generalised. The literal ones stay (they grant
        that one name only); the next run matches the generalised one."""
        for stored, syscall, args in self.literal.pop(component, ()):
            self.add(stored, syscall, args)


class Observer:
    """First in the learning chain: lets Learn see every call, decides none."""

    reads_arguments_of = None  # every call (Learn.observe)

    def __init__(self, learn: Learn):
        self.learn = learn

    def decide(self, call: Call) -> None:
        self.learn.observe(call)


NEVER_LEARNED = ("fd",)  # descriptor numbers vary from run to run; `fdname` says what it is


def learned_args(syscall: str, args: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The translated arguments a learned rule names, as the facts table says (`learn`):
    by default every one but descriptor numbers, so a call that reaches outside the
    process is learned with what it reached (the file, the process, the request...)."""
    row = ROWS.get(syscall)
    wanted = row.learn if row is not None else None
    return [(name, value) for name, value in args
            if (name in wanted if wanted is not None else name not in NEVER_LEARNED)]


def learned_call(call: Call, use_aliases: bool) -> tuple[str, list[tuple[str, str]]]:
    """The name a rule is learned under (the alias, if any) and the arguments it names."""
    translation = call.translation
    args: list[tuple[str, str]] = list(call.translated)  # type: ignore[arg-type]
    alias = getattr(translation, "alias", None) if use_aliases else None
    if alias:
        return alias, list(getattr(translation, "alias_list", []))
    return call.name, learned_args(call.name, args)


def learned_rule(call: Call, use_aliases: bool, made_up: MadeUp | None = None) -> ast.Rule | None:
    """The rule -A adds for a call, or None when a value it would name could not be read
    (a rule on it would never match: UNREADABLE fails every comparison)."""
    syscall, args = learned_call(call, use_aliases)
    if any(isinstance(value, Unreadable) for _, value in args):
        return None
    return ast.Rule("native", syscall, exact_expr(args, made_up), ast.Action("permit"))


def exact_expr(args: list[tuple[str, str]], made_up: MadeUp | None = None) -> ast.Expr | None:
    """`a eq "x" and b eq "y"`; a repeated name gets its index ([1], [2]...). What the run
    made up becomes an anchored one-component pattern (`re`), a descriptor number is left
    out (generalise.learned_args)."""
    made_up = made_up if made_up is not None else MadeUp()
    symbols: list[ast.Expr] = []
    seen: dict[str, int] = {}
    for name, value in without_descriptor_numbers(args):
        index = seen.get(name, 0)
        seen[name] = index + 1
        symbols.append(learned_symbol(name, index or None, value, made_up))
    if not symbols:
        return None
    expr = symbols[-1]
    for symbol in reversed(symbols[:-1]):
        expr = ast.BinOp("and", symbol, expr)
    return expr
