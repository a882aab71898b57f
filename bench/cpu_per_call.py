#!/usr/bin/env python3
"""CPU time per routed call, systrace against the C floors (issue 16 item 4).

    PYTHONPATH=src python3 bench/cpu_per_call.py [--calls 20000] [--runs 5] [--src DIR ...]

Wall-clock time per call swings 3x on a shared machine; the CPU time a run uses (user +
system, of systrace and its tracee, from wait4) much less, and it is what systrace's own
work adds. A 10-call run's CPU time is taken off each run (start-up and teardown). Each
row is the median of --runs runs of an openat+close loop:

- CONTINUE: openat routed by a rule the kernel cannot evaluate (`oflags`), continued;
- emulated open: openat permitted by a learned filename rule, opened by systrace (ADDFD);
- --permit-all -E: every openat continued and logged (a text record to /dev/null);

beside the C floors (bench/emulated_open_floor.c: the same system calls, no logic).
--src runs the same rows for other source trees (before/after, side by side). Timing is
never asserted by tests.
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


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read() if process.stderr else b""
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]}... failed ({process.returncode}): {stderr[-300:]!r}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", action="append", default=None, help="a systrace source tree (default: this one)")
    options = parser.parse_args()
    sources = options.src or [str(HERE.parent / "src")]
    work = Path(tempfile.mkdtemp())
    for name in ("openat_loop", "emulated_open_floor"):
        subprocess.run(["gcc", "-O2", "-o", str(work / name), str(HERE / f"{name}.c")], check=True)
    loop = [str(work / "openat_loop"), str(options.calls)]
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
    rows: dict[str, list[str]] = {}

    def median_us(argv: list[str], env: dict[str, str]) -> float:
        """Median CPU per call of the loop, less a 10-call run's (start-up and teardown)."""
        short = [*argv[:-1], "10"] if argv[-1] == str(options.calls) else [*argv[:-2], "10", argv[-1]]
        samples = [cpu_seconds(argv, env) - cpu_seconds(short, env) for _ in range(options.runs)]
        return statistics.median(samples) / (options.calls - 10) * 1e6

    floor = [str(work / "emulated_open_floor"), str(options.calls)]
    rows["CONTINUE"] = [f"{median_us(floor + ['continue'], base_env):.1f}"]
    rows["emulated open"] = [f"{median_us(floor + ['emulate'], base_env):.1f}"]
    rows["--permit-all -E (continue + log)"] = [""]
    for source in sources:
        env = dict(base_env, PYTHONPATH=source)
        systrace = [sys.executable, "-m", "systrace"]
        learned = work / f"learned-{len(rows['CONTINUE'])}"
        subprocess.run([*systrace, "-d", str(learned), "-A", str(work / "openat_loop"), "10"], env=env, check=True,
                       capture_output=True)
        # the same policy with the loop's open permitted on a flag the kernel cannot test: continued
        routed = work / f"routed-{len(rows['CONTINUE'])}"
        routed.mkdir()
        for policy in learned.iterdir():
            header, _, body = policy.read_text().partition("\n")
            (routed / policy.name).write_text(f'{header}\n\tnative-openat: oflags eq "ro" then permit\n{body}')
        rows["CONTINUE"].append(f"{median_us([*systrace, '-d', str(routed), '-a', *loop], env):.1f}")
        rows["emulated open"].append(f"{median_us([*systrace, '-d', str(learned), '-a', *loop], env):.1f}")
        rows["--permit-all -E (continue + log)"].append(
            f"{median_us([*systrace, '--permit-all', '-E', '/dev/null', *loop], env):.1f}")
    print(f"CPU µs per call, median of {options.runs} runs of {options.calls} calls (systrace + tracee)")
    print("| per routed call | C floor | " + " | ".join(Path(s).resolve().parent.name for s in sources) + " |")
    print("|---|---:|" + "---:|" * len(sources))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
