#!/usr/bin/env python3
"""CPU time per routed call, systrace against the C and Python floors (issue 16 item 4).

    PYTHONPATH=src python3 bench/cpu_per_call.py [--calls 20000] [--runs 5] [--src DIR ...]

Wall-clock time per call swings 3x on a shared machine; the CPU time a run uses (user +
system, of systrace and its tracee, from wait4) much less, and it is what systrace's own
work adds. A 10-call run's CPU time is taken off each run (start-up and teardown). Each
row is the median of --runs runs of a C loop, one routed call per iteration:

- CONTINUE, decided by name: lseek on a held descriptor (bench/held_loop.c), which the
  loop's policy permits by name; routed because another reachable binary's policy denies it
  (README "Caches": decided by name only). Nothing logged;
- CONTINUE, openat on its flags: openat routed by a rule the kernel cannot evaluate
  (`oflags`), continued: translated (the path read and resolved) and matched. Nothing logged;
- fstat (newfstatat on a descriptor, ""): glibc's fstat of a held descriptor (bench/fstat_loop.c),
  permitted by the learned base (`fd match "*"`), carried out by systrace on the descriptor
  (kernel/emulate_fstat.py: never continued, the kernel would read the path again); its
  floor is the CONTINUE floor's (the C floor makes no stat, so it is a floor);
- emulated open: openat permitted by a learned filename rule, opened by systrace (ADDFD);
- --permit-all -E: every openat continued and logged (a text record to /dev/null);

beside the floors, which run the same loop: the C floor (bench/continue_floor.c: receive
and continue, no logic; bench/emulated_open_floor.c for the emulated open: the same system
calls as systrace) and the Python floor (bench/continue_floor.py: the same bare loop in
Python; bench/emulated_open_floor.py: the emulated open's system calls, from Python;
with --systrace, the calls systrace itself makes for it).
--src runs the systrace rows for other source trees (before/after, side by side: their
runs interleaved). Timing is never asserted by tests.

While a FUSE mount exists anywhere on the machine systrace reads tracee memory through a
bounded reader (~450 µs a read) and these figures mean nothing. If one stays (a stale
mount of another program's), SYSTRACE_TEST_FUSE_UNSEEN=1 in the environment is passed
to systrace: every FUSE check then says "none" (kernel/mounts.py), which leaves out the
FUSE watch's fstat and the mount table's poll too; for a comparison of trees only.
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


def held_policies(systrace: list[str], env: dict[str, str], work: Path, loop: Path, tag: str) -> Path:
    """The held loop's policy, learned, with another reachable policy denying lseek."""
    from bench import held_policies as route_for_another  # bench/bench.py: the same setup as its CONTINUE row

    policies = work / f"held-{tag}"
    subprocess.run([*systrace, "-d", str(policies), "-A", str(loop), "10"], env=env, check=True, capture_output=True)
    route_for_another(policies)
    return policies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", action="append", default=None, help="a systrace source tree (default: this one)")
    options = parser.parse_args()
    sources = options.src or [str(HERE.parent / "src")]
    work = Path(tempfile.mkdtemp())
    for name in ("openat_loop", "held_loop", "fstat_loop", "emulated_open_floor", "continue_floor"):
        subprocess.run(["gcc", "-O2", "-o", str(work / name), str(HERE / f"{name}.c")], check=True)
    calls = str(options.calls)
    loop = [str(work / "openat_loop"), calls]
    held = [str(work / "held_loop"), calls]
    fstats = [str(work / "fstat_loop"), calls]
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
    if os.environ.get("SYSTRACE_TEST_FUSE_UNSEEN") == "1":  # a stale FUSE mount on the machine: see below
        base_env["SYSTRACE_TEST_FUSE_UNSEEN"] = "1"

    def sample_us(argv: list[str], env: dict[str, str]) -> float:
        """CPU per call of one run of the loop, less a 10-call run's (start-up and teardown)."""
        short = [*argv[:-1], "10"] if argv[-1] == calls else [*argv[:-2], "10", argv[-1]]
        return (cpu_seconds(argv, env) - cpu_seconds(short, env)) / (options.calls - 10) * 1e6

    def median_us(argv: list[str], env: dict[str, str]) -> float:
        return statistics.median(sample_us(argv, env) for _ in range(options.runs))

    floor = [str(work / "continue_floor")]
    python_floor = [sys.executable, str(HERE / "continue_floor.py")]
    lseek, openat = "8", "257"
    by_name, flags = "CONTINUE, decided by name (lseek)", "CONTINUE, openat on its flags (translated)"
    emulated, logged = "emulated open", "--permit-all -E (openat continued + logged)"
    fstat = "fstat (newfstatat on a descriptor, carried out by systrace)"
    rows: dict[str, list[str]] = {
        by_name: [f"{median_us([*floor, lseek, *held], base_env):.1f}",
                  f"{median_us([*python_floor, '--nr', lseek, *held], base_env):.1f}", ""],
        flags: [f"{median_us([*floor, openat, *loop], base_env):.1f}",
                f"{median_us([*python_floor, '--nr', openat, *loop], base_env):.1f}", ""],
        fstat: [f"{median_us([*floor, '262', *fstats], base_env):.1f}",
                f"{median_us([*python_floor, '--nr', '262', *fstats], base_env):.1f}", ""],
        # (the C floor's "emulate" makes the ADDFD wake-up hint's three calls, as systrace: so do both Python floors)
        emulated: [f"{median_us([str(work / 'emulated_open_floor'), calls, 'emulate'], base_env):.1f}",
                   f"{median_us([sys.executable, str(HERE / 'emulated_open_floor.py'), '--hint', *loop], base_env):.1f}",
                   f"{median_us([sys.executable, str(HERE / 'emulated_open_floor.py'), '--systrace', '--hint', *loop], base_env):.1f}"],
        logged: ["(the openat CONTINUE floors)", "", ""],
    }
    commands: dict[str, list[tuple[list[str], dict[str, str]]]] = {by_name: [], flags: [], fstat: [], emulated: [],
                                                                   logged: []}
    for index, source in enumerate(sources):
        env = dict(base_env, PYTHONPATH=source)
        systrace = [sys.executable, "-m", "systrace"]
        learned = work / f"learned-{index}"
        subprocess.run([*systrace, "-d", str(learned), "-A", str(work / "openat_loop"), "10"], env=env, check=True,
                       capture_output=True)
        # the same policy with the loop's open permitted on a flag the kernel cannot test: continued
        routed = work / f"routed-{index}"
        routed.mkdir()
        for policy in [p for p in learned.iterdir() if not p.name.startswith(".")]:
            header, _, body = policy.read_text().partition("\n")
            (routed / policy.name).write_text(f'{header}\n\tnative-openat: oflags eq "ro" then permit\n{body}')
        held_dir = held_policies(systrace, env, work, work / "held_loop", str(index))
        commands[by_name].append(([*systrace, "-d", str(held_dir), "-a", *held], env))
        commands[flags].append(([*systrace, "-d", str(routed), "-a", *loop], env))
        fstat_dir = work / f"fstat-{index}"
        subprocess.run([*systrace, "-d", str(fstat_dir), "-A", str(work / "fstat_loop"), "10"], env=env, check=True,
                       capture_output=True)
        commands[fstat].append(([*systrace, "-d", str(fstat_dir), "-a", *fstats], env))
        commands[emulated].append(([*systrace, "-d", str(learned), "-a", *loop], env))
        commands[logged].append(([*systrace, "--permit-all", "-E", "/dev/null", *loop], env))
    for label, row in commands.items():  # the trees' runs interleaved: a change in load hits each alike
        samples: list[list[float]] = [[] for _ in row]
        for _ in range(options.runs):
            for index, (argv, env) in enumerate(row):
                samples[index].append(sample_us(argv, env))
        rows[label].extend(f"{statistics.median(cell):.1f}" for cell in samples)
    print(f"CPU µs per call, median of {options.runs} runs of {options.calls} calls (systrace + tracee)")
    print("| per routed call | C floor | Python floor | Python floor, systrace's calls | "
          + " | ".join(Path(s).resolve().parent.name for s in sources) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(sources))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
