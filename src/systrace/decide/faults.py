"""The fault decider: first in the chain, so a failed call is never learned as a rule
(it did not run). Counters are per process (a reused process id starts afresh, and so
does a process after exec); each fault is logged with what --replay needs."""

from __future__ import annotations

from ..facts import fd_form_key, real_name, row
from ..faults.plan import Fault, RandomFaults, ReplayFaults, RuleFaults
from ..policy.errnos import name_of
from ..policy.escaping import escape_field
from ..policy.match import compile_fnmatch
from . import DENY, PERMIT, RETURN, Decision

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..processes import ProcessTable
    from .reporting import Reporter


class _Counters:
    __slots__ = ("owner", "by_syscall", "by_rule")

    def __init__(self, owner: object):
        self.owner = owner  # the process's ThreadInfo: a new one means a new process
        self.by_syscall: dict[str, int] = {}
        self.by_rule: dict[int, int] = {}


class FaultDecider:
    def __init__(self, random: RandomFaults | None, rules: RuleFaults | None, replay: ReplayFaults | None,
                 processes: ProcessTable | None = None, reporter: Reporter | None = None):
        self.random = random
        self.rules = rules
        self.replay = replay
        selected = frozenset().union(*(source.syscalls() for source in (random, rules, replay) if source is not None))
        self.routed = frozenset(real_name(key) for key in selected)  # NAME/fd: its call is routed
        self.reads_arguments_of = self.routed  # a fault may look at a path, a descriptor, and is logged
        self.counters: dict[int, _Counters] = {}
        self.processes = processes  # who owns a counter (a reused pid starts afresh)
        self.reporter = reporter  # each fault is logged (None: not logged)
        self.injected = 0

    def decide(self, call: Call) -> Decision | None:
        if call.name not in self.routed:
            return None
        counters = self._counters_of(call)
        index = counters.by_syscall.get(call.name, 0) + 1
        counters.by_syscall[call.name] = index
        key = self._key(call)  # the descriptor form has its own sets and errno table
        fault = None
        if self.rules is not None:
            fault = self.rules.decide(key, counters.by_rule, lambda glob: self._path_matches(call, glob))
        if fault is None and self.replay is not None:
            fault = self.replay.decide(call.exe, call.name, index)
        if fault is None and self.random is not None:
            fault = self.random.decide(call.exe, key, index)
        if fault is None:
            return None
        if fault.source != "inject":
            fault = Fault(fault.error, fault.retval, fault.signal, index, fault.source)
        self.injected += 1
        self._log(call, fault)
        if fault.error is not None:
            return Decision(DENY, fault.error, source="fault", signal=fault.signal or 0)
        if fault.retval is not None:
            value = fault.retval - 2**64 if fault.retval > 2**63 - 1 else fault.retval  # an address, as the s64 the kernel takes
            return Decision(RETURN, value=value, source="fault", signal=fault.signal or 0)
        return Decision(PERMIT, source="fault", signal=fault.signal or 0)

    def _key(self, call: Call) -> str:
        facts = row(call.name)
        if facts is None or facts.fd_errnos is None:
            return call.name
        return fd_form_key(call.name) if call.require_translation().fd_form else call.name

    def _counters_of(self, call: Call) -> _Counters:
        owner = self.processes.info(call.tgid) if self.processes is not None else call.tgid
        counters = self.counters.get(call.tgid)
        if counters is None or counters.owner is not owner:
            counters = self.counters[call.tgid] = _Counters(owner)
        return counters

    def _path_matches(self, call: Call, glob: str) -> bool:
        names = [value for name, value in call.require_translation().args if name == "filename"]
        pattern = compile_fnmatch(glob)
        return any(pattern.match(name) for name in names)

    def _log(self, call: Call, fault: Fault) -> None:
        reporter = self.reporter
        if reporter is None:
            return
        what = f"fault[{name_of(fault.error).upper()}]" if fault.error is not None else (
            f"fault[retval={fault.retval}]" if fault.retval is not None else "fault[signal]")
        extra = f", signal: {fault.signal}" if fault.signal else ""
        reporter.log.message(
            f"{what} user: {escape_field(reporter.user_name(call.uid))}, prog: {reporter.question(call).line()}, "
            f"call: {fault.index}{extra}",
            event="fault", binary=call.exe, syscall=call.name, call=fault.index, errno=fault.error or 0,
            retval=fault.retval, signal=fault.signal or 0, pid=call.tgid, tid=call.tid, source=fault.source,
            args=[{"name": name, "value": value} for name, value in call.translated],  # type: ignore[attr-defined]
        )
