#!/usr/bin/env python3
"""Macro workloads under `-a`, two (or more) source trees side by side in one run.

    python3 bench/compare_trees.py --src OLD/src --src NEW/src [--runs 5] [--only tar,gcc]

For each workload of bench/bench.py (python import, tar, gcc, sh loop), the policy is
learned once (with the first tree), then each run alternates: native, then `-a` under
each tree. Prints the median wall time and its ratio to native, and the median CPU time
(systrace + command, from wait4), per tree; then, per tree, the calls routed (`--stats`,
by system call and by how they were carried out) and the workload's C floor: its native
time plus each routed call at the C floor of its kind (bench.py's FloorModel, with the
floors measured by this run). The output of each run is checked against the native
run's (a run that did less work is no speed). systrace runs as `python3 -S`: this
machine's site hooks (a .pth file importing certifi, some 50 ms of CPU) are not what an
installed systrace pays (bench/startup.py's `python3 -c pass` against `-S`). Timing is never asserted by tests: this is
a benchmark.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import CARRIED, FloorModel, Result, Sizes, build, kind_floors, workloads  # noqa: E402 - bench/ is not a package

ROUTED_BY_CALL = re.compile(rb"^systrace: routed by system call: (.*)$", re.MULTILINE)


def timed(argv: list[str], env: dict[str, str], stderr: list[bytes] | None = None) -> tuple[float, float, bytes]:
    """(wall s, CPU s, stdout) of one run; its stderr appended to `stderr` if given."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors)
        out = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        errors.seek(0)
        if stderr is not None:
            stderr.append(errors.read())
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:6]}... failed ({status})")
    return elapsed, usage.ru_utime + usage.ru_stime, out


def _systrace(src: str) -> list[str]:
    """systrace of the tree `src`, as `python3 -S` (see above). The tree is put on sys.path
    by the command line, not PYTHONPATH, which the command would inherit (a python3
    workload then looks in the tree, and a policy learned with one tree refuses another's)."""
    path = str(Path(src).resolve())
    return [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {path!r}); from systrace.cli import entry; entry()"]


def _counts(text: bytes) -> dict[str, int]:
    return {name: int(count) for name, count in (item.rsplit(" ", 1) for item in text.decode().split(", "))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="python,tar,gcc,sh")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    sizes = Sizes()
    binaries = build(scratch, sizes)
    chosen = [w for w in workloads(binaries, sizes) if w.key in options.only.split(",")]
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(scratch)}
    # SYSTRACE_TEST_FUSE_UNSEEN=1 (kernel/mounts.py): measure as with no FUSE mount on the
    # machine when another's is left mounted (else every memory access is the reader's)
    base_env.update({k: v for k, v in os.environ.items() if k == "SYSTRACE_TEST_FUSE_UNSEEN"})
    names = [Path(src).resolve().parent.name for src in options.src]
    probes = kind_floors(binaries, sizes, scratch)  # each kind's C floor and native loop (bench.py's)
    model = FloorModel(probes)
    print("C floors: " + "; ".join(f"{name} {value}" for name, value in probes.items() if "Python" not in name))
    routed_rows: list[str] = []
    print(f"median of {options.runs} runs, alternated; wall s (ratio to native) / CPU s")
    print("| workload | native | " + " | ".join(f"-a {name}" for name in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for workload in chosen:
        policies = scratch / f"policies-{workload.key}"
        for _ in range(2):  # twice: the second run learns what the first one's learning changed
            subprocess.run([*_systrace(options.src[0]), "-d", str(policies), "-A", *workload.argv],
                           env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        native: list[float] = []
        walls: list[list[float]] = [[] for _ in names]
        cpus: list[list[float]] = [[] for _ in names]
        stats: list[list[bytes]] = [[] for _ in names]
        for _ in range(options.runs):
            seconds, _, expected = timed(workload.argv, base_env)
            native.append(seconds)
            for index, src in enumerate(options.src):
                seconds, cpu, out = timed([*_systrace(src), "-d", str(policies), "-a", "--stats", *workload.argv],
                                          base_env, stats[index])
                if out != expected:
                    raise SystemExit(f"{workload.key} under {src}: not the native output")
                walls[index].append(seconds)
                cpus[index].append(cpu)
        base = statistics.median(native)
        cells = [f"{statistics.median(w):.3f} ({statistics.median(w) / base:.2f}x) / {statistics.median(c):.3f}"
                 for w, c in zip(walls, cpus, strict=True)]
        print(f"| {workload.name} | {base:.3f} | " + " | ".join(cells) + " |", flush=True)
        for name, errors in zip(names, stats, strict=True):
            by_call = ROUTED_BY_CALL.findall(errors[-1])
            carried = [_counts(found[-1]) for found in (CARRIED.findall(e) for e in errors) if found]
            result = Result(workload.name, name, carried=carried)
            ratio = model.ratio(result, base)
            routed_rows.append(f"| {workload.name} | {name} | {by_call[-1].decode() if by_call else ''} "
                               f"| {', '.join(f'{k} {v}' for k, v in carried[-1].items()) if carried else ''} "
                               f"| {f'{ratio:.2f}x' if ratio is not None else 'not known'} |")
    print("\nrouted calls (the last run's), and the floor: native + each routed call at its kind's C floor")
    print("| workload | tree | routed by system call | carried out as | C floor vs native |")
    print("|---|---|---|---|---:|")
    print("\n".join(routed_rows))


if __name__ == "__main__":
    main()
