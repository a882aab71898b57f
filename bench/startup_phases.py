#!/usr/bin/env python3
"""Where the start-up of `systrace -a true` goes, phase by phase, for several source trees
side by side (issue 16).

    python3 bench/startup_phases.py [--runs 30] [--src DIR ...] [--mode -a|--permit-all] [--ignore-fuse]

Each run is a fresh `python3 -S` (bytecode compiled once, as bench/startup.py does) that
wraps systrace's own functions with timers and runs `systrace MODE true`. The phases:

    interpreter  from the fork of the run to systrace's first line (python3 -S itself)
    imports      every module the run imports before the command starts
    options      the command line read (argparse imported and built, where it is used)
    policies     policy files found, read and parsed (Store.load)
    plan         the kernel plan from the policies (kernel_plan, baseline, routing)
    session      the rest of wiring.build: deciders, session
    filter       the plan compiled to BPF, the supervisor's pids guarded, Landlock ruleset
    launch       fork, filter installed in the child, its listener taken (spawn)
    command      the loop serving the command until its tree is gone (Supervisor.run)
    exit         session.finish, the log closed, until the process is reaped

--ignore-fuse: while another program keeps a FUSE file system mounted, systrace reads
tracee memory through a helper process (kernel/memory.py, with pickle and socket); this
tells every run there is none, as tests/test_startup_imports.py does, to measure what a
machine without FUSE sees (the header says so).

The runs of every tree are interleaved; medians of wall time and of systrace's own CPU
time (time.process_time at each mark: on a loaded machine, the steadier measure) are
printed. Timing is never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHASES = ("interpreter", "imports", "options", "policies", "plan", "session", "filter", "launch", "command", "exit")

# Runs in the measured interpreter: marks are CLOCK_MONOTONIC (perf_counter), the parent's
# clock too, so the first mark's distance from the fork is the interpreter's start-up.
DRIVER = r"""
import time
_marks = [("start", time.perf_counter(), time.process_time())]
import os, sys
def mark(name):
    _marks.append((name, time.perf_counter(), time.process_time()))
if os.environ.get("STARTUP_IGNORE_FUSE"):
    from systrace.kernel import memory as _memory
    _memory._SERVED.present = lambda: False
from systrace import cli
try:  # what cli.run loads first, where the tree has it (systrace/preload.py)
    from systrace import preload as _preload
except ImportError:
    pass
else:
    _preload.preload(_preload.PLAIN + _preload.ENFORCING if "-a" in sys.argv else _preload.PLAIN)
from systrace import engine, wiring, log as _log
from systrace.frontend import errors as _fe
from systrace.kernel import launch as _launch, filter as _kfilter
from systrace.policy import errors as _pe, store as _store, compile as _compile
from systrace.decide import enforce as _enforce, policy as _policy
mark("imports")

def wrap(owner, name, after):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        mark(after)
        return result
    setattr(owner, name, wrapped)

def before(owner, name, label):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        mark(label)
        return original(*args, **kwargs)
    setattr(owner, name, wrapped)

before(cli, "run", "options")  # the command line read (argparse imported then, where it is)
wrap(_store.Store, "load", "policies")
before(wiring, "_build_mode", "session-start")
wrap(_compile, "kernel_plan", "plan")
wrap(wiring, "build", "session")
wrap(engine, "spawn", "launch")
before(engine, "spawn", "filter")
wrap(engine.Supervisor, "run", "command")
def finish(status):
    mark("exit")
    sys.stdout.flush()
    sys.stderr.write("\nMARKS " + repr(_marks) + "\n")
    sys.stderr.flush()
    os._exit(status)
status = cli.main(sys.argv[1:])
finish(status)
"""


def once(argv: list[str], env: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Phase -> (wall seconds, CPU seconds of systrace's process) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    end = time.perf_counter()
    stderr = process.stderr.read().decode() if process.stderr else ""
    if status != 0 or "\nMARKS " not in stderr:
        raise SystemExit(f"{argv}: failed ({status}): {stderr[-500:]!r}")
    raw = eval(stderr.rsplit("\nMARKS ", 1)[1])  # noqa: S307 (our own repr of floats)
    walls = {name: wall for name, wall, _ in raw}
    cpus = {name: cpu for name, _, cpu in raw}
    wall, cpu = _phases(walls, start, end), _phases(cpus, 0.0, usage.ru_utime + usage.ru_stime)
    # the run's CPU from wait4 includes the command's: what is not systrace's own goes to exit
    return wall, cpu


def _phases(marks: dict[str, float], start: float, end: float) -> dict[str, float]:
    times = [start, marks["start"], marks["imports"], marks["options"]]
    if "policies" in marks:  # -a: policies, then the plan, then the rest of the session
        times += [marks["policies"], marks["plan"]]
    else:  # --permit-all: no policy; the plan is the base plan made in _build_mode
        times += [marks["session-start"], marks["session-start"]]
    times += [marks["session"], marks["filter"], marks["launch"], marks["command"], end]
    return {phase: after - before for phase, before, after in zip(PHASES, times, times[1:], strict=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    parser.add_argument("--mode", default="-a", choices=("-a", "--permit-all"))
    parser.add_argument("--ignore-fuse", action="store_true", help="runs read tracee memory directly even while FUSE is mounted")
    options = parser.parse_args()
    trees = options.src or [HERE.parent]
    true = shutil.which("true") or "/bin/true"
    scratch = Path(tempfile.mkdtemp(prefix="startup-phases-"))
    policies = str(scratch / "policies")
    configs: dict[str, tuple[list[str], dict[str, str]]] = {}
    for number, tree in enumerate(trees):
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=str(tree.resolve() / "src"), PYTHONPYCACHEPREFIX=str(scratch / f"pycache-{number}"))
        if options.ignore_fuse:
            env["STARTUP_IGNORE_FUSE"] = "1"
        learn = [sys.executable, "-S", "-c", "from systrace.cli import entry; entry()", "-d", policies, "-A", true]
        subprocess.run(learn, env=env, check=True, stdout=subprocess.DEVNULL)
        mode = ["-d", policies, "-a"] if options.mode == "-a" else ["--permit-all"]
        configs[str(tree)] = ([sys.executable, "-S", "-c", DRIVER, *mode, true], env)
    samples: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {label: [] for label in configs}
    for argv, env in configs.values():
        once(argv, env)  # bytecode compiled
    for _ in range(options.runs):
        for label, (argv, env) in configs.items():
            samples[label].append(once(argv, env))
    print(f"systrace {options.mode} true: medians of {options.runs} interleaved runs, ms "
          "(CPU: systrace's process; its exit row also holds the command's CPU, from wait4)"
          + ("; FUSE ignored (--ignore-fuse)" if options.ignore_fuse else ""))
    labels = list(configs)
    print(f"{'phase':12s}" + "".join(f"{label[-24:] + ' wall':>30s}{'cpu':>8s}" for label in labels))
    for phase in (*PHASES, "total"):
        cells = []
        for label in labels:
            for which, width in ((0, 30), (1, 8)):
                values = [sum(s[which].values()) if phase == "total" else s[which][phase] for s in samples[label]]
                cells.append(f"{statistics.median(values) * 1000:{width}.2f}")
        print(f"{phase:12s}" + "".join(cells))
    if os.environ.get("STARTUP_PHASES_JSON"):
        Path(os.environ["STARTUP_PHASES_JSON"]).write_text(json.dumps(samples))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
