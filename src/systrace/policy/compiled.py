"""A policy prepared for fast evaluation: rules indexed by syscall name, values expanded
and case-folded once, and runs of plain `name eq "value"` rules turned into dictionary
lookups. First-match order is kept exactly: a run only holds consecutive rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from . import ast
from .match import Unreadable, ascii_casefold, evaluate

Args = Mapping[str, Sequence[str]]


class _EqRun:
    """Consecutive rules `NAME eq "VALUE" then ...` with no predicate: one lookup."""

    __slots__ = ("name", "first")

    def __init__(self, name: str, first: dict[str, ast.Rule]):
        self.name = name
        self.first = first  # case-folded value -> the earliest rule with it


class _General:
    __slots__ = ("rule",)

    def __init__(self, rule: ast.Rule):
        self.rule = rule


class CompiledPolicy:
    def __init__(self, policy: ast.Policy, expand: Callable[[str], str]):
        self.policy = policy
        self.expand = expand
        self.version = 0  # how many of the policy's lines are compiled
        self._last: ast.Line | None = None  # the last of them, to notice lines inserted before it
        self.rule_count = 0  # the question's "filters"
        self.by_syscall: dict[str, list[_EqRun | _General]] = {}
        self.catch_up()

    def catch_up(self) -> bool:
        """Compile the lines appended since the last call (learning appends one rule at a
        time: recompiling everything for each would make -A quadratic). False when the
        policy changed in another way: then it must be compiled anew."""
        lines = self.policy.lines
        if self.version and (len(lines) < self.version or lines[self.version - 1] is not self._last):
            return False
        for line in lines[self.version:]:
            if isinstance(line, ast.Rule):
                self._add(line)
        self.version = len(lines)
        self._last = lines[-1] if lines else None
        return True

    def _add(self, rule: ast.Rule) -> None:
        """Appending keeps first-match order: the new rule comes after every other."""
        self.rule_count += 1
        steps = self.by_syscall.setdefault(rule.syscall, [])
        symbol = _plain_eq(rule, self.expand)
        if symbol is None:
            steps.append(_General(_expanded(rule, self.expand)))
            return
        key = ascii_casefold(symbol.value)
        if steps and isinstance(steps[-1], _EqRun) and steps[-1].name == symbol.name:
            steps[-1].first.setdefault(key, rule)
        else:
            steps.append(_EqRun(symbol.name, {key: rule}))

    def first_match(self, syscall: str, args: Args, predicate_ok: Callable[[ast.Predicate], bool],
                    accept: Callable[[ast.Rule], bool] | None = None) -> ast.Rule | None:
        """The first rule for `syscall` that matches `args`; with `accept`, the first such
        rule among those `accept` takes."""
        for step in self.by_syscall.get(syscall, ()):
            if accept is not None and isinstance(step, _EqRun):
                continue  # plain first-name rules: only the two-name check uses accept, for other names
            if isinstance(step, _EqRun):
                values = args.get(step.name)
                if values and not isinstance(values[0], Unreadable):
                    rule = step.first.get(ascii_casefold(values[0]))
                    if rule is not None:
                        return rule
                continue
            rule = step.rule
            if accept is not None and not accept(rule):
                continue
            if rule.expr is not None and not evaluate(rule.expr, args):
                continue
            if rule.action.predicate is None or predicate_ok(rule.action.predicate):
                return rule
        return None


def _plain_eq(rule: ast.Rule, expand: Callable[[str], str]) -> ast.Symbol | None:
    expr = rule.expr
    if not isinstance(expr, ast.Symbol) or expr.op != "eq" or expr.index not in (None, 0) or rule.action.predicate:
        return None
    return ast.Symbol(expr.name, None, "eq", expand(expr.value))


def _expanded(rule: ast.Rule, expand: Callable[[str], str]) -> ast.Rule:
    """The rule with $VARIABLES substituted in its values (they are fixed for a run)."""
    if rule.expr is None:
        return rule
    return ast.Rule(rule.emulation, rule.syscall, _expand_expr(rule.expr, expand), rule.action)


def _expand_expr(expr: ast.Expr, expand: Callable[[str], str]) -> ast.Expr:
    if isinstance(expr, ast.Symbol):
        return ast.Symbol(expr.name, expr.index, expr.op, expand(expr.value))
    if isinstance(expr, ast.Not):
        return ast.Not(_expand_expr(expr.expr, expand))
    if isinstance(expr, ast.BinOp):
        return ast.BinOp(expr.op, _expand_expr(expr.left, expand), _expand_expr(expr.right, expand))
    return expr
