"""Policies back to text, in the original's file layout. parse(print(x)) == x.

Everything written is escaped: values always; a policy name or description only when it
needs it (a newline, a quote, a backslash, a control byte, text that reads as the next
field), then written quoted. So a binary whose path holds a newline cannot add a header
or a rule to its own policy file, and plain names stay as the original wrote them."""

from __future__ import annotations

import re

from . import ast
from .escaping import escape

_NEEDS_QUOTES = re.compile(r'[\\"\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]|, Emulation:|, Description:|^\s|\s$')


def header_field(text: str) -> str:
    """A policy name or description as the parser reads it back."""
    if text and _NEEDS_QUOTES.search(text) is None:
        return text
    return f'"{escape(text)}"'


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
    header = f"{keyword}: {header_field(policy.name)}, Emulation: {policy.emulation}"
    if policy.description:
        header += f", Description: {header_field(policy.description)}"
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
