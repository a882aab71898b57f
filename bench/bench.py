#!/usr/bin/env python3
"""systrace benchmark: every workload under every configuration, alternated run by run.

    python3 bench/bench.py --install --runs 5 --write BENCHMARKS.md   # BENCHMARKS.md, in one run
    python3 bench/bench.py --smoke                                   # a quick run of every part

Prints BENCHMARKS.md's content (Markdown): the table of medians and ratios against native,
the C floors of this machine, and issue 16's targets, each target against what this run
measured, met or not, with the floor (C, or Python) that puts an unreachable one out of
reach. Everything comes from the one run: native, systrace's configurations (the console
script of a fresh venv: an installed systrace), strace -f and strace -f --seccomp-bpf side
by side, and the floors.

The ratio of each run is taken against the native run right before it (pair by pair), and
the table shows the median of those ratios. Each run's status and output are compared
with that native run's: a configuration with a run that did not do what the native run
did (a fault ended it early, a denial changed its output) is marked, and its times are not
quoted as a speed. The C loops also time their own loop (printed on stderr), which gives a
loop ratio and a per-call cost free of anyone's start-up. Timing is never asserted by the
test suite (tests/test_bench.py checks the smoke run's shape only).
"""

from __future__ import annotations

import argparse
import compileall
import datetime
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
# systrace from the checkout, as its console script starts it (`-m` would add runpy's
# imports, ~4 ms), with this interpreter and its site-packages: the fallback
CHECKOUT = [sys.executable, "-c", "from systrace.cli import entry; entry()"]
# what every configuration starts: the console script of a fresh venv when one could be
# built (use_installed), else CHECKOUT
SYSTRACE = list(CHECKOUT)
ENGINE_PYTHON = [sys.executable]  # runs bench/notify_all.py (the engine imports systrace)
POLICY_DIR = "{policy_dir}"  # replaced by the workload's learned policy directory
FRESH_DIR = "{fresh_dir}"  # replaced by a new empty directory for every run
LOG_FILE = "{log_file}"  # replaced by a scratch log file
FILTER_FILE = "{filter_file}"  # replaced by the BPF program `systrace -a` installs for the workload (dump_filter)
WORKLOAD_FLOOR = "{workload_floor}"  # replaced by bench/workload_floor.c, built
MACRO = ("tar", "gcc", "python", "sh")  # the workloads with a ratio target


@dataclass
class Sizes:
    """How much work each workload does: the full benchmark's, or the smoke run's."""

    getppid: int = 200_000
    openat: int = 20_000
    threads: int = 500  # opens per thread (16 threads)
    processes: int = 200  # the sh loop's
    tar_glob: str = "/usr/lib/python3*"
    gcc_units: int = 4
    emulated_floor: int = 20_000
    filter_floor: int = 1_000_000
    startups: int = 20  # runs of each start-up probe
    venv: bool = True  # run an installed systrace (pip install . into a fresh venv)


SMOKE = Sizes(getppid=2000, openat=200, threads=10, processes=3, tar_glob="/usr/lib/python3*/json", gcc_units=1,
              emulated_floor=200, filter_floor=10_000, startups=2)


@dataclass
class Workload:
    key: str  # what the targets name it by
    name: str
    argv: list[str]
    calls: int = 0  # calls in the program's own timed loop, for the per-call figure
    configs: tuple[str, ...] = ()  # the configurations (keys) that run it, native included; empty: all


@dataclass
class Config:
    key: str
    name: str
    prefix: list[str]
    needs: str | None = None  # a program that must be installed
    learn_first: bool = False  # run `systrace -A` on the workload into POLICY_DIR first
    routed_for_another: bool = False  # then make another reachable policy route lseek (held_policies)
    faults: bool = False  # injected faults may change what a run does: such runs are counted, not timed
    only: tuple[str, ...] = ()  # the workloads it runs (keys); empty: all
    floor: bool = False  # a supervisor with no logic under systrace's own filter: the program run by absolute path


@dataclass
class Result:
    workload: str
    config: str
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    loop_seconds: list[float] = field(default_factory=list)  # the loop's own time, as it reports it
    loop_ratios: list[float] = field(default_factory=list)
    routed: list[int] = field(default_factory=list)  # calls that reached systrace (--stats)
    carried: list[dict[str, int]] = field(default_factory=list)  # ... by how they were carried out, each run
    peak_rss_kib: int = 0  # systrace's own, from --stats
    errors: int = 0  # native runs that failed
    diverged: int = 0  # runs whose status or output differed from the native run's
    runs: int = 0

    @property
    def comparable(self) -> bool:
        """Every run did what the native run did: its times are a speed."""
        return self.runs > 0 and not self.errors and not self.diverged and len(self.seconds) == self.runs


def build(scratch: Path, sizes: Sizes) -> dict[str, str]:
    out = {}
    for name in ("openat_loop", "getppid_loop", "threads_open", "filter_floor", "emulated_open_floor", "threads_floor",
                 "held_loop", "continue_floor", "kind_floor", "fstat_loop", "path_loop", "workload_floor"):
        binary = scratch / name
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(HERE / f"{name}.c")], check=True)
        out[name] = str(binary)
    sources = scratch / "cc"
    sources.mkdir()
    for index in range(sizes.gcc_units):  # a few small translation units for the gcc workload
        (sources / f"unit{index}.c").write_text(
            "#include <stdio.h>\n#include <string.h>\n"
            f"int f{index}(const char *s) {{ return (int)strlen(s) + {index}; }}\n"
            f"void g{index}(void) {{ printf(\"%d\\n\", f{index}(\"x\")); }}\n")
    out["cc_dir"] = str(sources)
    return out


