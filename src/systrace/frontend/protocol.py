"""The answers a person or a frontend program gives to a question (pure).

    permit | deny | deny[errno]              add a plain rule for this system call
    permit-now | deny-now | deny-now[errno]  decide this call only
    EXPR then ACTION                         add a filter rule, then evaluate the call again
    detach | kill | review | templates | template N
"""

from __future__ import annotations

import re

from ..policy import errnos
from ..record import record

OKAY = "OKAY"
WRONG = "WRONG"
SYNTAX_ERROR = "Syntax error."
PARSE_ERROR = "Parse error."
FILTER_UNMATCHED = "Filter unmatched."
PROMPT_ONLY = 'Answer only "permit" or "deny". This is a prompt.'

_SIMPLE = re.compile(r"(permit|deny)(-now)?(?:\[([A-Za-z0-9_]+)\])?")


@record
class Answer:
    kind: str  # permit, deny, filter, detach, kill, review, templates, template, invalid
    now: bool = False  # this call only
    errno: int | None = None
    errno_name: str | None = None
    text: str = ""  # a filter's text, or an error message for invalid
    number: int = 0  # template N


def parse_answer(line: str) -> Answer:
    text = line.strip()
    if not text:
        return Answer("invalid", text=SYNTAX_ERROR)
    simple = _SIMPLE.fullmatch(text)
    if simple:
        verdict, now, code = simple.group(1), bool(simple.group(2)), simple.group(3)
        if code is not None:
            if verdict != "deny":
                return Answer("invalid", text=SYNTAX_ERROR)
            number = errnos.lookup(code)
            if number is None:
                return Answer("invalid", text=f"Unknown error code: {code}")
            return Answer("deny", now, number, code)
        return Answer(verdict, now)
    if text in ("detach", "kill", "review", "templates"):
        return Answer(text)
    template = re.fullmatch(r"template\s+(\d+)", text)
    if template:
        return Answer("template", number=int(template.group(1)))
    if " then " in f" {text} " or "->" in text:
        return Answer("filter", text=text)
    return Answer("invalid", text=SYNTAX_ERROR)


def prompt_answer(line: str) -> Answer:
    """For `ask` rules the original accepted only a yes or no."""
    answer = parse_answer(line)
    if answer.kind in ("permit", "deny"):
        return answer
    return Answer("invalid", text=PROMPT_ONLY)
