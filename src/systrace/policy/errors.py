"""Policy errors and warnings that name their place: `FILE:LINE:COL: message`, the line, a
caret. What is echoed is made safe for a terminal: control bytes are escaped and a long
line is cut around the column, so a 57 KB line or an escape sequence in a policy file
shows as a short, inert excerpt with the caret still under the error."""

from __future__ import annotations

SHOWN_WIDTH = 100  # characters of the line shown at most (the caret's context)
# [\x00-\x08\x0a-\x1f\x7f-\x9f\udc80-\udcff] as \xNN, a table for str.translate (no re: start-up)
_UNSAFE = {code: f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"
           for code in (*range(0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), *range(0xDC80, 0xDD00))}


def printable(text: str) -> str:
    """Control characters (tab excepted) and bytes that were not UTF-8 as \\xNN."""
    return text if text.isprintable() else text.translate(_UNSAFE)  # (every unsafe character is unprintable)


def shorten(text: str, limit: int = 60) -> str:
    """A value quoted in a message: printable, at most `limit` characters."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt(line: str, column: int, width: int = SHOWN_WIDTH) -> tuple[str, int]:
    """The line as shown (escaped, tabs expanded, cut to `width` around `column`) and the
    caret's offset in it."""
    before = printable(line[: max(column - 1, 0)]).expandtabs(8)
    after = printable(line[max(column - 1, 0):])
    shown = (before + after).expandtabs(8)
    caret = len(before)
    if len(shown) <= width:
        return shown, caret
    start = max(0, min(caret - width // 2, len(shown) - width))
    end = start + width
    piece = shown[start:end]
    caret -= start
    if start > 0:
        piece, caret = "..." + piece, caret + 3
    if end < len(shown):
        piece += "..."
    return piece, caret


class PolicyError(Exception):
    severity = "error"

    def __init__(self, message: str, source: str = "<policy>", line: int = 0, column: int = 0, text: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.text = text

    def where(self) -> str:
        source = printable(self.source)
        return f"{source}:{self.line}:{self.column}" if self.line else source

    def one_line(self) -> str:
        """Where and what, without the excerpt (a log record, a reason)."""
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.where()}: {label}{self.message}"

    def __str__(self) -> str:
        out = self.one_line()
        if self.text is not None:
            shown, caret = excerpt(self.text, self.column)
            out += f"\n    {shown}\n    {' ' * caret}^"
        return out


class PolicyWarning(PolicyError):
    """Accepted, but probably not what was meant (printed, the run goes on)."""

    severity = "warning"