def workloads(binaries: dict[str, str], sizes: Sizes) -> list[Workload]:
    units = " ".join(f"unit{index}.c" for index in range(sizes.gcc_units))
    return [
        Workload("true", "true (start-up and teardown)", ["true"]),
        Workload("getppid", f"getppid loop ({_count(sizes.getppid)}, kernel fast path)",
                 [binaries["getppid_loop"], str(sizes.getppid)], calls=sizes.getppid),
        Workload("openat", f"openat+close loop ({_count(sizes.openat)})", [binaries["openat_loop"], str(sizes.openat)],
                 calls=sizes.openat),
        # a routed call the loop's policy decides by name (issue 16's CONTINUE target)
        Workload("held", f"lseek loop on a held descriptor ({_count(sizes.openat)}, routed for another policy)",
                 [binaries["held_loop"], str(sizes.openat)], calls=sizes.openat,
                 configs=("native", "by-name", "permit-all-log")),
        Workload("python", "python3 -c 'import json, email, http.client'",
                 ["python3", "-c", "import json, email, http.client"]),
        Workload("tar", f"tar cf - {sizes.tar_glob} | wc -c", ["sh", "-c", f"tar cf - {sizes.tar_glob} 2>/dev/null | wc -c"]),
        Workload("gcc", f"gcc -c of {sizes.gcc_units} file{'s' if sizes.gcc_units > 1 else ''}",
                 ["sh", "-c", f"cd {binaries['cc_dir']} && gcc -c {units}"]),
        Workload("sh", f"sh loop starting {sizes.processes} processes",
                 ["sh", "-c", f"for i in $(seq {sizes.processes}); do /bin/true; done"]),
        Workload("threads", f"16 threads opening files (16x{sizes.threads})", [binaries["threads_open"], str(sizes.threads)]),
    ]


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def configs() -> list[Config]:
    enforce = SYSTRACE + ["-d", POLICY_DIR, "-a"]
    return [
        Config("native", "native", []),
        Config("permit-all", "systrace --permit-all", SYSTRACE + ["--permit-all"]),
        Config("permit-all-log", "systrace --permit-all -E (every call routed, logged)",
               SYSTRACE + ["--permit-all", "-E", LOG_FILE], only=("openat", "held")),
        Config("by-name", "systrace -a, lseek decided by name (routed: another reachable policy differs)", enforce,
               learn_first=True, routed_for_another=True, only=("held",)),
        Config("engine", "engine: every call notified, permitted", [*ENGINE_PYTHON, str(HERE / "notify_all.py")]),
        Config("enforce", "systrace -a (learned policy)", enforce, learn_first=True),
        Config("enforce-2", "systrace -a --supervisors 2", SYSTRACE + ["--supervisors", "2", "-d", POLICY_DIR, "-a"],
               learn_first=True),
        Config("enforce-cpu0", "systrace -a, everything on one CPU (taskset -c 0)", ["taskset", "-c", "0"] + enforce,
               needs="taskset", learn_first=True),
        Config("learn", "systrace -A (learning, policy kept between runs)", SYSTRACE + ["-d", POLICY_DIR + "-learning", "-A"]),
        Config("learn-fresh", "systrace -A (fresh: an empty policy directory each run)",
               SYSTRACE + ["-d", FRESH_DIR, "-A"], only=("tar", "openat")),
        Config("faults", "systrace -a -r 1 (1% faults, fixed seed)", enforce + ["-r", "1", "--seed", "1"],
               learn_first=True, faults=True),
        Config("workload-floor", "C floor on the workload (systrace's filter, a C supervisor with no logic)",
               [WORKLOAD_FLOOR, FILTER_FILE], learn_first=True, only=MACRO, floor=True),
        Config("workload-floor-python", "Python floor on the workload (the same supervisor in bare Python, -S)",
               [*ENGINE_PYTHON, "-S", str(HERE / "workload_floor.py"), FILTER_FILE], learn_first=True, only=MACRO,
               floor=True),
        Config("strace", "strace -f", ["strace", "-f", "-qq", "-o", "/dev/null"], needs="strace"),
        Config("fiu", "fiu-run 1% open faults", ["fiu-run", "-x", "-c", "enable_random name=posix/io/oc/open,probability=0.01"],
               needs="fiu-run", faults=True),
        Config("strace-seccomp", "strace -f --seccomp-bpf -e trace=%file", ["strace", "-f", "-qq", "--seccomp-bpf", "-e",
                                                                          "trace=%file", "-o", "/dev/null"], needs="strace"),
    ]


def expand(argv: list[str], policy_dir: str, fresh_dir: str, log_file: str, more: dict[str, str] | None = None
           ) -> list[str]:
    out = [a.replace(POLICY_DIR, policy_dir).replace(FRESH_DIR, fresh_dir).replace(LOG_FILE, log_file) for a in argv]
    for placeholder, value in (more or {}).items():
        out = [a.replace(placeholder, value) for a in out]
    for index in range(len(out) - len(SYSTRACE) + 1):
        if out[index:index + len(SYSTRACE)] == SYSTRACE:
            out.insert(index + len(SYSTRACE), "--stats")  # systrace's routed calls and peak RSS
            break
    return out


# systrace with its launch replaced: the BPF program it would install is written to the
# file named in $WORKLOAD_FLOOR_FILTER, and it stops there (the command never runs)
DUMP = ("import os, sys\n"
        "import systrace.engine as engine\n"
        "def spawn(path, argv, env, program, *rest):\n"
        "    with open(os.environ['WORKLOAD_FLOOR_FILTER'], 'wb') as out:\n"
        "        out.write(program)\n"
        "    os._exit(0)\n"
        "engine.spawn = spawn\n"
        "from systrace.cli import entry\n"
        "entry()\n")


def dump_filter(python: str, policy_dir: str, argv: list[str], out: Path, env: dict[str, str]) -> None:
    """Write the BPF program `systrace -d POLICY_DIR -a ARGV` installs to `out`."""
    done = subprocess.run([python, "-c", DUMP, "-d", policy_dir, "-a", *argv], capture_output=True,
                          env={**env, "WORKLOAD_FLOOR_FILTER": str(out)}, timeout=120)
    if done.returncode != 0 or not out.exists() or out.stat().st_size % 8:
        raise SystemExit(f"workload_floor: could not dump systrace's filter for {' '.join(argv)}: "
                         + done.stderr.decode(errors="replace").strip()[-300:])


def absolute(argv: list[str], env: dict[str, str]) -> list[str]:
    """The floors exec without a PATH search: the program the workloads' PATH finds."""
    found = subprocess.run(["sh", "-c", 'command -v "$0"', argv[0]], capture_output=True, text=True,
                           env=env).stdout.strip()
    return [found or argv[0], *argv[1:]]


RSS = re.compile(rb"peak RSS (\d+) KiB")
FLOOR_ROUTED = re.compile(rb"^workload floor: (\d+) routed \((.*)\)$", re.MULTILINE)
ROUTED = re.compile(rb"^systrace: (\d+) calls reached systrace", re.MULTILINE)
CARRIED = re.compile(rb"^systrace: carried out as: (.*)$", re.MULTILINE)
LOOP = re.compile(rb"^loop: ([0-9.]+) s$", re.MULTILINE)


class Outcome:
    """One timed run: how long it took and what it did (status, digest of stdout), and what
    it said on stderr (the --stats lines, a floor's counts)."""

    def __init__(self, seconds: float, status: int, output: str, stderr: bytes = b""):
        self.seconds, self.status, self.output, self.stderr = seconds, status, output, stderr

    def same_as(self, other: Outcome) -> bool:
        return self.status == other.status and self.output == other.output


