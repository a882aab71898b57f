"""Asking a person (-t) or a frontend program (-g) about a call no rule decides.

The question is the original's line. For a call with an alias, when the policy has no
rule for the real name, the question names the alias (`syscall: linux-fsread(257),
filename: ...`) and permanent answers add rules for it. A frontend that goes away is restarted once; after that every question is answered
`deny` and logged: never a hang, never a silent permit."""

from __future__ import annotations

import errno

from ..frontend import protocol
from ..frontend.errors import FrontendGone
from ..frontend.protocol import Answer
from ..policy import ast
from ..policy.compiled import _expanded as expanded
from ..policy.errors import PolicyError
from ..policy.printer import rule_text
from . import DENY, KILL, PERMIT, Decision
from .modes import exact_expr

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..frontend.transport import Transport
    from ..policy.parse import Parser
    from ..policy.store import Store
    from ..session import Session
    from .policy import PolicyDecider

MAX_ROUNDS = 50  # answers to one question before giving up (a confused frontend)


class Asker:
    def __init__(self, transport_factory, store: Store, parser: Parser, policy: PolicyDecider, use_aliases: bool = True):
        self.transport_factory = transport_factory
        self.transport: Transport | None = None
        self.restarts_left = 1
        self.store = store
        self.parser = parser
        self.policy = policy
        self.use_aliases = use_aliases
        self.session: Session | None = None  # set by wiring: for the question line and the log

    def decide(self, call: Call) -> Decision:
        if self.transport is None and self.restarts_left < 0:
            return self._fail_closed(call)
        try:
            return self._ask(call)
        except FrontendGone as gone:
            return self._frontend_gone(call, str(gone))

    def close(self) -> None:
        """At the end of the run: the frontend is told (EOF) and waited for."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _frontend_gone(self, call: Call, reason: str) -> Decision:
        assert self.session is not None
        if self.restarts_left > 0:
            self.restarts_left -= 1
            self.session.log.message(f"frontend gone ({reason}); restarting it", event="frontend")
            try:
                if self.transport is None:
                    self.transport = self.transport_factory()
                else:
                    self.transport.restart()
                return self._ask(call)
            except FrontendGone as again:
                reason = str(again)
        self.session.log.message(f"frontend gone ({reason}); denying every question from now on", event="frontend")
        self.restarts_left = -1
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        return self._fail_closed(call)

    def _fail_closed(self, call: Call) -> Decision:
        call.extra["reason"] = "no frontend to ask"
        return Decision(DENY, errno.EPERM, log=True, source="ask")

    def _ask(self, call: Call) -> Decision:
        assert self.session is not None
        if self.transport is None:
            self.transport = self.transport_factory()
        stored = call.extra.get("policy")
        translation = call.extra.get("translation")
        alias = getattr(translation, "alias", None) if self.use_aliases else None
        if alias and stored is not None and stored.policy.rules_for(call.name):
            alias = None  # the policy has rules for the real name: ask about that name
        asked_name = alias or call.name
        if alias:
            call.extra["asked_as"] = (alias, tuple(getattr(translation, "alias_list", ())))
        question = self.session.question(call).line()
        prompt_only = bool(call.extra.get("ask"))
        line = self.transport.ask(question)
        for _ in range(MAX_ROUNDS):
            answer = protocol.prompt_answer(line) if prompt_only else protocol.parse_answer(line)
            decision, reply = self._apply(answer, call, stored, asked_name)
            if decision is not None:
                self.transport.tell(protocol.OKAY)
                return decision
            for text in reply:
                self.transport.tell(text)
            self.transport.tell(protocol.WRONG)
            line = self.transport.read_answer()
        raise FrontendGone("too many answers to one question")

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
            decision = Decision(verdict, code, log=kind == "deny", source="ask")
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
        translation = call.extra.get("translation")
        if asked_name != call.name:  # asked about the alias: the arguments the alias gets
            args = list(getattr(translation, "alias_list", ()))
        else:
            args = list(call.extra.get("translated", ()))  # type: ignore[call-overload]
        action = ast.Action(answer.kind, answer.errno_name if answer.kind == "deny" else None)
        return ast.Rule("native", asked_name, exact_expr(args), action)

    def _remember(self, rule: ast.Rule, call: Call, stored) -> None:
        """A permanent answer to an `ask` rule goes just before that rule, or the rule would
        keep asking (and a plain permit after it would permit what it never asked about)."""
        asking_rule = self._written_rule(stored, call.extra.get("rule")) if call.extra.get("ask") else None
        self.store.add_rule(stored, rule, before=asking_rule)

    def _written_rule(self, stored, matched) -> ast.Rule | None:
        """The policy's own line for a rule that matched (the matched one has its
        $VARIABLES expanded)."""
        for rule in stored.policy.rules:
            if rule is matched or rule == matched or expanded(rule, self.policy.expand) == matched:
                return rule
        return None

    def _reevaluate(self, call: Call, stored) -> Decision | None:
        translation = call.extra.get("translation")
        rule = self.policy.first_match(stored.policy, call, translation)
        if rule is None:
            return None
        return self.policy.apply(call, stored, rule)  # the same permit path as a policy file's


__all__ = ["Asker", "rule_text"]
