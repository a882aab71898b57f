#!/usr/bin/env python3
"""Does the ADDFD wake-up hint (kernel/wakeup.py WakeHere) still pay on this machine?

    PYTHONPATH=src python3 bench/wakeup_hint.py [--calls 10000] [--runs 5] [--src DIR] [--threads]

Runs the openat loop under a learned policy (-a: every open emulated, ADDFD each time)
with the hint as the tree has it and with WakeHere.narrow made a no-op (the same tree,
patched in the run's interpreter), the two interleaved, with and without --no-cpu-pin.
Prints per routed call, medians: CPU µs (systrace + tracee, from wait4, a 10-call run's
taken off) and wall µs (the run's, less the 10-call run's). --threads: the 16-thread
workload (bench/threads_open.c, --calls opens per thread), with and without
--supervisors 2 (each replica pinned to its own CPU) instead of --no-cpu-pin.
Timing is never asserted by tests. (Measured on the 2-vCPU machine: BENCHMARKS.md.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUN = "from systrace.cli import entry; entry()"
RUN_WITHOUT_HINT = ("import systrace.kernel.wakeup as w; w.WakeHere.narrow = lambda self, tid: None; "
                    "from systrace.cli import entry; entry()")


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds of the run and its children, its wall seconds)."""
    start = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]}... failed: {stderr[-300:]!r}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", default=str(HERE.parent / "src"))
    parser.add_argument("--threads", action="store_true", help="the 16-thread workload")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    name = "threads_open" if options.threads else "openat_loop"
    loop = work / name
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(loop), str(HERE / f"{name}.c")], check=True)
    variant = (", --supervisors 2", ["--supervisors", "2"]) if options.threads else (", --no-cpu-pin", ["--no-cpu-pin"])
    calls = options.calls * 16 if options.threads else options.calls
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "PYTHONPATH": options.src}
    policies = work / "policies"
    subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", str(loop), "10"], env=env,
                   check=True, capture_output=True)
    configs = {f"{hint}{pin}": [sys.executable, "-c", code, "-d", str(policies), "-a", *flags]
               for hint, code in (("hint", RUN), ("no hint", RUN_WITHOUT_HINT))
               for pin, flags in (("", []), variant)}
    cpu: dict[str, list[float]] = {label: [] for label in configs}
    wall: dict[str, list[float]] = {label: [] for label in configs}
    for _ in range(options.runs):  # interleaved: a change in load hits each alike
        for label, argv in configs.items():
            long_cpu, long_wall = run([*argv, str(loop), str(options.calls)], env)
            short_cpu, short_wall = run([*argv, str(loop), "10"], env)
            cpu[label].append((long_cpu - short_cpu) / (calls - 10 * (16 if options.threads else 1)) * 1e6)
            wall[label].append((long_wall - short_wall) / (calls - 10 * (16 if options.threads else 1)) * 1e6)
    print(f"emulated open ({name}), µs per call, median of {options.runs} runs of {calls} calls")
    print("| configuration | CPU (systrace + tracee) | wall (the loop) |\n|---|---:|---:|")
    for label in configs:
        print(f"| {label} | {statistics.median(cpu[label]):.1f} | {statistics.median(wall[label]):.1f} |")


if __name__ == "__main__":
    main()
