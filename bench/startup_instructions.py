#!/usr/bin/env python3
"""The instructions systrace's start-up imports take, for several source trees (issue 16),
counted by valgrind: the same on a loaded machine as on a quiet one.

    python3 bench/startup_instructions.py [--src DIR ...]

A whole run cannot be counted (valgrind does not know seccomp(2): systrace says the
kernel lacks user notification and stops), so each tree's count is that of a `python3
-S` importing what `systrace -a true` (and `--permit-all true`) imports before the
command starts, as the run does (systrace/preload.py first, where the tree has it),
against `python3 -S -c pass` (the interpreter's floor) and the standard library alone
(what systrace's modules import of it). Bytecode is compiled first, as an install does.
At this interpreter's rate (bench/startup.py's `python3 -S -c pass` against this
count) about 2.3 M instructions make a millisecond on the test machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTED = re.compile(rb"Collected : (\d+)")

# what cli.run and _run_once import before the command starts (a plain run)
MODULES = ("systrace.engine", "systrace.frontend.errors", "systrace.kernel.launch", "systrace.log",
           "systrace.policy.errors", "systrace.wiring")
ENFORCING = ("systrace.decide.enforce", "systrace.decide.policy", "systrace.policy.compile", "systrace.policy.reach")
PRELOAD = """
try:
    from systrace import preload
except ImportError:
    pass
else:
    preload.preload(preload.PLAIN + preload.ENFORCING if {enforcing} else preload.PLAIN)
"""
STDLIB = "import ctypes, os, struct, select, fcntl, _socket, mmap, pwd, grp, resource, errno, stat, types, marshal"


def count(code: str, env: dict[str, str]) -> int:
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-S",
                             "-c", code], env=env, capture_output=True, check=True)
    return int(COLLECTED.findall(result.stderr)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    trees = options.src or [HERE.parent]
    scratch = Path(tempfile.mkdtemp(prefix="startup-instructions-"))
    base = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    floor = count("pass", base)
    stdlib = count(STDLIB, base) - floor
    print(f"python3 -S -c pass: {floor / 1e6:.1f} M instructions; the standard library systrace imports: "
          f"{stdlib / 1e6:.1f} M more")
    print(f"{'tree':40s} {'-a true':>14s} {'--permit-all':>14s}   (M instructions over python3 -S -c pass)")
    for number, tree in enumerate(trees):
        env = dict(base, PYTHONPATH=str(tree.resolve() / "src"), PYTHONPYCACHEPREFIX=str(scratch / f"pycache-{number}"))
        cells = []
        for enforcing in (True, False):
            code = PRELOAD.format(enforcing=enforcing) + "import " + ", ".join(MODULES + (ENFORCING if enforcing else ()))
            subprocess.run([sys.executable, "-S", "-c", code], env=env, check=True)  # compiled
            cells.append((count(code, env) - floor) / 1e6)
        print(f"{str(tree)[-40:]:40s} {cells[0]:14.1f} {cells[1]:14.1f}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