def time_once(argv: list[str], env: dict[str, str], result: Result | None = None) -> tuple[Outcome, float | None]:
    """Run once; the loop's own time (None: it prints none). --stats figures go to `result`."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if result is not None:
        result.peak_rss_kib = max([result.peak_rss_kib, *(int(m) for m in RSS.findall(done.stderr))])
        result.routed.extend(int(m) for m in ROUTED.findall(done.stderr))
        result.routed.extend(int(m[0]) for m in FLOOR_ROUTED.findall(done.stderr))  # (a workload floor's)
        for line in CARRIED.findall(done.stderr)[-1:]:  # "continue 309, emulate-open 572, ..."
            result.carried.append({kind: int(count) for kind, count in
                                   (item.rsplit(" ", 1) for item in line.decode().split(", "))})
    loops = LOOP.findall(done.stderr)
    return Outcome(elapsed, done.returncode, hashlib.sha256(done.stdout).hexdigest(), done.stderr), float(loops[-1]) if loops else None


def available(cfgs: list[Config]) -> tuple[list[Config], list[Config]]:
    """(the configurations this machine can run, the ones whose program is missing)"""
    here = [c for c in cfgs if c.needs is None or shutil.which(c.needs)]
    return here, [c for c in cfgs if c not in here]


def run(runs: int, sizes: Sizes, only: str | None, config_filter: str | None, scratch: Path, env: dict[str, str]
        ) -> tuple[list[Workload], list[Config], list[Config], dict[tuple[str, str], Result], dict[str, str]]:
    binaries = build(scratch, sizes)
    chosen = [w for w in workloads(binaries, sizes) if not only or only in w.name or only == w.key]
    cfgs, missing = available(configs())
    if config_filter:
        wanted = config_filter.split(",")
        cfgs = [c for c in cfgs if c.key == "native" or any(w in c.name or w == c.key for w in wanted)]
    results: dict[tuple[str, str], Result] = {}
    fresh = 0
    for number, workload in enumerate(chosen):
        policy_dir = str(scratch / f"policies-{number}")
        log_file = str(scratch / "log")
        mine = [c for c in cfgs if (not c.only or workload.key in c.only)
                and (not workload.configs or c.key in workload.configs)]
        time_once(workload.argv, env)  # warm caches
        if any(c.learn_first for c in mine):  # twice: the second run must add nothing
            for _ in range(2):
                time_once(SYSTRACE + ["-d", policy_dir, "-A"] + workload.argv, env)
        if any(c.routed_for_another for c in mine):
            held_policies(Path(policy_dir))
        more = {WORKLOAD_FLOOR: binaries["workload_floor"], FILTER_FILE: str(scratch / f"filter-{number}.bpf")}
        floor_argv = workload.argv
        if any(c.floor for c in mine):  # the very filter `-a` installs here, so the floors get the calls systrace gets
            dump_filter(ENGINE_PYTHON[0], policy_dir, workload.argv, Path(more[FILTER_FILE]), env)
            floor_argv = absolute(workload.argv, env)
        for _ in range(runs):
            native: Outcome | None = None
            native_loop = None
            for config in mine:  # alternate configurations run by run
                fresh += 1
                argv = (expand(config.prefix, policy_dir, str(scratch / f"fresh-{fresh}"), log_file, more)
                        + (floor_argv if config.floor else workload.argv))
                result = results.setdefault((workload.name, config.name), Result(workload.name, config.name))
                outcome, own_loop = time_once(argv, env, result)
                result.runs += 1
                if config.key == "native":
                    if outcome.status != 0:
                        result.errors += 1
                        native = None
                        continue
                    native, native_loop = outcome, own_loop
                elif native is None or not outcome.same_as(native):
                    # A run that did not do what the native run did is not a measurement
                    # of the same work: counted, never timed.
                    result.diverged += 1
                    continue
                result.seconds.append(outcome.seconds)
                if own_loop is not None:
                    result.loop_seconds.append(own_loop)
                if config.key != "native" and native is not None:
                    result.ratios.append(outcome.seconds / native.seconds)
                    if own_loop is not None and native_loop:
                        result.loop_ratios.append(own_loop / native_loop)
    threads = next((w for w in chosen if w.key == "threads"), None)
    return chosen, cfgs, missing, results, probes(binaries, env, sizes, scratch, threads is not None)


def held_policies(policies: Path) -> None:
    """The held loop's learned policies, with an exec rule reaching /usr/bin/true, whose
    policy denies lseek: the policies differ, so the kernel plan routes lseek for every
    binary, and the loop's own policy (the base's plain `permit`) decides it by name."""
    for policy in [p for p in policies.iterdir() if not p.name.startswith(".")]:
        header, _, body = policy.read_text().partition("\n")
        if "\tnative-lseek: permit\n" not in body:
            raise SystemExit(f"{policy}: no plain lseek rule learned")
        policy.write_text(f'{header}\n\tnative-execve: filename eq "/usr/bin/true" then permit\n{body}')
    (policies / "usr_bin_true").write_text(
        'Policy: /usr/bin/true, Emulation: native\n\tnative-lseek: deny\n')


def probes(binaries: dict[str, str], env: dict[str, str], sizes: Sizes, scratch: Path, threads: bool) -> dict[str, str]:
    """Floors that bound what any configuration can reach here: the cost of any seccomp
    filter, a C supervisor doing an emulated open's system calls with no logic (one
    thread, and 16 threads with one and two supervisor processes, in C and in Python), each kind's floor in C
    and in Python (kind_floors), and the interpreter's own start-up with and without this
    machine's site hooks, and with only the modules a Python supervisor imports."""
    out: dict[str, str] = {}
    runs = [([binaries["filter_floor"], str(sizes.filter_floor)], ""),
            ([binaries["emulated_open_floor"], str(sizes.emulated_floor), "continue"], "")]
    if threads:
        runs += [([binaries["threads_floor"], str(sizes.threads)], "emulated open, "),
                 ([binaries["threads_floor"], str(sizes.threads), "addfd-only"], "open + ADDFD + SEND only, "),
                 ([binaries["threads_floor"], str(sizes.threads), "continue"], "CONTINUE, ")]
    if threads:  # the same supervisors in Python, call for call (bench/threads_floor.py)
        runs.append(([sys.executable, "-S", str(HERE / "threads_floor.py"), binaries["threads_open"], str(sizes.threads)],
                     "Python emulated open, "))
    for argv, label in runs:
        text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            name, value = line.split(": ", 1)
            out[label + name] = value
    out.update(per_call_floors(binaries, sizes))
    out.update(kind_floors(binaries, sizes, scratch))
    true_path = shutil.which("true") or "/bin/true"
    policies = str(scratch / "probe-policies")
    time_once(SYSTRACE + ["-d", policies, "-A", true_path], env)
    checkout_env = dict(env, PYTHONPATH=str(ROOT / "src"))
    starts = {
        "true": ([true_path], env),
        "python3 -S -c pass (interpreter, no site)": ([sys.executable, "-S", "-c", "pass"], env),
        "python3 -c pass (interpreter with this machine's site)": ([sys.executable, "-c", "pass"], env),
        PYTHON_STARTUP: ([sys.executable, "-S", "-c", "import " + ", ".join(SUPERVISOR_MODULES)], env),
        "systrace -a true, from the checkout, interpreter without site (-S)": (
            [sys.executable, "-S", *CHECKOUT[1:], "-d", policies, "-a", true_path], checkout_env),
        "systrace -a true, from the checkout with this machine's site": (
            [*CHECKOUT, "-d", policies, "-a", true_path], checkout_env),
        "systrace -a true (as the table runs it)": ([*SYSTRACE, "-d", policies, "-a", true_path], env),
    }
    if SYSTRACE != CHECKOUT:
        starts[INSTALLED] = ([*SYSTRACE, "-d", policies, "-a", true_path], env)
    for label, (argv, run_env) in starts.items():
        outcomes = [time_once(argv, run_env)[0] for _ in range(sizes.startups)]
        times = [o.seconds for o in outcomes if o.status == 0]
        out[f"start-up: {label}"] = f"{statistics.median(times) * 1000:.1f} ms" if times else "failed"
    if SYSTRACE == CHECKOUT:
        out[f"start-up: {INSTALLED}"] = "not measured (no venv: systrace ran from the checkout)"
    out.update(beside_the_first_version(env, sizes, scratch, true_path, policies))
    return out


