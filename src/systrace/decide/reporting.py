"""How a decided call is written down: its question line (the original's, also what a
frontend is asked) and its log record. Deciders that log (faults, asking) and the
supervisor share one Reporter, given to each when it is built."""

from __future__ import annotations

import pwd

from ..frontend.question import Question, escape, escape_field, question_args, question_head
from ..log import json_encoders

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..log import Log
    from . import Decision

EMULATION = "linux"


MEMO_MAX = 4096  # entries each memo keeps before it starts afresh
MEMO_LONGEST = 1024  # characters of the longest part kept (an execve's argv may be megabytes)


class Reporter:
    def __init__(self, log: Log):
        self.log = log
        self._users: dict[int, str] = {}
        self._policy_numbers: dict[str, int] = {}
        # What a record repeats call after call, kept by everything it is made of (issue
        # 16: < 5 µs a record). Each value is a pure function of its key: nothing to
        # invalidate. The text line's head ("user: U, prog: ..., syscall: linux-N(NR)"), its
        # arguments part, and a JSON record's members about the process and the call.
        self._heads: dict[tuple, str] = {}
        self._texts: dict[object, str] = {}
        self._json_heads: dict[tuple, str] = {}
        self._json_args: dict[object, str] = {}

    def log_decision(self, call: Call, decision: Decision) -> None:
        verdict = decision.verdict
        if verdict == "deny" and decision.errno != 1:
            verdict = f"deny[{_errno_name(decision.errno)}]"
        stored = call.policy
        policy_name = stored.policy.name if stored is not None else call.exe  # type: ignore[attr-defined]
        syscall, args = call.name, call.translated
        asked_as = call.asked_as
        if asked_as:  # asked about the alias: its name and the arguments it gets
            syscall, args = asked_as  # type: ignore[misc]
        key = (call.uid, call.exe, call.tgid, call.ppid, policy_name, call.filters, syscall, call.nr)
        head = self._heads.get(key)
        if head is None:
            head = self._remember(self._heads, key, f"user: {escape_field(self.user_name(call.uid))}, prog: " + question_head(
                call.exe, call.tgid, self._policy_number(policy_name), call.ppid, policy_name,
                int(call.filters), EMULATION, syscall, call.nr))  # type: ignore[arg-type]
        described = args or call.arg_count  # (the arguments, or how many there are when none is translated)
        tail = self._texts.get(described)
        if tail is None:
            tail = self._remember(self._texts, described, question_args(args, int(call.arg_count)))  # type: ignore[arg-type]
        reason = call.reason
        text = f"{verdict} {head}{tail} ({escape(str(reason))})" if reason else f"{verdict} {head}{tail}"
        log = self.log
        if not log.structured:  # text sinks only: no fields to build
            log.write(text, _NO_FIELDS)
            return
        # The JSON members written here, not by a dict encoded field by field (tests/test_log.py
        # checks them against json's); a value of a type this does not expect takes json's path.
        string = json_encoders().string
        try:
            process_key = (call.uid, call.tgid, call.tid, call.ppid, call.exe, policy_name, call.name, call.nr)
            process = self._json_heads.get(process_key)
            if process is None:
                process = self._remember(self._json_heads, process_key, (
                    f'"user": {string(self.user_name(call.uid))}, "pid": {call.tgid:d}, "tid": {call.tid:d}, '
                    f'"ppid": {call.ppid:d}, "binary": {string(call.exe)}, "policy": {string(policy_name)}, '
                    f'"syscall": {string(call.name)}, "nr": {call.nr:d}'))
            translated = call.translated
            arguments = self._json_args.get(translated)
            if arguments is None:
                arguments = self._remember(self._json_args, translated, ", ".join(
                    [f'{{"name": {string(name)}, "value": {string(value)}}}' for name, value in translated]))  # type: ignore[attr-defined]
            members = (f'"event": "decision", "verdict": {string(decision.verdict)}, '
                       f'"errno": {decision.errno if decision.verdict != "permit" else 0:d}, '
                       f'"source": {string(decision.source)}, {process}, "args": [{arguments}], '
                       f'"reason": {"null" if reason is None else string(reason)}')
        except (TypeError, ValueError):
            members = json_encoders().value(self._fields(call, decision, policy_name))[1:-1]
        log.write(text, members)

    def _fields(self, call: Call, decision: Decision, policy: str) -> dict[str, object]:
        """A decision record's fields (README, "JSON records"), as json writes them."""
        return {"event": "decision", "verdict": decision.verdict,
                "errno": decision.errno if decision.verdict != "permit" else 0, "source": decision.source,
                "user": self.user_name(call.uid), "pid": call.tgid, "tid": call.tid, "ppid": call.ppid,
                "binary": call.exe, "policy": policy, "syscall": call.name, "nr": call.nr,
                "args": [{"name": name, "value": value} for name, value in call.translated],  # type: ignore[attr-defined]
                "reason": call.reason}

    @staticmethod
    def _remember(memo: dict, key: object, value: str) -> str:
        if len(value) <= MEMO_LONGEST:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            memo[key] = value
        return value

    def question(self, call: Call) -> Question:
        """The question line's fields, with the arguments the translate stage gave the
        call (translate/stage.py: a logged call is always translated)."""
        stored = call.policy
        policy_name = stored.policy.name if stored is not None else call.exe  # type: ignore[attr-defined]
        args = call.translated
        syscall = call.name
        asked_as = call.asked_as
        if asked_as:  # asked about the alias: its name and the arguments it gets
            syscall, args = asked_as  # type: ignore[misc]
        return Question(
            binary=call.exe,
            pid=call.tgid,
            policy_number=self._policy_number(policy_name),
            ppid=call.ppid,
            policy_name=policy_name,
            filters=int(call.filters),  # type: ignore[arg-type]
            emulation=EMULATION,
            syscall=syscall,
            nr=call.nr,
            args=args,  # type: ignore[arg-type]
            arg_count=int(call.arg_count),  # type: ignore[arg-type]
        )

    def _policy_number(self, policy_name: str) -> int:
        return self._policy_numbers.setdefault(policy_name, len(self._policy_numbers) + 1)

    def user_name(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name


_NO_FIELDS: dict[str, object] = {}  # (never changed)


def _errno_name(value: int) -> str:
    import errno

    return errno.errorcode.get(value, str(value)).lower()
