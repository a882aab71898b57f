"""Asking a person (-t) or a frontend program (-g) about a call no rule decides.

The question is the original's line. For a call with an alias, when the policy has no
rule for the real name, the question names the alias (`syscall: linux-fsread(257),
filename: ...`) and permanent answers add rules for it. A frontend that goes away is restarted once; after that every question is answered
`deny` and logged: never a hang, never a silent permit."""

from __future__ import annotations

import contextlib
import errno
import time

from ..frontend import protocol
from ..frontend.conversation import IDLE, NeedData
from ..frontend.errors import Abandoned, FrontendGone, Interrupted, NoAnswer, NotAsked, ProtocolError
from ..frontend.protocol import Answer
from ..frontend.transport import TerminalTransport
from ..policy import ast
from ..policy.compiled import _expanded as expanded
from ..policy.errors import PolicyError
from ..policy.printer import rule_text
from . import DENY, KILL, PERMIT, Decision
from .modes import exact_expr

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..call import Call
    from ..frontend.terminal import JobControl
    from ..frontend.transport import Transport
    from ..policy.parse import Parser
    from ..policy.store import Store
    from .policy import PolicyDecider
    from .reporting import Reporter



class Asker:
    reads_arguments_of = None  # every call: the question shows its arguments (translate/stage.py)

    def __init__(self, transport_factory, store: Store, parser: Parser, policy: PolicyDecider, use_aliases: bool = True,
                 timeout: float | None = None, job: JobControl | None = None, *,
                 reporter: Reporter, transport: Transport | None = None, clock: Callable[[], float] = time.monotonic):
        self.transport_factory = transport_factory
        self.transport = transport  # started by wiring (a frontend that cannot start is an error), or on demand
        self.restarts_left = 1
        self.store = store
        self.parser = parser
        self.policy = policy
        self.use_aliases = use_aliases
        self.timeout = timeout  # --answer-timeout (None: wait as long as it takes)
        self.job = job  # -t's job control, or None (it hears of the launch through the run's SignalRelay)
        self.reporter = reporter  # the question line and the log
        self.clock = clock  # answer deadlines (the transports' Waiter's clock)

    def decide(self, call: Call) -> Decision:
        if self.transport is None and self.restarts_left < 0:
            return self._fail_closed(call)
        try:
            return self._ask(call)
        except FrontendGone as gone:
            if isinstance(gone, ProtocolError):
                return self._broken(call, f"frontend protocol error: {gone}")
            return self._frontend_gone(call, str(gone))
        except NoAnswer:
            return self._broken(call, f"no answer within {self.timeout:g} s")
        except Abandoned as signalled:
            return self._abandoned(call, str(signalled))
        except NotAsked as why:  # the terminal is another job's: nobody is asked, nothing is lost
            call.reason = f"question not asked: {why}"
            return Decision(DENY, errno.EPERM, log=True, source="ask")
        except Interrupted:
            if self.job is not None:
                self.job.kill_command()
            raise

    def close(self) -> None:
        """At the end of the run: the frontend is told (EOF) and waited for; the terminal
        goes back to the shell's job."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.job is not None:
            self.job.close()
            self.job = None

    def _broken(self, call: Call, reason: str) -> Decision:
        """No usable answer (timeout, an over-long line): this call is denied and logged.
        A frontend program's next answer could belong to this question, so it is ended
        and started afresh (its one restart); on the terminal what was typed is dropped."""
        call.reason = reason
        transport = self.transport
        if isinstance(transport, TerminalTransport):
            with contextlib.suppress(FrontendGone):
                transport.send(transport.conversation.notice(f"({reason}: denied)"))
            transport.discard_input()
        elif transport is not None:
            self.reporter.log.message(f"frontend {reason}; " + (
                "restarting it" if self.restarts_left > 0 else "denying every question from now on"), event="frontend")
            transport.close()
            self.transport = None
            self.restarts_left -= 1
            if self.restarts_left < 0:
                self.restarts_left = -1
        return Decision(DENY, errno.EPERM, log=True, source="ask")

    def _abandoned(self, call: Call, name: str) -> Decision:
        """systrace was told to stop while asking: the signal went on to the command (as
        README "Signals" says) and this call is denied; the frontend is started afresh
        for the next question (its answer to this one must not be taken for that one)."""
        call.reason = f"question abandoned: systrace got {name}"
        transport = self.transport
        if isinstance(transport, TerminalTransport):
            with contextlib.suppress(FrontendGone):
                transport.send(transport.conversation.notice(f"({name}: question abandoned, denied)"))
            transport.discard_input()
        elif transport is not None:
            transport.close()
            self.transport = None
        return Decision(DENY, errno.EPERM, log=True, source="ask")

    def _frontend_gone(self, call: Call, reason: str) -> Decision:
        if self.restarts_left > 0:
            self.restarts_left -= 1
            self.reporter.log.message(f"frontend gone ({reason}); restarting it", event="frontend")
            try:
                if self.transport is None:
                    self.transport = self.transport_factory()
                else:
                    self.transport.restart()
                return self._ask(call)
            except FrontendGone as again:
                reason = str(again)
        self.reporter.log.message(f"frontend gone ({reason}); denying every question from now on", event="frontend")
        self.restarts_left = -1
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        return self._fail_closed(call)

    def _fail_closed(self, call: Call) -> Decision:
        call.reason = "no frontend to ask"
        return Decision(DENY, errno.EPERM, log=True, source="ask")

    def _ask(self, call: Call) -> Decision:
        if self.transport is None:
            self.transport = self.transport_factory()
        stored = call.policy
        translation = call.translation
        alias = getattr(translation, "alias", None) if self.use_aliases else None
        if alias and stored is not None and stored.policy.rules_for(call.name):
            alias = None  # the policy has rules for the real name: ask about that name
        asked_name = alias or call.name
        if alias:
            call.asked_as = (alias, tuple(getattr(translation, "alias_list", ())))
        question = self.reporter.question(call).line()
        transport = self.transport
        conversation = transport.conversation
        transport.begin()  # -t: systrace owns the terminal until the question is settled
        try:
            transport.send(conversation.question(question, prompt_only=bool(call.ask)))
            while True:
                answer = self._next_answer(transport)
                decision, reply = self._apply(answer, call, stored, asked_name)
                if decision is not None:
                    transport.send(conversation.accept())
                    return decision
                transport.send(conversation.reject(reply))
        finally:
            if conversation.state != IDLE:  # unanswered: the next question starts afresh
                conversation.abandon()
            transport.end()

    def _next_answer(self, transport: Transport) -> Answer:
        """Read until the conversation has the next answer line (or the deadline passes)."""
        conversation = transport.conversation
        deadline = None if self.timeout is None else self.clock() + self.timeout
        while True:
            event = conversation.next_event()
            if not isinstance(event, NeedData):
                return event
            conversation.receive_data(transport.receive(deadline))

    def _apply(self, answer: Answer, call: Call, stored, asked_name: str) -> tuple[Decision | None, list[str]]:
        """A decision (accepted), or the lines to send back before asking again."""
        kind = answer.kind
        if kind == "invalid":
            return None, [answer.text]
        if kind in ("permit", "deny"):
            verdict = PERMIT if kind == "permit" else DENY
            code = answer.errno or errno.EPERM
            rule = self._exact_rule(answer, call, asked_name)
            if not answer.now and stored is not None:
                self._remember(rule, call, stored)
            decision: Decision | None = Decision(verdict, code, log=kind == "deny", source="ask")
            if stored is not None:  # a permit is carried out like a policy's (exec check...)
                decision = self.policy.apply(call, stored, rule, decision)
            return decision, []
        if kind == "kill":
            return Decision(KILL, log=True, source="ask"), []
        if kind == "detach":
            self.policy.detached.add(call.tgid)
            return Decision(PERMIT, source="ask"), []
        if kind == "review":
            lines = [rule_text(rule) for rule in stored.policy.rules] if stored is not None else []
            return None, lines or ["(no rules)"]
        if kind == "templates":
            lines = [f"{n}: {t.name} - {t.description}" for n, t in enumerate(self.store.templates, start=1)]
            return None, lines or ["(no templates)"]
        if kind == "template":
            if not 1 <= answer.number <= len(self.store.templates) or stored is None:
                return None, [protocol.PARSE_ERROR]
            for rule in self.store.templates[answer.number - 1].rules:
                self.store.add_rule(stored, rule)
            decision = self._reevaluate(call, stored)
            return (decision, []) if decision is not None else (None, [protocol.FILTER_UNMATCHED])
        # a filter expression for the name asked about
        try:
            rule = self.parser.parse_rule(answer.text, "native", asked_name)
        except PolicyError:
            return None, [protocol.PARSE_ERROR]
        if stored is None:
            return None, [protocol.PARSE_ERROR]
        self.store.add_rule(stored, rule)
        decision = self._reevaluate(call, stored)
        if decision is None:
            return None, [protocol.FILTER_UNMATCHED]
        return decision, []

    def _exact_rule(self, answer: Answer, call: Call, asked_name: str) -> ast.Rule:
        """An answer is exactly as broad as the question: a rule for the name and the
        arguments the question showed (a plain rule only when it showed none)."""
        translation = call.translation
        if asked_name != call.name:  # asked about the alias: the arguments the alias gets
            args = list(getattr(translation, "alias_list", ()))
        else:
            args = list(call.translated)  # type: ignore[call-overload]
        action = ast.Action(answer.kind, answer.errno_name if answer.kind == "deny" else None)
        return ast.Rule("native", asked_name, exact_expr(args), action)

    def _remember(self, rule: ast.Rule, call: Call, stored) -> None:
        """A permanent answer to an `ask` rule goes just before that rule, or the rule would
        keep asking (and a plain permit after it would permit what it never asked about)."""
        asking_rule = self._written_rule(stored, call.rule) if call.ask else None
        self.store.add_rule(stored, rule, before=asking_rule)

    def _written_rule(self, stored, matched) -> ast.Rule | None:
        """The policy's own line for a rule that matched (the matched one has its
        $VARIABLES expanded)."""
        for rule in stored.policy.rules:
            if rule is matched or rule == matched or expanded(rule, self.policy.expand) == matched:
                return rule
        return None

    def _reevaluate(self, call: Call, stored) -> Decision | None:
        translation = call.require_translation()
        rule = self.policy.first_match(stored.policy, call, translation)
        if rule is None:
            return None
        return self.policy.apply(call, stored, rule)  # the same permit path as a policy file's


__all__ = ["Asker", "rule_text"]