def beside_the_first_version(env: dict[str, str], sizes: Sizes, scratch: Path, true_path: str, policies: str
                             ) -> dict[str, str]:
    """`-a true` of the installed systrace and of the first version (REFERENCE, from this
    checkout's history, installed into its own fresh venv, its policy learned by itself),
    their runs alternated: the start-up target's comparison."""
    if SYSTRACE == CHECKOUT:
        why = "no venv: systrace ran from the checkout"
    else:
        why, reference = _reference_installed(scratch, env)
    if why:
        return {f"start-up: {REFERENCE_STARTUP}": f"not measured ({why})"}
    theirs = str(scratch / "reference-policies")
    time_once([reference, "-d", theirs, "-A", true_path], env)
    argvs = {OURS_BESIDE: [*SYSTRACE, "-d", policies, "-a", true_path],
             REFERENCE_STARTUP: [reference, "-d", theirs, "-a", true_path]}
    times: dict[str, list[float]] = {label: [] for label in argvs}
    for _ in range(sizes.startups):
        for label, argv in argvs.items():
            outcome = time_once(argv, env)[0]
            if outcome.status == 0:
                times[label].append(outcome.seconds)
    return {f"start-up: {label}": f"{statistics.median(t) * 1000:.1f} ms" if t else "failed" for label, t in times.items()}


def _reference_installed(scratch: Path, env: dict[str, str]) -> tuple[str, str]:
    """(why not, "") or ("", the first version's console script, installed in a fresh venv)."""
    tree, venv = scratch / "reference", scratch / "reference-venv"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", REFERENCE], capture_output=True)
    if archive.returncode != 0:  # (a shallow clone, or not a git checkout)
        return f"commit {REFERENCE} is not in this checkout", ""
    tree.mkdir()
    unpacked = subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, capture_output=True)
    why = _install_into(venv, tree, env) if unpacked.returncode == 0 else "tar -x failed"
    if why:
        return f"the first version could not be installed: {why}", ""
    return "", str(venv / "bin" / "systrace")


def _install_into(venv: Path, tree: Path, env: dict[str, str]) -> str | None:
    """`pip install TREE` into a fresh virtual environment VENV; None, or why it failed."""
    built = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
    if built.returncode != 0:
        return "python3 -m venv failed: " + built.stderr.decode(errors="replace").strip()[-200:]
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(tree)], capture_output=True, env=env)
    if pip.returncode != 0:
        return "pip install failed: " + (pip.stderr.decode(errors="replace").strip().splitlines() or [""])[-1][-200:]
    return None


def use_installed(scratch: Path, env: dict[str, str]) -> str | None:
    """What a user gets from `pip install .` into a fresh virtual environment: its own
    site-packages (none of this machine's .pth files), its modules compiled by pip. Every
    configuration then starts its console script. None: it is used; else why not."""
    venv = scratch / "venv"
    why = _install_into(venv, ROOT, env)
    if why:
        return why
    SYSTRACE[:] = [str(venv / "bin" / "systrace")]
    ENGINE_PYTHON[:] = [str(venv / "bin" / "python3")]
    # the first run after an install writes the preloaded modules' bundle (src/systrace/
    # preload.py), as importlib writes .pyc files: not under PYTHONDONTWRITEBYTECODE,
    # which this machine sets, so that run is made without it
    writing = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    empty = scratch / "no-policies"  # (-a loads the enforcing modules too, before it finds no policy)
    empty.mkdir(mode=0o700, exist_ok=True)
    subprocess.run([*SYSTRACE, "-d", str(empty), "-a", "true"], capture_output=True, env=writing, timeout=120)
    return None


# the modules any Python supervisor of this design imports (the listener's ioctls, poll,
# the descriptor passing, the mapped records, the signals, the limits, the memory calls)
SUPERVISOR_MODULES = ("os", "_socket", "select", "fcntl", "mmap", "struct", "errno", "_signal", "resource", "ctypes")
PYTHON_STARTUP = "Python start-up floor (python3 -S importing " + ", ".join(SUPERVISOR_MODULES) + ")"
CONTINUED, EMULATED_OPEN, EMULATED_FSTAT, EMULATED_PATH = "continue", "emulate-open", "emulate-fstat", "emulate-path"
# per kind (supervisor.carried_as): the probe of its native loop, its C floor, its Python floor
NATIVE_LOOPS = {CONTINUED: "native openat+close loop, per iteration", EMULATED_OPEN: "native openat+close loop, per iteration",
                EMULATED_FSTAT: "native fstat loop, per call", EMULATED_PATH: "native stat loop, per call"}
C_FLOORS = {CONTINUED: "CONTINUE floor, best of 3 (emulated_open_floor.c continue)",
            EMULATED_OPEN: "emulated open floor, fewest calls (emulated_open_floor.c)",
            EMULATED_FSTAT: "emulate-fstat floor (kind_floor.c, fstat loop)",
            EMULATED_PATH: "emulate-path floor (kind_floor.c, stat loop)"}
PYTHON_FLOORS = {CONTINUED: "Python CONTINUE floor (continue_floor.py, openat loop)",
                 EMULATED_OPEN: "Python emulated open floor, fewest calls (emulated_open_floor.py --fewest, --hint or not: the lower)",
                 EMULATED_FSTAT: "Python emulate-fstat floor (kind_floor.py, fstat loop)",
                 EMULATED_PATH: "Python emulate-path floor (kind_floor.py, stat loop)"}
PER_CALL = re.compile(rb"^us_per_call ([0-9.]+)$", re.MULTILINE)


def loop_us(argv: list[str], calls: int) -> float:
    """The best of 3 runs of a loop's own time per call, as it reports it (`loop: S s` on
    stderr, or path_loop's `us_per_call X`): a floor is a lower bound, and a loaded
    machine only makes a run slower."""
    per_call = []
    for _ in range(3):
        done = subprocess.run(argv, capture_output=True, check=True)
        loops, own = LOOP.findall(done.stderr), PER_CALL.findall(done.stdout)
        per_call.append(float(loops[-1]) / calls * 1e6 if loops else float(own[-1]))
    return min(per_call)


