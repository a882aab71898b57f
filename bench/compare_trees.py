#!/usr/bin/env python3
"""Macro workloads under `-a`, two (or more) source trees side by side in one run.

    python3 bench/compare_trees.py --src OLD/src --src NEW/src [--runs 5] [--only tar,gcc]

For each workload of bench/bench.py (python import, tar, gcc, sh loop), the policy is
learned once (with the first tree), then each run alternates: native, then `-a` under
each tree. Prints the median wall time and its ratio to native, and the median CPU time
(systrace + command, from wait4), per tree. The output of each run is checked against
the native run's (a run that did less work is no speed). Timing is never asserted by
tests: this is a benchmark.
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
sys.path.insert(0, str(HERE))

from bench import Sizes, build, workloads  # noqa: E402 - bench/ is not a package


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:6]}... failed ({status})")
    return elapsed, usage.ru_utime + usage.ru_stime, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="python,tar,gcc,sh")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    sizes = Sizes()
    chosen = [w for w in workloads(build(scratch, sizes), sizes) if w.key in options.only.split(",")]
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(scratch)}
    names = [Path(src).resolve().parent.name for src in options.src]
    print(f"median of {options.runs} runs, alternated; wall s (ratio to native) / CPU s")
    print("| workload | native | " + " | ".join(f"-a {name}" for name in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for workload in chosen:
        policies = scratch / f"policies-{workload.key}"
        learn_env = dict(base_env, PYTHONPATH=options.src[0])
        for _ in range(2):  # twice: the second run learns what the first one's learning changed
            subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", *workload.argv],
                           env=learn_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        native: list[float] = []
        walls: list[list[float]] = [[] for _ in names]
        cpus: list[list[float]] = [[] for _ in names]
        for _ in range(options.runs):
            seconds, _, expected = timed(workload.argv, base_env)
            native.append(seconds)
            for index, src in enumerate(options.src):
                env = dict(base_env, PYTHONPATH=src)
                seconds, cpu, out = timed([sys.executable, "-m", "systrace", "-d", str(policies), "-a", *workload.argv],
                                          env)
                if out != expected:
                    raise SystemExit(f"{workload.key} under {src}: not the native output")
                walls[index].append(seconds)
                cpus[index].append(cpu)
        base = statistics.median(native)
        cells = [f"{statistics.median(w):.3f} ({statistics.median(w) / base:.2f}x) / {statistics.median(c):.3f}"
                 for w, c in zip(walls, cpus, strict=True)]
        print(f"| {workload.name} | {base:.3f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
