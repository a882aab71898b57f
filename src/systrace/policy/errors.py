"""Policy errors that name their place: `FILE:LINE:COL: message`, the line, a caret."""

from __future__ import annotations


class PolicyError(Exception):
    def __init__(self, message: str, source: str = "<policy>", line: int = 0, column: int = 0, text: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.text = text

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        out = f"{where}: {self.message}"
        if self.text is not None:
            shown = self.text.expandtabs(8)
            caret_at = len(self.text[: max(self.column - 1, 0)].expandtabs(8))
            out += f"\n    {shown}\n    {' ' * caret_at}^"
        return out