def kind_floors(binaries: dict[str, str], sizes: Sizes, scratch: Path) -> dict[str, str]:
    """Each kind's loop natively, and under its C and its Python floor supervisor (the same
    system calls, no logic; the Python ones run with -S: no site at all)."""
    n = sizes.emulated_floor
    stat_dir = scratch / "stat-dir"
    stat_dir.mkdir()
    (stat_dir / "file").write_text("")
    loops = {CONTINUED: [binaries["openat_loop"], str(n)], EMULATED_OPEN: [binaries["openat_loop"], str(n)],
             EMULATED_FSTAT: [binaries["fstat_loop"], str(n), "/etc/hostname"],
             EMULATED_PATH: [binaries["path_loop"], "stat", str(stat_dir), str(n)]}
    python = [sys.executable, "-S"]
    c_supervisors = {EMULATED_FSTAT: [binaries["kind_floor"], "fstat"], EMULATED_PATH: [binaries["kind_floor"], "path"]}
    python_supervisors = {CONTINUED: [*python, str(HERE / "continue_floor.py")],
                          EMULATED_OPEN: [*python, str(HERE / "emulated_open_floor.py"), "--fewest", "--hint"],
                          EMULATED_FSTAT: [*python, str(HERE / "kind_floor.py"), "fstat"],
                          EMULATED_PATH: [*python, str(HERE / "kind_floor.py"), "path"]}
    out: dict[str, str] = {}
    for kind, mode in ((CONTINUED, "continue"), (EMULATED_OPEN, "emulate-fewest")):  # their own loop, best of 3
        best = min(_number(line.rsplit(": ", 1)[1]) or 0.0 for _ in range(3) for line in subprocess.run(
            [binaries["emulated_open_floor"], str(n), mode], capture_output=True, text=True, check=True).stdout.splitlines())
        out[C_FLOORS[kind]] = f"{best:.2f} us"
    for kind, loop in loops.items():
        out.setdefault(NATIVE_LOOPS[kind], f"{loop_us(loop, n):.2f} us")
        if kind in c_supervisors:
            out[C_FLOORS[kind]] = f"{loop_us([*c_supervisors[kind], *loop], n):.2f} us"
        floor = loop_us([*python_supervisors[kind], *loop], n)
        if kind == EMULATED_OPEN:  # the hint pays on some machines, costs on others: a floor is the lower
            floor = min(floor, loop_us([arg for arg in python_supervisors[kind] if arg != "--hint"] + loop, n))
        out[PYTHON_FLOORS[kind]] = f"{floor:.2f} us"
    return out


INSTALLED = "systrace -a true, `pip install .` in a fresh venv"
# The start-up target is "unchanged or better" than the first version's, which its own
# BENCHMARKS.md measured at 36 ms over `true` on a quieter day: that tree, installed the
# same way, is timed with ours, runs alternated, so both see the same machine.
REFERENCE = "dfb2091"  # the first version's final commit (its BENCHMARKS.md: be9e808)
REFERENCE_STARTUP = f"systrace -a true, the first version ({REFERENCE}) installed, runs alternated with ours"
OURS_BESIDE = "systrace -a true, installed, runs alternated with the first version's"
HELD_FLOOR = "CONTINUE floor, lseek loop (continue_floor.c, median of 3)"
HELD_PYTHON_FLOOR = "Python CONTINUE floor, lseek loop (continue_floor.py, median of 3, alternated with the C floor's runs)"
EMULATED_FLOOR = "emulated open floor (emulated_open_floor.c emulate, median of 3, alternated with the Python floor's runs)"
EMULATED_PYTHON_FLOOR = ("Python emulated open floor, the C floor's calls one for one (emulated_open_floor.py --hint, "
                         "median of 3, alternated with the C floor's runs)")
FLOOR_LINE = re.compile(r"^emulated open floor: ([0-9.]+) us$", re.MULTILINE)


def per_call_floors(binaries: dict[str, str], sizes: Sizes) -> dict[str, str]:
    """The floors the two per-call targets are measured against, each beside its Python
    floor (the same system calls from bare Python, no logic), their runs alternated so
    that a slow moment of the machine falls on both: the CONTINUE floor on the held loop
    (the same program as the table's, lseek routed) and the emulated open floor (the
    same calls as emulated_open_floor.c's `emulate`, the wake-up hint included). Medians
    of 3, as the table's: the loops' own time per call."""
    held = [binaries["held_loop"], str(sizes.openat)]
    loop = [binaries["openat_loop"], str(sizes.emulated_floor)]
    python = [sys.executable, "-S"]
    pairs = (((HELD_FLOOR, [binaries["continue_floor"], "8", *held], sizes.openat),
              (HELD_PYTHON_FLOOR, [*python, str(HERE / "continue_floor.py"), "--nr", "8", *held], sizes.openat)),
             ((EMULATED_FLOOR, [binaries["emulated_open_floor"], str(sizes.emulated_floor), "emulate"], sizes.emulated_floor),
              (EMULATED_PYTHON_FLOOR, [*python, str(HERE / "emulated_open_floor.py"), "--hint", *loop], sizes.emulated_floor)))
    out: dict[str, str] = {}
    for pair in pairs:
        runs: dict[str, list[float]] = {label: [] for label, _, _ in pair}
        for _ in range(3):
            for label, argv, calls in pair:
                runs[label].append(per_call_us(subprocess.run(argv, capture_output=True, check=True), calls))
        out.update({label: f"{statistics.median(times):.2f} us" for label, times in runs.items()})
    return out


def per_call_us(done: subprocess.CompletedProcess[bytes], calls: int) -> float:
    """A floor run's time per call in its loop: the loop's own `loop: S s` (stderr) over
    its calls, or what emulated_open_floor.c prints per open."""
    loops = LOOP.findall(done.stderr)
    if loops:
        return float(loops[-1]) / calls * 1e6
    printed = FLOOR_LINE.findall(done.stdout.decode())
    if not printed:
        raise SystemExit(f"{done.args[0]}: no time per call in its output")
    return float(printed[-1])


def cell(text: str) -> str:
    """A Markdown table cell: a `|` in a workload's command would split it."""
    return text.replace("|", "\\|")


TABLE_HEADER = ("| workload | configuration | median s | ratio vs native | extra vs native | loop ratio | per call in loop "
                "| routed calls | systrace peak RSS | runs like native | C floor vs native | Python floor vs native |")
NOT_A_SPEED = "not a speed"


class FloorModel:
    """What a workload's routed calls cost at least, each kind (`--stats`' carried out as)
    at its own floor: a supervisor with no logic at all, in C (C_FLOORS) or in Python
    (PYTHON_FLOORS), adds per call its loop's time less the same loop's native time.
    Kinds without a floor of their own (continued, failed, emulated socket, readlink...,
    which make at least a receive and an answer) are priced at the CONTINUE floor. The
    workload's floor is its native time plus that for the calls of its runs (the median
    of each kind), plus, for the Python floor, the Python start-up floor: a supervisor in
    Python starts an interpreter before the program's first routed call can be answered."""

    def __init__(self, floors: dict[str, str], python: bool = False):
        names = PYTHON_FLOORS if python else C_FLOORS
        self.extra_us: dict[str, float] = {}
        for kind, name in names.items():
            floor, native = _number(floors.get(name)), _number(floors.get(NATIVE_LOOPS[kind]))
            if floor is not None and native is not None:
                self.extra_us[kind] = max(0.0, floor - native)
        startup_ms = _number(floors.get(f"start-up: {PYTHON_STARTUP}")) if python else 0.0
        self.startup_s = (startup_ms or 0.0) / 1000
        self.known = len(self.extra_us) == len(names) and startup_ms is not None

    def extra_seconds(self, carried: dict[str, int]) -> float:
        return sum(count * self.extra_us.get(kind, self.extra_us[CONTINUED]) for kind, count in carried.items()) / 1e6

    def ratio(self, result: Result | None, native_median: float | None) -> float | None:
        """The floor over native for the median run's routed calls (None: not known)."""
        if not self.known or result is None or not result.carried or not native_median:
            return None
        kinds = {kind for run in result.carried for kind in run}
        carried = {kind: int(statistics.median(run.get(kind, 0) for run in result.carried)) for kind in kinds}
        return (native_median + self.extra_seconds(carried) + self.startup_s) / native_median


