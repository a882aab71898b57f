#!/usr/bin/env python3
"""Time per routed call, stage by stage, on the CONTINUE path (issue 16 item 4): the
loop, the call decided by name only, the stages of a continued call (bench/stages.py
does the same for an emulated open).

    PYTHONPATH=src python3 bench/continue_stages.py -- SYSTRACE-ARGS... COMMAND...
    PYTHONPATH=src python3 bench/continue_stages.py -- -d DIR -a ./held_loop 100000

Runs systrace in this process with each stage's function wrapped by a timer of the
thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user and system time, the ioctls' kernel work
included), and prints, per routed call, the time spent inside each stage (inclusive: a
stage's row contains the rows indented below it). The timers cost something themselves:
the "timer" row is what one pair costs here, and every row includes that cost once for
itself and once per timed stage below it. The supervisor's total (`Supervisor.run`) is
timed once, so the difference with the table's sum of top-level rows is the loop's own
work. A benchmark, not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

# (module, class or None, function, depth in the table)
STAGES = [
    ("systrace.supervisor", "Supervisor", "run", 0),
    ("systrace.supervisor", "Supervisor", "serve_batch", 1),
    ("systrace.kernel.notify", "Listener", "recv", 2),
    ("systrace.supervisor", "Supervisor", "answered_by_name", 2),
    ("systrace.processes", "ProcessTable", "cached", 3),
    ("systrace.supervisor", "Supervisor", "serve_one", 2),
    ("systrace.supervisor", "Supervisor", "identify", 3),
    ("systrace.processes", "ProcessTable", "info", 4),
    ("systrace.processes", "ProcessTable", "binary", 4),
    ("systrace.translate.stage", "TranslateStage", "before_deciding", 3),
    ("systrace.supervisor", "Supervisor", "decide", 3),
    ("systrace.decide", "Chain", "decide", 4),
    ("systrace.decide.policy", "PolicyDecider", "decide", 5),
    ("systrace.decide.policy", "PolicyDecider", "first_match", 6),
    ("systrace.decide.modes", "Enforce", "decide", 5),
    ("systrace.supervisor", "Supervisor", "guard_permit", 4),
    ("systrace.effects", "Effects", "carry_out", 3),
    ("systrace.kernel.notify", "Listener", "allow", 4),
]


def main() -> None:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: the thread's CPU time (a system call per reading); wall: perf_counter (cheap, "
                             "but counts time the supervisor was not running)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="systrace's arguments and the command")
    options = parser.parse_args()
    argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
    import importlib

    clock = time.thread_time_ns if options.clock == "cpu" else time.perf_counter_ns
    spent: dict[str, int] = {}
    counts: dict[str, int] = {}
    inner: dict[str, int] = {}  # timed calls made inside each stage, itself included
    timed_calls = [0]
    for module_name, class_name, function, _ in STAGES:
        owner = getattr(importlib.import_module(module_name), class_name)
        key = f"{class_name}.{function}"
        spent[key] = counts[key] = inner[key] = 0
        original = getattr(owner, function, None)
        if original is None:  # not in this source tree (an older one, --src)
            continue

        def timed(*args, __original=original, __key=key, **kwargs):
            before = timed_calls[0]
            start = clock()
            try:
                return __original(*args, **kwargs)
            finally:
                spent[__key] += clock() - start
                counts[__key] += 1
                timed_calls[0] += 1
                inner[__key] += timed_calls[0] - before

        setattr(owner, function, functools.wraps(original)(timed))
    timer_ns = calibrate(clock)

    from systrace.cli import main as systrace_main

    status = systrace_main(argv)
    served = counts["Supervisor.serve_batch"] or 1
    print(f"{options.clock} µs per routed call ({served} calls, systrace {' '.join(argv)}; exit {status})")
    print("| stage | µs per call | calls per routed call |")
    print("|---|---:|---:|")
    for _, class_name, function, depth in STAGES:
        key = f"{class_name}.{function}"
        if counts[key]:
            own = max(0.0, spent[key] - timer_ns * inner[key])  # less the timers inside it
            print(f"| {'&nbsp;' * 4 * depth}{key} | {own / served / 1000:.2f} | {counts[key] / served:.2f} |")
    print(f"| (one timer, taken off each row: {timer_ns / 1000:.2f} µs) | | |")
    sys.exit(0)


def calibrate(clock) -> float:
    """What one timed call costs beyond the call itself (two readings and the wrapper)."""
    def plain() -> None:
        pass

    calls = [0]

    def timed() -> None:
        before = calls[0]
        start = clock()
        try:
            return plain()
        finally:
            calls[0] += 1 + (clock() - start) * 0 + before * 0

    rounds, costs = 50000, []
    for _ in range(7):  # the least of several: a round the scheduler interrupted costs more
        start = clock()
        for _ in range(rounds):
            plain()
        bare = clock() - start
        start = clock()
        for _ in range(rounds):
            timed()
        costs.append((clock() - start - bare) / rounds)
    return min(costs)


if __name__ == "__main__":
    main()
