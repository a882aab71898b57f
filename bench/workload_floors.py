#!/usr/bin/env python3
"""The C floor measured on the workloads themselves (issue 16's macro targets).

    python3 bench/workload_floors.py [--runs 5] [--only tar,gcc,python,sh] [--installed] [--smoke]

bench/bench.py's floor model prices each routed call at its kind's floor measured in a
tight loop, where every cache is warm. A real workload's calls are each on a new path,
with the tracee's own I/O between them. Here each workload (bench/bench.py's, full size)
runs, alternated run by run:

- natively;
- under `systrace -a` with its learned policy (`--stats`: the calls routed);
- under bench/workload_floor.c: the very BPF program `systrace -a` installs for it (dumped
  from systrace itself, so exactly the same calls are routed), served by a C supervisor
  with no logic making fewer system calls per kind than systrace (see its comment);
- under bench/workload_floor.py: the same supervisor, call for call, in bare Python
  (`python3 -S`, the interpreter systrace runs under), its start-up included.

and prints the medians' ratios to native. A ratio target under the C floor is out of
reach for any supervisor of this design; under the Python floor, for one in Python. Each run's status and output must be the
native run's (else the table says so). Timing is never asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the same workloads, sizes and run helpers)


def median_ratio(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x" if ratios else "failed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="tar,gcc,python,sh", help="workload keys, comma-separated")
    parser.add_argument("--smoke", action="store_true", help="the smoke run's small workloads (a check that it all runs)")
    parser.add_argument("--installed", action="store_true",
                        help="run systrace installed in a fresh venv (pip install .), as bench/bench.py does")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"),
           **{k: v for k, v in os.environ.items() if k == "PYTHONDONTWRITEBYTECODE"}}
    if not args.installed:
        env["PYTHONPATH"] = str(bench.ROOT / "src")
    with tempfile.TemporaryDirectory(prefix="workload-floor-") as scratch_name:
        scratch = Path(scratch_name)
        python = sys.executable
        if args.installed:
            why_not = bench.use_installed(scratch, env)
            if why_not:
                raise SystemExit(f"workload_floor: {why_not}")
            python = bench.ENGINE_PYTHON[0]
        systrace = list(bench.SYSTRACE)
        sizes = bench.SMOKE if args.smoke else bench.Sizes()
        binaries = bench.build(scratch, sizes)
        floor = scratch / "workload_floor"
        subprocess.run(["gcc", "-O2", "-o", str(floor), str(HERE / "workload_floor.c")], check=True)
        keys = args.only.split(",")
        chosen = [w for w in bench.workloads(binaries, sizes) if w.key in keys]
        unknown = set(keys) - {w.key for w in chosen}
        if unknown:
            parser.error(f"no such workload: {', '.join(sorted(unknown))}")
        print("| workload | native s | systrace -a | C floor on the workload | Python floor on the workload "
              "| routed (systrace) | routed (floor) | floor's calls by kind | runs like native |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|")
        for workload in chosen:
            policies = scratch / f"policies-{workload.key}"
            for _ in range(2):  # learned as the benchmark does: a second run adds what the first's order hid
                subprocess.run([*systrace, "-d", str(policies), "-A", *workload.argv], capture_output=True, env=env,
                               timeout=600)
            program = scratch / f"filter-{workload.key}.bpf"
            bench.dump_filter(python, str(policies), workload.argv, program, env)
            found = bench.absolute(workload.argv, env)  # (the floors exec without a PATH search)
            argv = {"native": workload.argv,
                    "systrace": [*systrace, "--stats", "-d", str(policies), "-a", *workload.argv],
                    "floor": [str(floor), str(program), *found],
                    "python": [python, "-S", str(HERE / "workload_floor.py"), str(program), *found]}
            times: dict[str, list[float]] = {name: [] for name in argv}
            ratios: dict[str, list[float]] = {"systrace": [], "floor": [], "python": []}
            unlike = {"systrace": 0, "floor": 0, "python": 0}
            routed: dict[str, str] = {"systrace": "", "floor": "", "kinds": ""}
            for _ in range(args.runs):
                native, _loop = bench.time_once(argv["native"], env)
                times["native"].append(native.seconds)
                for name in ("systrace", "floor", "python"):
                    outcome, _loop = bench.time_once(argv[name], env)
                    if not outcome.same_as(native):
                        unlike[name] += 1
                        continue
                    times[name].append(outcome.seconds)
                    ratios[name].append(outcome.seconds / native.seconds)
                    if name == "systrace":
                        counts = bench.ROUTED.findall(outcome.stderr)
                        routed["systrace"] = counts[-1].decode() if counts else "?"
                    elif name == "floor":
                        counted = bench.FLOOR_ROUTED.findall(outcome.stderr)
                        if counted:
                            routed["floor"], routed["kinds"] = counted[-1][0].decode(), counted[-1][1].decode()
            like = ", ".join(f"{name} {args.runs - unlike[name]}/{args.runs}" for name in unlike)
            print(f"| {bench.cell(workload.name)} | {statistics.median(times['native']):.4f} "
                  f"| {median_ratio(ratios['systrace'])} | {median_ratio(ratios['floor'])} "
                  f"| {median_ratio(ratios['python'])} "
                  f"| {routed['systrace']} | {routed['floor']} | {routed['kinds']} | {like} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