def table(chosen: list[Workload], cfgs: list[Config], results: dict, floors: dict[str, str]) -> str:
    models = FloorModel(floors), FloorModel(floors, python=True)
    lines = [TABLE_HEADER, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for workload in chosen:
        native = results.get((workload.name, "native"))
        native_median = statistics.median(native.seconds) if native and native.seconds else None
        for config in cfgs:
            result = results.get((workload.name, config.name))
            if result is None:
                continue  # the configuration does not run this workload
            like = f"{len(result.seconds)}/{result.runs}"
            routed = f"{int(statistics.median(result.routed))}" if result.routed else ""
            floor = " | ".join(f"{r:.2f}x" if r is not None else "" for r in (m.ratio(result, native_median) for m in models))
            rss = f"{result.peak_rss_kib / 1024:.1f} MiB" if result.peak_rss_kib else ""
            if not result.comparable:
                why = ("native run failed" if result.errors else
                       "faults changed what it did" if config.faults else "differed from native")
                lines.append(f"| {cell(workload.name)} | {cell(config.name)} | — | {NOT_A_SPEED} | | | | {routed} | {rss} "
                             f"| {like} ({result.diverged + result.errors} {why}) | {floor} |")
                continue
            median = statistics.median(result.seconds)
            is_native = config.key == "native"
            ratio = "1.00x" if is_native else f"{statistics.median(result.ratios):.2f}x"
            extra = f"{(median - native_median) * 1000:+.1f} ms" if native_median and not is_native else ""
            loop_ratio = f"{statistics.median(result.loop_ratios):.3f}x" if result.loop_ratios else ""
            per_call = ""
            if workload.calls and result.loop_seconds:  # the program's own loop: nobody's start-up
                per_call = f"{statistics.median(result.loop_seconds) / workload.calls * 1e6:.2f} µs"
            lines.append(f"| {cell(workload.name)} | {cell(config.name)} | {median:.4f} | {ratio} | {extra} | {loop_ratio} "
                         f"| {per_call} | {routed} | {rss} | {like} | {floor} |")
    return "\n".join(lines)


# -- issue 16's targets ------------------------------------------------------------
MET, NOT_MET, UNREACHABLE, NOT_MEASURED = "met", "not met", "not met: out of reach (floor)", "not measured"
UNREACHABLE_IN_PYTHON = "not met: out of reach (Python floor)"  # the project must be Python


def ratio_verdict(measured: float, limit: float, c_floor: float | None, python_floor: float | None) -> str:
    """A ratio target's verdict: met, or out of reach when a floor already misses it (the C
    floor first: no supervisor at all can reach it; then the Python floor), or not met."""
    if measured <= limit:
        return MET
    if c_floor is not None and c_floor > limit:
        return UNREACHABLE
    if python_floor is not None and python_floor > limit:
        return UNREACHABLE_IN_PYTHON
    return NOT_MET


def _highest(*bounds: float | None) -> float | None:
    """The highest of the lower bounds known (None: none is)."""
    known = [b for b in bounds if b is not None]
    return max(known) if known else None


def _number(text: str | None) -> float | None:
    match = re.match(r"\s*([0-9.]+)", text or "")
    return float(match.group(1)) if match else None


class Figures:
    """What the targets read from one run's results and probes."""

    def __init__(self, chosen: list[Workload], results: dict, floors: dict[str, str]):
        self.workloads = {w.key: w for w in chosen}
        self.results = results
        self.floors = floors

    def result(self, workload: str, config: str) -> Result | None:
        w = self.workloads.get(workload)
        name = next((c.name for c in configs() if c.key == config), None)
        result = self.results.get((w.name, name)) if w and name else None
        return result if result is not None and result.comparable else None

    def median(self, workload: str, config: str) -> float | None:
        result = self.result(workload, config)
        return statistics.median(result.seconds) if result else None

    def ratio(self, workload: str, config: str) -> float | None:
        result = self.result(workload, config)
        return statistics.median(result.ratios) if result and result.ratios else None

    def per_call_us(self, workload: str, config: str) -> float | None:
        result, w = self.result(workload, config), self.workloads.get(workload)
        if not result or not result.loop_seconds or not w or not w.calls:
            return None
        return statistics.median(result.loop_seconds) / w.calls * 1e6

    def routed(self, workload: str, config: str) -> int | None:
        w = self.workloads.get(workload)
        name = next((c.name for c in configs() if c.key == config), None)
        result = self.results.get((w.name, name)) if w and name else None
        return int(statistics.median(result.routed)) if result and result.routed else None

    def floor(self, name: str) -> float | None:
        return _number(self.floors.get(name))

    def floor_ratio(self, workload: str, config: str, python: bool = False) -> float | None:
        """The workload's C (or Python) floor over native (FloorModel), from its runs under `config`."""
        w = self.workloads.get(workload)
        name = next((c.name for c in configs() if c.key == config), None)
        result = self.results.get((w.name, name)) if w and name else None
        return FloorModel(self.floors, python).ratio(result, self.median(workload, "native"))


def targets(figures: Figures) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each of issue 16's targets."""
    out = []

    def against_floor(label: str, measured: float | None, floor: float | None, limit: float, what: str,
                      python_floor: float | None) -> None:
        if measured is None or floor is None:
            out.append((label, "", NOT_MEASURED))
            return
        text = f"{measured:.1f} µs per call = {measured / floor:.2f}x the floor ({floor:.1f} µs){what}"
        if python_floor is not None:  # a Python supervisor with no logic at all, the same calls, the same loop
            text += f"; the Python floor: {python_floor:.1f} µs = {python_floor / floor:.2f}x"
        out.append((label, text, ratio_verdict(measured / floor, limit, None,
                                               python_floor / floor if python_floor is not None else None)))

    # a routed call continued, nothing logged: the held loop's lseek, which its policy
    # decides by name, against the C floor running the same loop
    logged = figures.per_call_us("held", "permit-all-log")
    held_floor = figures.floor(HELD_FLOOR)
    against_floor("CONTINUE per call ≤ 1.3x the C CONTINUE floor", figures.per_call_us("held", "by-name"), held_floor,
                  1.3, ", `-a` on the lseek loop (decided by name, not logged)"
                  + (f"; logged (`--permit-all -E`): {logged:.1f} µs = {logged / held_floor:.2f}x"
                     if logged is not None and held_floor else ""), figures.floor(HELD_PYTHON_FLOOR))
    against_floor("emulated open ≤ 1.5x the C emulated-open floor", figures.per_call_us("openat", "enforce"),
                  figures.floor(EMULATED_FLOOR), 1.5, ", `-a` on the openat loop", figures.floor(EMULATED_PYTHON_FLOOR))
    for key, label, limit in (("tar", "tar", 6.0), ("gcc", "gcc", 2.5), ("python", "python import", 2.5),
                              ("sh", "sh loop", 2.5)):
        ratio = figures.ratio(key, "enforce")
        name = f"{label} ≤ {limit:g}x native (`-a`)"
        if ratio is None:
            out.append((name, "", NOT_MEASURED))
            continue
        text = f"{ratio:.2f}x"
        routed, bound = figures.routed(key, "enforce"), figures.floor_ratio(key, "enforce")
        in_python = figures.floor_ratio(key, "enforce", python=True)
        if bound is not None:
            # a lower bound: each routed call at the C floor of how it was carried out
            text += f"; its {routed} routed calls at the C floors (FloorModel) give {bound:.2f}x"
            native, started = figures.median(key, "native"), figures.floor("start-up: systrace -a true (as the table runs it)")
            true = figures.floor("start-up: true")
            if native and started is not None and true is not None:  # what systrace's own start-up adds to that
                text += f", {bound + (started - true) / 1000 / native:.2f}x with this run's start-up of `-a true`"
        if in_python is not None:
            text += f"; at the Python floors, with the Python start-up floor: {in_python:.2f}x"
        # the floors run on the workload itself, under the same filter: its own cache and
        # scheduling effects, which the loops' floors leave out
        measured_c, measured_python = figures.ratio(key, "workload-floor"), figures.ratio(key, "workload-floor-python")
        if measured_c is not None or measured_python is not None:
            text += "; measured on the workload: " + ", ".join(
                f"{language} floor {value:.2f}x" for language, value in (("C", measured_c), ("Python", measured_python))
                if value is not None)
        out.append((name, text, ratio_verdict(ratio, limit, _highest(bound, measured_c),
                                              _highest(in_python, measured_python))))
    single, double = figures.median("threads", "enforce"), figures.median("threads", "enforce-2")
    strace = figures.median("threads", "strace-seccomp")
    name = "16 threads: `-a` faster than strace -f --seccomp-bpf"
    known_ours = [t for t in (single, double) if t is not None]
    if not known_ours or strace is None:
        out.append((name, "", NOT_MEASURED))
    else:
        ours = min(known_ours)
        text = " and ".join(f"{t:.3f} s {label}" for t, label in ((single, "(`-a`)"), (double, "(`-a --supervisors 2`)"))
                            if t is not None) + f" against {strace:.3f} s"
        verdict = MET if ours < strace else NOT_MET
        for language, unreachable in (("", UNREACHABLE), ("Python ", UNREACHABLE_IN_PYTHON)):
            floors = [figures.floor(f"{language}emulated open, 16 threads, {n}") for n in ("1 supervisor", "2 supervisors")]
            known = [f for f in floors if f is not None]
            if known:
                text += (f"; the {language or 'C '}emulated-open floor: " +
                         ", ".join(f"{f:.3f} s with {n}" for f, n in zip(floors, ("1 supervisor", "2 supervisors"), strict=True)
                                   if f is not None))
                if verdict == NOT_MET and min(known) >= strace:  # (the C floor's verdict first: it is the lower)
                    verdict = unreachable
        out.append((name, text, verdict))
    fresh, enforce = figures.median("tar", "learn-fresh"), figures.median("tar", "enforce")
    name = "fresh `-A` of tar ≤ 2x the time of an `-a` run"
    if fresh is None or enforce is None:
        out.append((name, "", NOT_MEASURED))
    else:
        out.append((name, f"{fresh:.2f} s against {enforce:.2f} s: {fresh / enforce:.2f}x",
                    MET if fresh <= 2 * enforce else NOT_MET))
    installed, true = figures.floor(f"start-up: {INSTALLED}"), figures.floor("start-up: true")
    ours, first = figures.floor(f"start-up: {OURS_BESIDE}"), figures.floor(f"start-up: {REFERENCE_STARTUP}")
    name = "start-up unchanged or better (36 ms over `true`, installed)"
    if ours is not None and first is not None and true is not None:  # the first version's, on this machine now
        out.append((name, f"{ours - true:.1f} ms over `true`, the first version ({REFERENCE}, whose 36 ms this is) "
                    f"{first - true:.1f} ms, installed alike, runs alternated", MET if ours <= first else NOT_MET))
    elif installed is None or true is None:
        out.append((name, "", NOT_MEASURED))
    else:
        over = installed - true
        text, python_floor = f"{over:.1f} ms over `true`", figures.floor(f"start-up: {PYTHON_STARTUP}")
        if python_floor is not None:
            text += f"; the Python start-up floor: {python_floor - true:.1f} ms over `true`"
        out.append((name, text, ratio_verdict(over, 36.0, None, python_floor - true if python_floor is not None else None)))
    return out


def floor_ratios(figures: Figures) -> list[dict[str, object]]:
    """Each routed run's floors over native (the table's last two columns), for --json."""
    out: list[dict[str, object]] = []
    for key, w in figures.workloads.items():
        for config in configs():
            result = figures.results.get((w.name, config.name))
            if result is not None and result.carried:
                out.append({"workload": key, "config": config.key, "carried": result.carried,
                            "c_floor_ratio": figures.floor_ratio(key, config.key),
                            "python_floor_ratio": figures.floor_ratio(key, config.key, python=True)})
    return out


def targets_table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {cell(t)} | {cell(m)} | {v} |" for t, m, v in rows]
    return "\n".join(lines)


def document(args: argparse.Namespace, chosen: list[Workload], cfgs: list[Config], missing: list[Config],
             results: dict, floors: dict[str, str], rows: list[tuple[str, str, str]], minutes: float,
             not_installed: str | None) -> str:
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
               f"Python {platform.python_version()}")
    command = "python3 bench/bench.py " + " ".join(sys.argv[1:])
    parts = [
        "# Benchmarks",
        "",
        f"Measured with `{command.strip()}` on {machine}, on {datetime.date.today().isoformat()}, "
        f"in {minutes:.1f} minutes: one run, every figure below from it.",
        "",
        f"runs: {args.runs} per configuration, alternated run by run; medians.",
        "",
        *([f"**Note:** {args.note}", ""] if args.note else []),
        "- **ratio vs native**: the median of each run's time over the native run's just before it.",
        "- **extra vs native**: median time minus the native median (for `true`, the start-up).",
        "- **loop ratio** and **per call in loop**: the C loops time their own loop and print it, so",
        "  these leave out everybody's start-up: the loop's time under the configuration over its",
        "  time natively, and the loop's time divided by its iterations (the native call included,",
        "  as in the C floors).",
        "- **routed calls**: the calls that reached systrace (`--stats`).",
        "- **C floor vs native**: what this run's routed calls cost at least: native time plus, for",
        "  each routed call, what a C supervisor with no logic adds for a call carried out as it was",
        "  (`--stats`' carried out as), its floor's loop less the same loop natively: an emulated",
        "  open the emulated-open floor's at its fewest calls, an emulated fstat or path call (a",
        "  stat or access made by systrace and written back) its own floor's (`bench/kind_floor.c`;",
        "  a path call priced as an absolute stat, the cheapest), any other the CONTINUE floor's.",
        "  Each is the fewest calls of this design (an emulated open's leaves out the `emulated",
        "  open floor`'s poll for more, `/proc/TID/exe` and `/proc/TID/status` reads and separate",
        "  symlink check), and each per-kind floor is its loop's best of 3. A ratio target under",
        "  it is out of reach without routing fewer calls.",
        "- **Python floor vs native**: the same with each kind at its Python floor (the same",
        "  supervisors' system calls from bare Python, standard library only, no logic:",
        "  `bench/continue_floor.py`, `emulated_open_floor.py --fewest` with or without `--hint`, the lower; `kind_floor.py`),",
        "  plus the Python start-up floor (`python3 -S` importing the modules any Python",
        "  supervisor of this design imports): what the routed calls cost at least in Python, as",
        "  systrace must be.",
        "- **C floor on the workload** and **Python floor on the workload**: the workload run under",
        "  the very BPF program `systrace -a` installs for it (dumped from systrace), served by a",
        "  supervisor with no logic that carries each routed call out as systrace must, with fewer",
        "  system calls (`bench/workload_floor.c`, and `bench/workload_floor.py` in bare Python,",
        "  `python3 -S`, its start-up included): the floors measured with the workload's own cache",
        "  and scheduling effects. Their routed calls are the calls they served.",
        "- **runs like native**: runs whose exit status and output were the native run's. A",
        f"  configuration with any other run shows `{NOT_A_SPEED}`: a run that a fault ended early or",
        "  a denial changed did less work, so its time is no overhead.",
        *(["- systrace runs installed: the `systrace` console script of a fresh venv (`pip install .`,",
            "  its modules compiled), whose interpreter reads none of this machine's site-packages",
            "  (their `.pth` files run at every start); the workloads run with the system's `PATH`",
            "  and its `python3`, as natively."] if not_installed is None else
           [f"- **systrace runs from the checkout, not installed** ({not_installed}): started as its",
            "  console script starts it (`python3 -c \"from systrace.cli import entry; entry()\"`) by this",
            "  interpreter, with this machine's site-packages (and what their `.pth` files import at",
            "  every start), its modules compiled; the workloads run with the system's `PATH`."]),
        "",
        "Timing never goes into the tests.",
        "",
        table(chosen, cfgs, results, floors),
        "",
    ]
    if missing:
        parts += [f"Not run (program not installed; `--install` installs it): "
                  f"{', '.join(c.name for c in missing)}.", ""]
    parts += ["Floors of this machine, measured by the same run (C programs in `bench/`; the 16-thread",
              "floors are whole runs of the 16-thread workload, best of 3):", "",
              "| probe | value |", "|---|---:|"]
    parts += [f"| {cell(name)} | {value} |" for name, value in floors.items()]
    parts += ["", "## The targets (issue 16)", "",
              "A target is out of reach when a floor measured in this run already misses it: a C",
              "supervisor with no logic at all, or every routed call at the C floor of its kind",
              "(`(floor)`), or the C floor run on the workload; or, since systrace must be Python,",
              "every routed call at the Python floor of its kind with the Python start-up floor, or",
              "the Python floor run on the workload (`(Python floor)`). The start-up target compares",
              f"ours with the first version's ({REFERENCE}, whose BENCHMARKS.md measured the 36 ms), installed",
              "alike and timed in this run, runs alternated.", "",
              targets_table(rows), "",
              "## Reproduce", "```sh",
              "python3 bench/bench.py --install --runs 5 --write BENCHMARKS.md  # this file (apt-get installs strace, "
              "fiu-utils, gcc if missing)",
              "python3 bench/bench.py --smoke                 # every part once, small: a check that it all runs",
              "python3 bench/bench.py --only openat           # one workload (the probes always run)",
              "python3 bench/bench.py --configs enforce,strace-seccomp  # some configurations; native always runs",
              "python3 bench/bench.py --json results.json     # the raw numbers, probes and targets too",
              "```", ""]
    return "\n".join(parts)


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
    parser.add_argument("--runs", type=int, help="runs of each configuration (default 5; 1 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="every workload, configuration and probe once, with "
                        "small sizes: checks that it all runs (its figures mean nothing)")
    parser.add_argument("--only", help="run workloads whose name contains this (or whose key is this)")
    parser.add_argument("--configs", help="run only configurations whose name contains one of these, or whose key "
                        "is one (comma list); native always runs")
    parser.add_argument("--openat-iterations", type=int, help="the openat loop's iterations (default 20000)")
    parser.add_argument("--json", type=Path, help="write the raw results, probes and targets here")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the document to FILE (BENCHMARKS.md)")
    parser.add_argument("--note", help="a sentence printed under the header (how loaded the machine was...)")
    parser.add_argument("--checkout", action="store_true", help="run systrace from the checkout with this interpreter "
                        "(its site-packages too), not from a fresh venv's console script")
    args = parser.parse_args()
    args.runs = args.runs if args.runs is not None else (1 if args.smoke else 5)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.openat_iterations is not None and args.openat_iterations < 1:
        parser.error("--openat-iterations must be at least 1")
    if args.install:
        install()
    if not shutil.which("gcc"):
        print("bench: gcc is needed to build the C loops and floors (--install installs it)", file=sys.stderr)
        return 2
    sizes = Sizes(**SMOKE.__dict__) if args.smoke else Sizes()
    if args.openat_iterations is not None:
        sizes.openat = args.openat_iterations
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="systrace-bench-"))
    # The system's PATH: a version manager's shims (pyenv's `python3` is a bash script)
    # would add their own processes to every workload. systrace runs installed, from a
    # fresh venv (use_installed); failing that, from the checkout with this interpreter,
    # its modules compiled once, as an installed package's are (with
    # PYTHONDONTWRITEBYTECODE set, every run would compile them again).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    try:
        not_installed = "--checkout" if args.checkout else use_installed(scratch, env)
        compileall.compile_dir(str(ROOT / "src"), quiet=1)  # (the start-up probes run the checkout too)
        if not_installed is not None:
            print(f"bench: systrace runs from the checkout, not installed ({not_installed})", file=sys.stderr)
            env["PYTHONPATH"] = str(ROOT / "src")
        chosen, cfgs, missing, results, floors = run(args.runs, sizes, args.only, args.configs, scratch, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = Figures(chosen, results, floors)
    rows = targets(figures)
    text = document(args, chosen, cfgs, missing, results, floors, rows, (time.monotonic() - started) / 60,
                    not_installed)
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"results": [r.__dict__ for r in results.values()], "probes": floors,
                                         "systrace": {"argv": SYSTRACE, "installed": not_installed is None,
                                                      "not_installed": not_installed},
                                         "floor_ratios": floor_ratios(figures),
                                         "targets": [dict(zip(("target", "measured", "verdict"), row, strict=True)) for row in rows],
                                         "missing": [c.name for c in missing]}, indent=1))
    # a configuration that cannot run a workload as natively is a failure, unless it
    # injects faults on purpose
    faulty = {c.name for c in cfgs if c.faults}
    failed = [r for r in results.values() if r.errors or (r.diverged and r.config not in faulty)]
    for r in failed:
        print(f"bench: {r.config} on {r.workload}: {r.errors} failed, {r.diverged} differed from native", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
