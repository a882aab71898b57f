"""What one run needs: options, log, the process table and the decider chain."""

from __future__ import annotations

import pwd
from dataclasses import dataclass, field

from .call import Call
from .decide import Chain, Decision
from .frontend.question import Question
from .log import Log
from .processes import ProcessTable

EMULATION = "linux"


@dataclass
class Session:
    log: Log
    chain: Chain
    processes: ProcessTable = field(default_factory=ProcessTable)
    _users: dict[int, str] = field(default_factory=dict)
    _policy_numbers: dict[str, int] = field(default_factory=dict)

    def decide(self, call: Call) -> Decision:
        decision = self.chain.decide(call)
        if decision.log:
            self.log_decision(call, decision)
        return decision

    def log_decision(self, call: Call, decision: Decision) -> None:
        user = self.user_name(call.uid)
        verdict = decision.verdict if decision.verdict != "deny" or decision.errno == 1 else f"deny[{_errno_name(decision.errno)}]"
        self.log.message(
            f"{verdict} user: {user}, prog: {self.question(call).line()}",
            event="decision",
            verdict=decision.verdict,
            errno=decision.errno if decision.verdict != "permit" else 0,
            source=decision.source,
            user=user,
            pid=call.tgid,
            tid=call.tid,
            binary=call.exe,
            syscall=call.name,
            nr=call.nr,
        )

    def question(self, call: Call) -> Question:
        number = self._policy_numbers.setdefault(call.exe, len(self._policy_numbers) + 1)
        args = call.extra.get("translated", ())
        return Question(
            binary=call.exe,
            pid=call.tgid,
            policy_number=number,
            ppid=call.ppid,
            policy_name=call.exe,
            filters=int(call.extra.get("filters", 0)),  # type: ignore[arg-type]
            emulation=EMULATION,
            syscall=call.name,
            nr=call.nr,
            args=args,  # type: ignore[arg-type]
            arg_count=int(call.extra.get("arg_count", 6)),  # type: ignore[arg-type]
        )

    def user_name(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name


def _errno_name(value: int) -> str:
    import errno

    return errno.errorcode.get(value, str(value)).lower()
