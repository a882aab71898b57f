"""Policies back to text, in the original's file layout. parse(print(x)) == x."""

from __future__ import annotations

from ..frontend.question import escape
from . import ast


def expr_text(expr: ast.Expr) -> str:
    if isinstance(expr, ast.TrueExpr):
        return "true"
    if isinstance(expr, ast.Symbol):
        index = f"[{expr.index}]" if expr.index is not None else ""
        return f'{expr.name}{index} {expr.op} "{escape(expr.value)}"'
    if isinstance(expr, ast.Not):
        return f"not {_operand(expr.expr, right=True)}"
    left = _operand(expr.left, right=False)
    return f"{left} {expr.op} {_operand(expr.right, right=True)}"


def _operand(expr: ast.Expr, right: bool) -> str:
    """`not` and binary operators extend to the end of the expression, so on the left of
    an operator they need parentheses; on the right they group as the grammar does."""
    text = expr_text(expr)
    if isinstance(expr, ast.BinOp | ast.Not) and not right:
        return f"({text})"
    return text


def action_text(action: ast.Action) -> str:
    out = action.verdict
    if action.errno is not None:
        out += f"[{action.errno}]"
    elif action.flag is not None:
        out += f"[{action.flag}]"
    if action.log:
        out += " log"
    if action.elevate is not None:
        out += " as " + (action.elevate.user or "") + (f":{action.elevate.group}" if action.elevate.group else "")
    if action.predicate is not None:
        p = action.predicate
        out += f", if {p.kind} {p.op} {p.value}"
    return out


def rule_body(rule: ast.Rule) -> str:
    if rule.expr is None:
        return action_text(rule.action)
    return f"{expr_text(rule.expr)} then {action_text(rule.action)}"


def rule_text(rule: ast.Rule) -> str:
    return f"{rule.emulation}-{rule.syscall}: {rule_body(rule)}"


def policy_text(policy: ast.Policy) -> str:
    keyword = "Template" if policy.template else "Policy"
    header = f"{keyword}: {policy.name}, Emulation: {policy.emulation}"
    if policy.description:
        header += f", Description: {policy.description}"
    lines = [header]
    for line in policy.lines:
        if isinstance(line, ast.Comment):
            lines.append(f"\t{line.text}")
        elif isinstance(line, ast.Detached):
            lines.append("\tdetached")
        else:
            lines.append(f"\t{rule_text(line)}")
    return "\n".join(lines) + "\n"


def file_text(policy_file: ast.PolicyFile) -> str:
    parts = [c.text + "\n" for c in policy_file.preamble]
    parts.extend(policy_text(policy) for policy in policy_file.policies)
    return "".join(parts)
