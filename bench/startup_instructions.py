#!/usr/bin/env python3
"""The instructions systrace's start-up takes until the command is forked, for several
source trees (issue 16), counted by valgrind: the same on a loaded machine as on a quiet one.

    python3 bench/startup_instructions.py [--src DIR ...]

valgrind does not know seccomp(2), so a run cannot go past its launch: each count is
that of `systrace MODE true` run as it is (its bytecode compiled first, as an install
does) with the kernel's check for user notification answered yes, until the fork of the
command (the run's first; the process leaves there), against `python3 -S -c pass`, the
floor of any run. FUSE is taken as absent (SYSTRACE_TEST_FUSE_UNSEEN: no reader helper).
On the test machine about 2.3 M instructions make a millisecond.
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

DRIVER = """
import os, sys
os.register_at_fork(before=lambda: os._exit(0))  # counted until the command's fork: its first
def answer_yes():  # (valgrind: seccomp(2) is ENOSYS)
    from systrace.kernel import launch
    launch.user_notification_available = lambda: True
try:
    from systrace import preload as _preload
except ImportError:
    answer_yes()
else:  # the check answered once the run's preload is done (before, it would import launch early)
    _original = _preload.preload
    def _preload_then_answer(*args, **kwargs):
        loaded = _original(*args, **kwargs)
        answer_yes()
        return loaded
    _preload.preload = _preload_then_answer
from systrace.cli import main
main(sys.argv[1:])
"""


def count(argv: list[str], env: dict[str, str]) -> int:
    """Instructions until the fork of the command (the lowest count, should there be two)."""
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-S",
                             *argv], env=env, capture_output=True)
    return min(int(found) for found in COLLECTED.findall(result.stderr))


def prepare(description: str, prefix: str) -> tuple[list[Path], Path, dict[str, str], int, str]:
    """From the command line: the trees, a scratch directory, the runs' environment (FUSE
    taken as absent), the count of `python3 -S -c pass` and the path of `true`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    base = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    base["SYSTRACE_TEST_FUSE_UNSEEN"] = "1"
    return options.src or [HERE.parent], scratch, base, count(["-c", "pass"], base), shutil.which("true") or "/bin/true"


def main() -> None:
    trees, scratch, base, floor, true = prepare(__doc__.splitlines()[0], "startup-instructions-")
    print(f"python3 -S -c pass: {floor / 1e6:.1f} M instructions")
    print(f"{'tree':40s} {'-a true':>14s} {'--permit-all':>14s}   (M instructions over python3 -S -c pass, until the fork)")
    for number, tree in enumerate(trees):
        env = dict(base, PYTHONPATH=str(tree.resolve() / "src"), PYTHONPYCACHEPREFIX=str(scratch / f"pycache-{number}"))
        policies = str(scratch / f"policies-{number}")
        subprocess.run([sys.executable, "-S", "-m", "systrace", "-d", policies, "-A", true], env=env, check=True)
        cells = []
        for mode in (["-d", policies, "-a"], ["--permit-all"]):
            argv = ["-c", DRIVER, *mode, true]
            subprocess.run([sys.executable, "-S", *argv], env=env, check=True)  # compiled
            cells.append((count(argv, env) - floor) / 1e6)
        print(f"{str(tree)[-40:]:40s} {cells[0]:14.1f} {cells[1]:14.1f}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
