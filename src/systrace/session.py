"""What one run needs: options, log, the process table and the decider chain."""

from __future__ import annotations

import pwd
import time

from .call import Call
from .decide import Chain, Decision
from .frontend.question import Question, escape
from .log import Log
from .processes import ProcessTable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .policy.store import Store

EMULATION = "linux"
_translated = None  # translate.translator.translated, imported when first needed


class Session:
    def __init__(self, log: Log, chain: Chain, processes: ProcessTable | None = None, store: Store | None = None,
                 save_interval: float | None = None, use_aliases: bool = True):
        self.log = log
        self.use_aliases = use_aliases  # for translating a logged call no decider translated
        self.chain = chain
        self.processes = ProcessTable() if processes is None else processes
        self.store = store
        self.save_interval = save_interval  # seconds between writes of learned rules
        self.served = 0  # notifications answered (set when supervision ends)
        self.routed: dict[int, int] = {}  # ... by system call number
        self._last_save = time.monotonic()
        self._users: dict[int, str] = {}
        self._policy_numbers: dict[str, int] = {}

    def decide(self, call: Call) -> Decision:
        decision = self.chain.decide(call)
        if decision.log:
            self.log_decision(call, decision)
        return decision

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
        """The question line's fields. The call is translated here if no decider did (a
        call logged by --permit-all, a fault, an emulation refused): whoever decides it,
        a logged call shows its arguments."""
        stored = call.policy
        policy_name = stored.policy.name if stored is not None else call.exe  # type: ignore[attr-defined]
        number = self._policy_numbers.setdefault(policy_name, len(self._policy_numbers) + 1)
        if call.translation is None and not call.translated:
            self._translate(call)
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

    def _translate(self, call: Call) -> None:
        global _translated
        if _translated is None:  # imported once, on the first call logged untranslated
            from .translate.translator import translated

            _translated = translated
        try:
            _translated(call, self.use_aliases)
        except Exception as error:  # noqa: BLE001 - the record is still written, without them
            call.translated = (("args", f"<untranslatable: {error!r}>"),)

    def poll_timeout(self) -> int:
        """Milliseconds until the next periodic duty (-1: none)."""
        if self.save_interval is None:
            return -1
        remaining = self._last_save + self.save_interval - time.monotonic()
        return max(0, int(remaining * 1000))

    def tick(self) -> None:
        if self.save_interval is not None and time.monotonic() >= self._last_save + self.save_interval:
            self.save()

    def save(self) -> list[str]:
        self._last_save = time.monotonic()
        problems = self.store.save() if self.store is not None else []
        for problem in problems:
            self.log.message(f"policy not written: {problem}", event="error")
        return problems

    def finish(self) -> list[str]:
        """At exit: write what was learned, let deciders release what they hold (a
        frontend); the problems are reported by the caller."""
        self.processes.close()
        problems = self.save()
        for decider in self.chain.deciders:
            close = getattr(decider, "close", None)
            if close is not None:
                close()
        return problems

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
