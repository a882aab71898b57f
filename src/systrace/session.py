"""What one run needs: options, log, the process table and the decider chain."""

from __future__ import annotations

import time

from .call import Call
from .decide import Chain, Decision
from .decide.reporting import Reporter
from .frontend.relay import SignalRelay
from .log import Log
from .processes import ProcessTable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .frontend.question import Question
    from .policy.store import Store


class Session:
    def __init__(self, log: Log, chain: Chain, processes: ProcessTable | None = None, store: Store | None = None,
                 save_interval: float | None = None, use_aliases: bool = True, reporter: Reporter | None = None,
                 clock: Callable[[], float] = time.monotonic, relay: SignalRelay | None = None):
        self.log = log
        self.clock = clock  # when learned rules are due to be written (tests inject one)
        # the question line and the log record; shared with the deciders that log
        self.reporter = Reporter(log) if reporter is None else reporter
        self.use_aliases = use_aliases  # how the translate stage translates (--no-aliases)
        # the command's signals, for the parts built before its launch (a question's wait, -t's job control)
        self.relay = SignalRelay() if relay is None else relay
        self.chain = chain
        self.processes = ProcessTable() if processes is None else processes
        self.store = store
        self.save_interval = save_interval  # seconds between writes of learned rules
        self.served = 0  # notifications answered (set when supervision ends)
        self.routed: dict[int, int] = {}  # ... by system call number
        self.served_by_name = 0  # ... of them decided by name only (supervisor.answered_by_name)
        self.carried: dict[str, int] = {}  # ... of those this process served, by how (supervisor.carried_as)
        self.served_by_replicas = 0  # ... of them by the other supervisor processes (--supervisors)
        self.unsupervised: list[str] = []  # processes killed because systrace could not read them (engine.py)
        # path calls translated from the path cache, in full, from a translation of the same shape (translate/path_cache.py)
        self.path_cache = (0, 0, 0)
        self._last_save = self.clock()

    def decide(self, call: Call) -> Decision:
        decision = self.chain.decide(call)
        if decision.log:
            self.log_decision(call, decision)
        return decision

    def log_decision(self, call: Call, decision: Decision) -> None:
        self.reporter.log_decision(call, decision)

    def question(self, call: Call) -> Question:
        return self.reporter.question(call)

    def user_name(self, uid: int) -> str:
        return self.reporter.user_name(uid)

    def poll_timeout(self) -> int:
        """Milliseconds until the next periodic duty (-1: none)."""
        if self.save_interval is None:
            return -1
        remaining = self._last_save + self.save_interval - self.clock()
        return max(0, int(remaining * 1000))

    def tick(self) -> None:
        if self.save_interval is not None and self.clock() >= self._last_save + self.save_interval:
            self.save()

    def save(self, reported: bool = False) -> list[str]:
        """Write what was learned; the problems, logged unless `reported` (the caller says
        them on stderr) and the log is stderr itself: one line per policy, not two."""
        self._last_save = self.clock()
        problems = self.store.save() if self.store is not None else []
        if not (reported and self.log.stderr_only()):
            for problem in problems:
                self.log.message(f"policy not written: {problem}", event="error")
        return problems

    def finish(self) -> list[str]:
        """At exit: write what was learned, let deciders release what they hold (a
        frontend); the problems are reported by the caller."""
        self.processes.close()
        problems = self.save(reported=True)
        for decider in self.chain.deciders:
            close = getattr(decider, "close", None)
            if close is not None:
                close()
        return problems
