#!/usr/bin/env python3
"""systrace benchmark: every workload under every configuration, alternated run by run.

    python3 bench/bench.py [--runs 5] [--only WORKLOAD] [--json bench/results.json]

Prints a Markdown table of medians and ratios against native; the ratio of each run is
taken against the native run right before it (pair by pair), and the table shows the
median of those ratios. The C loops also time their own loop (printed on stderr), which
gives a loop ratio and a per-call cost free of anyone's start-up. Timing is never
asserted by the test suite.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# what the `systrace` console script runs (`-m` would add runpy's imports, ~4 ms)
SYSTRACE = [sys.executable, "-c", "from systrace.cli import entry; entry()"]


@dataclass
class Workload:
    name: str
    argv: list[str]
    calls: int = 0  # calls in the program's own timed loop, for the per-call figure


@dataclass
class Config:
    name: str
    prefix: list[str]
    needs: str | None = None  # a program that must be installed
    learn_first: bool = False  # run `systrace -A` on the workload into POLICY_DIR first
    faults: bool = False  # injected faults may change what a run does: such runs are counted, not timed


@dataclass
class Result:
    workload: str
    config: str
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    loop_seconds: list[float] = field(default_factory=list)  # the loop's own time, as it reports it
    loop_ratios: list[float] = field(default_factory=list)
    peak_rss_kib: int = 0  # systrace's own, from --stats
    errors: int = 0
    diverged: int = 0  # runs whose status or output differed from the native run's: not timed
    runs: int = 0


def build(scratch: Path) -> dict[str, str]:
    out = {}
    for name in ("openat_loop", "getppid_loop", "threads_open", "filter_floor", "emulated_open_floor"):
        binary = scratch / name
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(HERE / f"{name}.c")], check=True)
        out[name] = str(binary)
    sources = scratch / "cc"
    sources.mkdir()
    for index in range(4):  # a few small translation units for the gcc workload
        (sources / f"unit{index}.c").write_text(
            "#include <stdio.h>\n#include <string.h>\n"
            f"int f{index}(const char *s) {{ return (int)strlen(s) + {index}; }}\n"
            f"void g{index}(void) {{ printf(\"%d\\n\", f{index}(\"x\")); }}\n")
    out["cc_dir"] = str(sources)
    return out


def workloads(binaries: dict[str, str], openat_iterations: int) -> list[Workload]:
    return [
        Workload("true (start-up and teardown)", ["true"]),
        Workload("getppid loop (200k, kernel fast path)", [binaries["getppid_loop"], "200000"], calls=200000),
        Workload(f"openat+close loop ({openat_iterations // 1000}k)", [binaries["openat_loop"], str(openat_iterations)],
                 calls=openat_iterations),
        Workload("python3 -c 'import json, email, http.client'", ["python3", "-c", "import json, email, http.client"]),
        Workload("tar cf - /usr/lib/python3* | wc -c", ["sh", "-c", "tar cf - /usr/lib/python3* 2>/dev/null | wc -c"]),
        Workload("gcc -c of 4 files", ["sh", "-c", f"cd {binaries['cc_dir']} && gcc -c unit0.c unit1.c unit2.c unit3.c"]),
        Workload("sh loop starting 200 processes", ["sh", "-c", "for i in $(seq 200); do /bin/true; done"]),
        Workload("16 threads opening files (16x500)", [binaries["threads_open"], "500"]),
    ]


POLICY_DIR = "{policy_dir}"


def configs() -> list[Config]:
    return [
        Config("native", []),
        Config("systrace --permit-all", SYSTRACE + ["--permit-all"]),
        Config("engine: every call notified, permitted", [sys.executable, str(HERE / "notify_all.py")]),
        Config("systrace -a (learned policy)", SYSTRACE + ["-d", POLICY_DIR, "-a"], learn_first=True),
        Config("systrace -a, everything on one CPU (taskset -c 0)", ["taskset", "-c", "0"] + SYSTRACE + ["-d", POLICY_DIR, "-a"],
               needs="taskset", learn_first=True),
        Config("systrace -A (learning)", SYSTRACE + ["-d", POLICY_DIR + "-learning", "-A"]),
        Config("systrace -a -r 1 (1% faults, fixed seed)", SYSTRACE + ["-d", POLICY_DIR, "-a", "-r", "1", "--seed", "1"],
               learn_first=True, faults=True),
        Config("strace -f", ["strace", "-f", "-qq", "-o", "/dev/null"], needs="strace"),
        Config("fiu-run 1% open faults", ["fiu-run", "-x", "-c", "enable_random name=posix/io/oc/open,probability=0.01"],
               needs="fiu-run", faults=True),
        Config("strace -f --seccomp-bpf -e trace=%file", ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=%file",
                                                           "-o", "/dev/null"], needs="strace"),
    ]


def expand(argv: list[str], policy_dir: str) -> list[str]:
    out = [a.replace(POLICY_DIR, policy_dir) for a in argv]
    if out[: len(SYSTRACE)] == SYSTRACE:
        out.insert(len(SYSTRACE), "--stats")  # systrace's own peak RSS
    return out


RSS = re.compile(rb"peak RSS (\d+) KiB")
LOOP = re.compile(rb"^loop: ([0-9.]+) s$", re.MULTILINE)


class Outcome:
    """One timed run: how long it took and what it did (status, digest of stdout)."""

    def __init__(self, seconds: float, status: int, output: str):
        self.seconds, self.status, self.output = seconds, status, output

    def same_as(self, other: Outcome) -> bool:
        return self.status == other.status and self.output == other.output


def time_once(argv: list[str], env: dict[str, str], rss: list[int] | None = None,
              loop: list[float] | None = None) -> Outcome:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if rss is not None:
        rss.extend(int(m) for m in RSS.findall(result.stderr))
    if loop is not None:
        loop.extend(float(m) for m in LOOP.findall(result.stderr))
    return Outcome(elapsed, result.returncode, hashlib.sha256(result.stdout).hexdigest())


def run(runs: int, only: str | None, openat_iterations: int, config_filter: str | None = None
        ) -> tuple[list[Workload], list[Config], dict, list[tuple[str, str]]]:
    scratch = Path(tempfile.mkdtemp(prefix="systrace-bench-"))
    # The system's PATH: a version manager's shims (pyenv's `python3` is a bash script)
    # would add their own processes to every workload. systrace itself runs from this
    # interpreter, with its modules compiled once, as an installed package would be
    # (with PYTHONDONTWRITEBYTECODE set, every run would compile them again).
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PATH="/usr/local/bin:/usr/bin:/bin")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    try:
        binaries = build(scratch)
        chosen = [w for w in workloads(binaries, openat_iterations) if not only or only in w.name]
        cfgs = [c for c in configs() if c.needs is None or shutil.which(c.needs)]
        if config_filter:
            wanted = config_filter.split(",")
            cfgs = [c for c in cfgs if c.name == "native" or any(w in c.name for w in wanted)]
        results: dict[tuple[str, str], Result] = {}
        for number, workload in enumerate(chosen):
            policy_dir = str(scratch / f"policies-{number}")
            time_once(workload.argv, env)  # warm caches
            for config in cfgs:
                if config.learn_first:  # twice: the second run must add nothing
                    for _ in range(2):
                        time_once(SYSTRACE + ["-d", policy_dir, "-A"] + workload.argv, env)
                    break  # one policy directory serves every configuration that enforces
            for _ in range(runs):
                native: Outcome | None = None
                native_loop = None
                for config in cfgs:  # alternate configurations run by run
                    rss: list[int] = []
                    loop: list[float] = []
                    outcome = time_once(expand(config.prefix, policy_dir) + workload.argv, env, rss, loop)
                    result = results.setdefault((workload.name, config.name), Result(workload.name, config.name))
                    result.runs += 1
                    result.peak_rss_kib = max([result.peak_rss_kib, *rss])
                    if config.name == "native":
                        if outcome.status != 0:
                            result.errors += 1
                            native = None
                            continue
                        native = outcome
                    elif native is None or not outcome.same_as(native):
                        # A run that did not do what the native run did (a fault ended it early,
                        # a denial changed its output) is not a measurement of the same work.
                        result.diverged += 1
                        continue
                    result.seconds.append(outcome.seconds)
                    own_loop = loop[-1] if loop else None
                    if own_loop is not None:
                        result.loop_seconds.append(own_loop)
                    if config.name == "native":
                        native_loop = own_loop
                    else:
                        result.ratios.append(outcome.seconds / native.seconds)
                        if own_loop is not None and native_loop:
                            result.loop_ratios.append(own_loop / native_loop)
        return chosen, cfgs, results, probes(binaries, env, runs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def probes(binaries: dict[str, str], env: dict[str, str], runs: int, scratch: Path) -> list[tuple[str, str]]:
    """Floors that bound what any configuration can reach here: the cost of any seccomp
    filter, a C supervisor doing an emulated open's system calls with no logic, and the
    interpreter's own start-up with and without this machine's site hooks."""
    out = []
    for name in ("filter_floor", "emulated_open_floor"):
        text = subprocess.run([binaries[name]], capture_output=True, text=True, check=True).stdout
        out.extend(tuple(line.split(": ", 1)) for line in text.splitlines())  # type: ignore[misc]
    true_path = shutil.which("true") or "/bin/true"
    policies = str(scratch / "probe-policies")
    time_once(SYSTRACE + ["-d", policies, "-A", true_path], env)
    starts = {
        "true": [true_path],
        "python3 -S -c pass (interpreter, no site)": [sys.executable, "-S", "-c", "pass"],
        "python3 -c pass (interpreter with this machine's site)": [sys.executable, "-c", "pass"],
        "systrace -a true, interpreter without site (-S)": [sys.executable, "-S", *SYSTRACE[1:], "-d", policies, "-a",
                                                            true_path],
        "systrace -a true (as the table runs it)": [*SYSTRACE, "-d", policies, "-a", true_path],
    }
    # what a user gets from `pip install .` into a fresh virtual environment: its own
    # site-packages, none of this machine's .pth files
    venv = scratch / "venv"
    clean_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    installed = (subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True).returncode == 0
                 and subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True,
                                    env=clean_env).returncode == 0)
    if installed:
        starts["systrace -a true, `pip install .` in a fresh venv"] = [str(venv / "bin" / "systrace"), "-d", policies,
                                                                       "-a", true_path]
    for label, argv in starts.items():
        run_env = clean_env if label.endswith("fresh venv") else env
        outcomes = [time_once(argv, run_env) for _ in range(max(runs, 5) * 4)]
        times = [o.seconds for o in outcomes if o.status == 0]
        median = statistics.median(times) if times else float("nan")
        out.append((f"start-up: {label}", f"{median * 1000:.1f} ms"))
    if not installed:
        out.append(("start-up: systrace -a true, `pip install .` in a fresh venv", "not measured (pip install failed)"))
    return out


def cell(text: str) -> str:
    """A Markdown table cell: a `|` in a workload's command would split it."""
    return text.replace("|", "\\|")


