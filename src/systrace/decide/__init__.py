"""Deciders: each looks at an intercepted call and returns a Decision, or None to pass
the call to the next one. The last decider of a chain is the mode's fallback."""

from __future__ import annotations

import errno

from ..record import record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from ..call import Call

    class Decider(Protocol):
        def decide(self, call: Call) -> Decision | None: ...

        # Optionally `reads_arguments_of`: the calls whose translated arguments it reads
        # (None: every call; absent: every call). translate/stage.py translates them.
        # Optionally `by_name(exe, nr)`: what it answers for every call `nr` of binary
        # `exe` whatever its arguments (a Decision, PASSES, or None: it depends), and
        # `keeps_state_for(tgid, ppid)` (Chain.by_name). Absent: it depends on the call.

PERMIT = "permit"
DENY = "deny"
KILL = "kill"
RETURN = "return"  # complete the call without running it, returning `value`
# the effects of an emulated permit: open and inject (ADDFD), connect/bind the checked
# address on the tracee's socket, a path call on the checked parent directory, a send to
# the checked destination
EMULATE_OPEN, EMULATE_SOCKET, EMULATE_PATH = "emulate-open", "emulate-socket", "emulate-path"
EMULATE_SEND = "emulate-send"
EMULATE_OPEN_AS = "emulate-open-as"  # a write open a helper makes as the tracee (kernel/open_as.py)
EMULATE_HANDLE = "emulate-handle"  # open_by_handle_at with the checked handle (kernel/emulate_handle.py)
EMULATE_MOUNT = "emulate-mount"  # a mount-family call a helper makes on what was checked (kernel/emulate_mount.py)
EMULATE_STRING = "emulate-string"  # a call decided on a string made on the checked copy (kernel/emulate_strings.py)
EFFECTS = ("", EMULATE_OPEN, EMULATE_SOCKET, EMULATE_PATH, EMULATE_SEND, EMULATE_OPEN_AS, EMULATE_HANDLE, EMULATE_MOUNT,
           EMULATE_STRING)
PASSES = "passes"  # by_name: the decider passes every such call to the next one


@record
class Decision:
    verdict: str  # PERMIT, DENY, KILL or RETURN
    errno: int = errno.EPERM
    log: bool = False
    source: str = ""  # which decider: "policy", "learn", "fault", "default", "error"
    value: int = 0  # RETURN's result
    signal: int = 0  # a signal to deliver to the calling thread first (fault injection)
    # how a permit is carried out: "" continues the call; an EFFECTS name means systrace
    # does the call itself on what was checked (effects.EFFECTS)
    effect: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in (PERMIT, DENY, KILL, RETURN):
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if self.effect not in EFFECTS:
            raise ValueError(f"unknown effect {self.effect!r}")

    @property
    def emulate(self) -> bool:
        return bool(self.effect)


class Chain:
    """Ask each decider in turn; the first answer wins. No answer at all is a denial:
    when nothing decides, the call does not run."""

    def __init__(self, deciders: list[Decider]):
        self.deciders = deciders

    def decide(self, call: Call) -> Decision:
        for decider in self.deciders:
            decision = decider.decide(call)
            if decision is not None:
                return decision
        return Decision(DENY, errno.EPERM, log=True, source="undecided")

    # -- decided by name only (README "Caches") ------------------------------------------
    def by_name(self, exe: str, nr: int) -> Decision | None:
        """The decision `decide` gives every call `nr` of binary `exe`, whatever its
        arguments, for a process no decider keeps state for (`keeps_state_for`); None
        when it may depend on the call, or is logged (the log shows its arguments). Only
        a chain whose every decider can say (`by_name`) answers: their rules then never
        change during the run (no learning, no asking, no faults)."""
        for decider in self.deciders:
            by_name = getattr(decider, "by_name", None)
            if by_name is None:
                return None  # it may look at anything of the call
            answer = by_name(exe, nr)
            if answer is PASSES:
                continue
            return None if answer is None or answer.log else answer
        return None  # undecided: denied and logged

    def by_descriptor(self, exe: str, nr: int) -> Decision | None:
        """As by_name, for the calls `nr` (newfstatat, statx) of `exe` in their descriptor
        form (glibc's fstat) only: a decider says with `by_descriptor`, else its by_name
        answer (for every call `nr`) holds for that form too."""
        for decider in self.deciders:
            by_form = getattr(decider, "by_descriptor", None) or getattr(decider, "by_name", None)
            if by_form is None:
                return None
            answer = by_form(exe, nr)
            if answer is PASSES:
                continue
            return None if answer is None or answer.log else answer
        return None

    def state_checks(self) -> list[Callable[[int, int], bool]]:
        """The deciders' `keeps_state_for(tgid, ppid)`: a process any of them keeps state
        for (a pending exec check, a detach, an inherited policy) is decided call by call."""
        return [check for decider in self.deciders if (check := getattr(decider, "keeps_state_for", None))]


class PermitAll:
    """The engine's own mode: every call runs; each is logged when asked to."""

    reads_arguments_of: frozenset[str] = frozenset()  # none (a logged call is translated for the log)

    def __init__(self, log: bool):
        self.decision = Decision(PERMIT, log=log, source="default")

    def decide(self, call: Call) -> Decision:
        return self.decision

    def by_name(self, exe: str, nr: int) -> Decision:
        return self.decision
