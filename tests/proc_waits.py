"""Waiting on and looking at processes from a test (shared by the escape tests)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import TIMEOUT


def wait_for(predicate, what: str) -> None:
    """Until `predicate()` holds; TIMEOUT is a safety net only: the condition decides."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from every /proc/N/stat: threads' children too)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def seccomp(pid: int) -> str:
    """The Seccomp field of its status ("2": under a filter), "" when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    return next((line.split()[1] for line in text.splitlines() if line.startswith("Seccomp:")), "")
