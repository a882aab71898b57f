"""A one-line progress bar with the counts by outcome so far, redrawn in place; only on
a terminal (pure formatting; the caller decides where it goes)."""

from __future__ import annotations

from .classify import OUTCOMES

WIDTH = 24


def line(done: int, planned: int, counts: dict[str, int], width: int = WIDTH) -> str:
    planned = max(planned, done, 1)
    filled = width * done // planned
    tally = " ".join(f"{outcome} {counts.get(outcome, 0)}" for outcome in OUTCOMES)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{planned} runs  {tally}"


class Progress:
    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self.shown = False

    def show(self, done: int, planned: int, counts: dict[str, int]) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K" + line(done, planned, counts))
            self.stream.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
