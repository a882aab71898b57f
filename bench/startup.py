#!/usr/bin/env python3
"""Start-up of `systrace -a true` and `systrace --permit-all true`, side by side for
several source trees (issue 16: unchanged or better than 36 ms over `true`, installed).

    python3 bench/startup.py [--runs 30] [--src DIR ...] [--venv DIR ...] [--ignore-fuse]

Runs systrace as its console script does (`python3 -S -c "from systrace.cli import entry;
entry()"` with PYTHONPATH=DIR/src, its bytecode compiled once as an install does): -S
leaves out this machine's site hooks (a .pth file here imports certifi, 40 ms), as an
installed venv does. The runs of every tree are
interleaved, so a loaded machine slows them alike; prints the median wall time and CPU
time (user + system, systrace and its tracee, from wait4) over `true`, and the
interpreter's own (`python3 -c pass`, and `python3 -S -c pass`: the floor of any run). --venv runs the `systrace` a virtual
environment has installed (issue 16's measure: `pip install .` into a fresh venv).
--ignore-fuse tells each run that no FUSE file system exists (bench/startup_phases.py says
why); an installed script then runs as `VENV/bin/python -c PRELUDE; exec(script)`. Timing
is never asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRY = "from systrace.cli import entry; entry()"
NO_FUSE = "from systrace.kernel import memory; memory._SERVED.present = lambda: False; "


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; exits if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else b""
    if status != 0:
        raise SystemExit(f"{argv}: failed ({status}): {stderr[-300:]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    parser.add_argument("--venv", action="append", type=Path, default=[],
                        help="a virtual environment systrace is installed in (`pip install .`): its bin/systrace")
    parser.add_argument("--ignore-fuse", action="store_true", help="runs read tracee memory directly even while FUSE is mounted")
    options = parser.parse_args()
    trees = options.src or ([] if options.venv else [HERE.parent])
    true = shutil.which("true") or "/bin/true"
    scratch = Path(tempfile.mkdtemp(prefix="startup-"))
    policies = str(scratch / "policies")
    configs: dict[str, tuple[list[str], dict[str, str]]] = {
        "true": ([true], dict(os.environ)),
        "python3 -c pass": ([sys.executable, "-c", "pass"], dict(os.environ)),  # with this machine's site hooks
        "python3 -S -c pass": ([sys.executable, "-S", "-c", "pass"], dict(os.environ)),
    }
    for number, tree in enumerate(trees):
        # compiled once, as an install does (this machine sets PYTHONDONTWRITEBYTECODE);
        # the bytecode goes to the scratch directory, not into the tree
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=str(tree.resolve() / "src"), PYTHONPYCACHEPREFIX=str(scratch / f"pycache-{number}"))
        base = [sys.executable, "-S", "-c", (NO_FUSE if options.ignore_fuse else "") + ENTRY]
        once(base + ["-d", policies, "-A", true], env)  # the policy `-a` runs with
        configs[f"{tree}: -a true"] = (base + ["-d", policies, "-a", true], env)
        configs[f"{tree}: --permit-all true"] = (base + ["--permit-all", true], env)
    clean = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    for venv in options.venv:
        script = venv / "bin" / "systrace"
        base = [str(script)]
        if options.ignore_fuse:
            base = [str(venv / "bin" / "python"), "-c", f"{NO_FUSE}exec(open({str(script)!r}).read())"]
        once(base + ["-d", policies, "-A", true], clean)
        configs[f"{venv} (installed): -a true"] = (base + ["-d", policies, "-a", true], clean)
        configs[f"{venv} (installed): --permit-all true"] = (base + ["--permit-all", true], clean)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in configs}
    for _ in range(options.runs):
        for label, (argv, env) in configs.items():
            times[label].append(once(argv, env))
    floor_wall = statistics.median(wall for wall, _ in times["true"])
    print(f"medians of {options.runs} interleaved runs; wall over `true`, CPU of the whole run"
          + ("; FUSE ignored (--ignore-fuse)" if options.ignore_fuse else ""))
    for label, samples in times.items():
        wall = statistics.median(w for w, _ in samples) - (floor_wall if label != "true" else 0)
        cpu = statistics.median(c for _, c in samples)
        print(f"{label:70s} wall {wall * 1000:6.1f} ms   cpu {cpu * 1000:6.1f} ms")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
