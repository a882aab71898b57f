"""How a string is written inside double quotes, in policy files and in the question
line, as the original systrace did (\\ \" \n \r); other control bytes and bytes that are
not UTF-8 (surrogateescape) become \\xNN. Pure."""

from __future__ import annotations

# [\\"\x00-\x1f\x7f\udc80-\udcff] escaped, a table for str.translate (no re: start-up); a
# surrogate is a byte that was not UTF-8 (surrogateescape)
_SPECIAL = {code: f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}" for code in (*range(0x20), 0x7F, *range(0xDC80, 0xDD00))}
_SPECIAL.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r"})


_ESCAPED: dict[str, str] = {}  # the same names come back call after call (a third of a log record's cost)
MAX_ESCAPED = 4096


def escape_field(value: str) -> str:
    """escape(), and a ", " written ",\\x20": the fields of a question line and of a
    text record are separated by ", ", so a value holding one would add a field that a
    reader could not tell from systrace's own (a file named `/tmp/x, filename: /etc/shadow`;
    `--replay` reads fault lines by their fields). \\x20 reads back as a space in a policy."""
    escaped = escape(value)
    return escaped.replace(", ", ",\\x20") if ", " in escaped else escaped


def escape(value: str) -> str:
    escaped = _ESCAPED.get(value)
    if escaped is not None:
        return escaped
    # every special character but \\ and " is unprintable
    plain = value.isprintable() and "\\" not in value and '"' not in value
    escaped = value if plain else value.translate(_SPECIAL)
    if len(_ESCAPED) < MAX_ESCAPED:
        _ESCAPED[value] = escaped
    return escaped
