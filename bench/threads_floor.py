#!/usr/bin/env python3
"""The Python floor of the 16-thread workload: bench/threads_floor.c's supervisors, call
for call, in Python with no logic (no process table, no translation, no policy, no
record), serving bench/threads_open.c (16 threads opening and closing /etc/hostname N
times each) under a filter that notifies openat.

    python3 -S bench/threads_floor.py THREADS_OPEN [N]

K supervisor processes (K = 1, then 2) share the one listener: each polls it and receives
what it can (a RECV that loses the race gets ENOENT). Per open, what threads_floor.c
makes: the liveness check (pidfd signal 0), /proc/TID/exe, the path (process_vm_readv),
/proc/TID/root, the symlink check (openat2 O_PATH, closed), ID_VALID, /proc/TID/status
(opened, read, closed), the open (openat2), its check (readlink), the wake-up hint
(affinity narrowed and restored), ADDFD and the answer. Prints "16 threads, K
supervisor(s): S s (U us per open)", each the best of 3 runs timed from the launch to the
program's end (the C floor times the same span). What a Python supervisor of this design
cannot beat: bench/bench.py's 16-thread target reads it beside the C floor.
"""

from __future__ import annotations

import os
import sys
import time

from continue_floor import launch
from emulated_open_floor import serve

THREADS = 16


def serve_opens(listener: int, child: int) -> None:
    """One supervisor's loop (emulated_open_floor.serve as threads_floor.c's: the hint
    made, the status file opened at each open, no poll for more)."""
    serve(listener, child, as_systrace=False, fewest=False, hint=True, threads=True)


def run(program: str, opens: int, supervisors: int) -> float | None:
    """One run's seconds, from the launch to the program's end; None if it failed."""
    start = time.monotonic()
    child, listener = launch(257, [program, str(opens)])  # openat
    helpers = []
    for _ in range(supervisors - 1):
        helper = os.fork()
        if helper == 0:
            try:
                serve_opens(listener, child)
            finally:
                os._exit(0)
        helpers.append(helper)
    serve_opens(listener, child)
    _, status = os.waitpid(child, 0)
    elapsed = time.monotonic() - start
    os.close(listener)
    for helper in helpers:
        os.waitpid(helper, 0)
    return elapsed if os.waitstatus_to_exitcode(status) == 0 else None


def main() -> int:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and not sys.argv[2].isdigit()):
        print("usage: threads_floor.py THREADS_OPEN [N]", file=sys.stderr)
        return 2
    program, opens = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 500
    for supervisors in (1, 2):
        times = [t for t in (run(program, opens, supervisors) for _ in range(3)) if t is not None]
        if not times:
            print(f"threads_floor.py: every run with {supervisors} supervisor(s) failed", file=sys.stderr)
            return 1
        best = min(times)
        print(f"16 threads, {supervisors} supervisor{'s' if supervisors > 1 else ''}: {best:.4f} s "
              f"({best / (THREADS * opens) * 1e6:.2f} us per open)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
