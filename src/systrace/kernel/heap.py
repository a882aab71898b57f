"""Where a process's heap is, as /proc shows it: the initial break (stat field 47,
start_brk) and the end of the [heap] mapping (the current break rounded up to a page).
The current break itself is shown nowhere; decide/breaks.py works it out."""

from __future__ import annotations

START_BRK_FIELD = 47  # 1-based, as proc(5) counts


def start_brk(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    # the command name (field 2) may hold spaces and parentheses: count after the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[START_BRK_FIELD - 3])


def heap_end(pid: int) -> int | None:
    """The end of the [heap] mapping, or None when there is none (the break never moved
    past its start, or came back to it)."""
    with open(f"/proc/{pid}/maps", "rb") as handle:
        for line in handle:
            if line.rstrip().endswith(b"[heap]"):
                return int(line.split(b"-", 1)[1].split(None, 1)[0], 16)
    return None
