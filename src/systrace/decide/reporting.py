"""How a decided call is written down: its question line (the original's, also what a
frontend is asked) and its log record. Deciders that log (faults, asking) and the
supervisor share one Reporter, given to each when it is built."""

from __future__ import annotations

import pwd

from ..frontend.question import Question, escape

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..log import Log
    from . import Decision

EMULATION = "linux"


class Reporter:
    def __init__(self, log: Log):
        self.log = log
        self._users: dict[int, str] = {}
        self._policy_numbers: dict[str, int] = {}

    def log_decision(self, call: Call, decision: Decision) -> None:
        user = self.user_name(call.uid)
        verdict = decision.verdict if decision.verdict != "deny" or decision.errno == 1 else f"deny[{_errno_name(decision.errno)}]"
        question = self.question(call)
        reason = call.reason
        text = f"{verdict} user: {escape(user)}, prog: {question.line()}"
        if reason:
            text = f"{text} ({escape(str(reason))})"
        if not self.log.structured:  # text sinks only: no fields to build (issue 16: a record is cheap)
            self.log.message(text)
            return
        self.log.message(
            text,
            event="decision",
            verdict=decision.verdict,
            errno=decision.errno if decision.verdict != "permit" else 0,
            source=decision.source,
            user=user,
            pid=call.tgid,
            tid=call.tid,
            ppid=call.ppid,
            binary=call.exe,
            policy=question.policy_name,
            syscall=call.name,
            nr=call.nr,
            args=[{"name": name, "value": value} for name, value in call.translated],  # type: ignore[attr-defined]
            reason=reason,
        )

    def question(self, call: Call) -> Question:
        """The question line's fields, with the arguments the translate stage gave the
        call (translate/stage.py: a logged call is always translated)."""
        stored = call.policy
        policy_name = stored.policy.name if stored is not None else call.exe  # type: ignore[attr-defined]
        number = self._policy_numbers.setdefault(policy_name, len(self._policy_numbers) + 1)
        args = call.translated
        syscall = call.name
        asked_as = call.asked_as
        if asked_as:  # asked about the alias: its name and the arguments it gets
            syscall, args = asked_as  # type: ignore[misc]
        return Question(
            binary=call.exe,
            pid=call.tgid,
            policy_number=number,
            ppid=call.ppid,
            policy_name=policy_name,
            filters=int(call.filters),  # type: ignore[arg-type]
            emulation=EMULATION,
            syscall=syscall,
            nr=call.nr,
            args=args,  # type: ignore[arg-type]
            arg_count=int(call.arg_count),  # type: ignore[arg-type]
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
