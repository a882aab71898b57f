#!/usr/bin/env python3
"""Where the supervisor's CPU time goes for a process-heavy command, by system call and
by stage (identify, translate, decide, carry out).

    PYTHONPATH=src python3 bench/per_process.py [--src DIR] -- -d POLICIES -a sh -c 'for i in $(seq 200); do /bin/true; done'

Runs systrace in this interpreter with each stage of Supervisor.serve_one wrapped in a
CPU-time (time.process_time) counter, and prints, per system call, the calls and the CPU
time per call of each stage and of the whole call, then systrace's own CPU time. The
system calls systrace makes itself: `strace -c -p PID` of the supervisor (no -f: its
helpers and the command are not counted), as README "Benchmark" does. Use on a quiet
machine with no FUSE mount (tracee memory is then read by a helper); a figure of a
loaded machine is only comparable within one run.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default=None, help="the systrace source tree (default: PYTHONPATH's)")
    parser.add_argument("systrace", nargs=argparse.REMAINDER, help="-- then systrace's arguments")
    options = parser.parse_args()
    argv = options.systrace[1:] if options.systrace[:1] == ["--"] else options.systrace
    if options.src:
        sys.path.insert(0, options.src)
    from systrace import effects, supervisor
    from systrace.call import syscall_name
    from systrace.translate import stage

    spent: dict[tuple[int, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])
    current = [0]
    clock = time.process_time

    def wrap(owner: type, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if label == "call":
                current[0] = args[0].nr
            start = clock()
            try:
                return original(self, *args, **kwargs)
            finally:
                entry = spent[(current[0], label)]
                entry[0] += 1
                entry[1] += clock() - start

        setattr(owner, name, timed)

    wrap(supervisor.Supervisor, "serve_one", "call")
    wrap(supervisor.Supervisor, "identify", "identify")
    wrap(stage.TranslateStage, "before_deciding", "translate")
    wrap(supervisor.Supervisor, "decide", "decide")
    wrap(effects.Effects, "carry_out", "carry out")
    me = os.getpid()

    def report() -> None:
        if os.getpid() != me:
            return  # a helper forked by systrace
        print("system call | calls | identify | translate | decide | carry out | whole call (CPU µs per call)",
              file=sys.stderr)
        for nr in sorted({nr for nr, _ in spent}, key=lambda nr: -spent[(nr, "call")][1]):
            calls = int(spent[(nr, "call")][0]) or 1
            cells = [f"{spent[(nr, label)][1] / calls * 1e6:.1f}" for label in
                     ("identify", "translate", "decide", "carry out", "call")]
            print(f"{syscall_name(nr)} | {calls} | " + " | ".join(cells), file=sys.stderr)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"systrace's own CPU: {1000 * (usage.ru_utime + usage.ru_stime):.1f} ms", file=sys.stderr)

    exit_now = os._exit

    def exiting(code: int) -> None:
        report()
        exit_now(code)

    os._exit = exiting  # type: ignore[assignment]  # systrace ends with os._exit
    from systrace.cli import entry

    sys.argv = ["systrace", *argv]
    entry()
    report()


if __name__ == "__main__":
    main()
