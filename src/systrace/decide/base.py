"""The base every new learned policy starts from (README "The base"): calls that act only
on the process itself or on descriptors it already holds, and signals a process sends
itself, read from the system call facts table. Learning writes these rules at the top
of a new policy, where they can be read and edited like any other; error paths a
learning run did not take (writing an error message, abort()'s tgkill, an mprotect)
then do not cascade into denials under -a."""

from __future__ import annotations

from ..facts import HELD, ROWS, SELF
from ..policy import ast
from ..policy.match import evaluate

BASE_COMMENT = ast.Comment('# base: calls on the process itself and on descriptors it holds (README "The base")')


def base_rules() -> list[ast.Rule]:
    """One rule per call the filter does not already decide: a plain `permit` for SELF
    and HELD calls, the row's `base` filter for calls only partly on the process."""
    from ..policy.parse import Parser  # only when a new policy is learned (start-up time)

    parser = Parser("<base>")
    rules = []
    for name, row in ROWS.items():
        if row.route == "kernel":
            continue  # decided in the kernel whatever a policy says (README "Always decided")
        if row.base is not None:
            rules.append(ast.Rule("native", name, parser.parse_expr(row.base), ast.Action("permit")))
        elif row.reach in (SELF, HELD):
            rules.append(ast.Rule("native", name, None, ast.Action("permit")))
    return rules


def has_base(policy: ast.Policy) -> bool:
    """Was the policy started from the base (its comment is there, even if rules were edited)?"""
    return any(isinstance(line, ast.Comment) and line.text.startswith("# base:") for line in policy.lines)


def covers(rules: list[ast.Rule], syscall: str, args) -> bool:
    """Does one of the base rules permit this call (its translated arguments by name)?"""
    return any(rule.syscall == syscall and (rule.expr is None or evaluate(rule.expr, args)) for rule in rules)
