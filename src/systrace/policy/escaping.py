"""How a string is written inside double quotes, in policy files and in the question
line, as the original systrace did (\\ \" \n \r); other control bytes and bytes that are
not UTF-8 (surrogateescape) become \\xNN. Pure."""

from __future__ import annotations

import re

from ..lazy import lazy_pattern

_SPECIAL = lazy_pattern(r'[\\"\x00-\x1f\x7f\udc80-\udcff]')  # compiled when first needed
_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code >= 0xDC80:  # a byte that was not UTF-8 (surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}"


_ESCAPED: dict[str, str] = {}  # the same names come back call after call (a third of a log record's cost)
MAX_ESCAPED = 4096


def escape(value: str) -> str:
    escaped = _ESCAPED.get(value)
    if escaped is not None:
        return escaped
    escaped = value if _SPECIAL.search(value) is None else _SPECIAL.sub(_escape_char, value)
    if len(_ESCAPED) < MAX_ESCAPED:
        _ESCAPED[value] = escaped
    return escaped