def table(chosen: list[Workload], cfgs: list[Config], results: dict) -> str:
    lines = ["| workload | configuration | median s | ratio vs native | extra vs native | loop ratio | extra per call "
             "| systrace peak RSS | runs like native |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for workload in chosen:
        native = results.get((workload.name, "native"))
        native_median = statistics.median(native.seconds) if native and native.seconds else None
        for config in cfgs:
            result = results.get((workload.name, config.name))
            if not result or not result.seconds:
                done = f"0/{result.runs}" if result else "0/0"
                lines.append(f"| {cell(workload.name)} | {cell(config.name)} | failed | | | | | | {done} |")
                continue
            median = statistics.median(result.seconds)
            ratio = f"{statistics.median(result.ratios):.2f}x" if result.ratios else "1.00x"
            extra = f"{(median - native_median) * 1000:+.1f} ms" if native_median and config.name != "native" else ""
            loop_ratio = f"{statistics.median(result.loop_ratios):.3f}x" if result.loop_ratios else ""
            per_call = ""
            if workload.calls and native and native.loop_seconds and result.loop_seconds and config.name != "native":
                # the programs' own loop times: nobody's start-up is in them
                own = statistics.median(result.loop_seconds) - statistics.median(native.loop_seconds)
                per_call = f"{own / workload.calls * 1e6:.2f} µs"
            rss = f"{result.peak_rss_kib / 1024:.1f} MiB" if result.peak_rss_kib else ""
            like_native = f"{len(result.seconds)}/{result.runs}"
            if result.diverged:
                like_native += " (differed: not timed)"
            lines.append(f"| {cell(workload.name)} | {cell(config.name)} | {median:.4f} | {ratio} | {extra} | {loop_ratio} "
                         f"| {per_call} | {rss} | {like_native} |")
    return "\n".join(lines)


def install() -> None:
    """What the benchmark compares against, from Debian's packages."""
    missing = [package for program, package in (("strace", "strace"), ("fiu-run", "fiu-utils"), ("gcc", "gcc"))
               if not shutil.which(program)]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="apt-get install strace, fiu-utils and gcc if missing")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run workloads whose name contains this")
    parser.add_argument("--configs", help="run only configurations whose name contains one of these (comma list); "
                        "native always runs")
    parser.add_argument("--openat-iterations", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.install:
        install()
    chosen, cfgs, results, floors = run(args.runs, args.only, args.openat_iterations, args.configs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}")
    print(f"runs: {args.runs} per configuration, alternated; medians\n")
    print(table(chosen, cfgs, results))
    print("\n| probe | value |\n|---|---:|")
    for name, value in floors:
        print(f"| {name} | {value} |")
    if args.json:
        args.json.write_text(json.dumps({"results": [r.__dict__ for r in results.values()], "probes": dict(floors)},
                                        indent=1))
    # a configuration that cannot run a workload as natively is a failure, unless it
    # injects faults on purpose
    faulty = {c.name for c in cfgs if c.faults}
    failed = [r for r in results.values() if r.errors or (r.diverged and r.config not in faulty)]
    for r in failed:
        print(f"bench: {r.config} on {r.workload}: {r.errors} failed, {r.diverged} differed from native", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
