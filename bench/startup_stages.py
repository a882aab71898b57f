#!/usr/bin/env python3
"""Instructions of `systrace -a true`'s start-up stage by stage, until the fork of the
command, for several source trees side by side (issue 16), counted by valgrind: steady on a
loaded machine, where bench/startup_phases.py's times are not.

    python3 bench/startup_stages.py [--src DIR ...]

Each stage is one run that leaves (os._exit) when the function ending the stage returns,
so each count is that of everything before: the columns are cumulative, and the rows
show what each stage adds. As in bench/startup_instructions.py, the run's bytecode is
compiled first, seccomp's availability answered yes (valgrind lacks seccomp(2)) and FUSE
taken as absent. The stages:

    imports   the run's modules loaded (preload, and what cli imported before it)
    policies  the policy files found, read and parsed (Store.load)
    plan      the kernel plan made from them (kernel_plan)
    session   the rest of wiring.build
    guards    the Landlock ruleset, environ emptied, the supervisor's pids guarded
    filter    the plan compiled to BPF (filter.compile_plan)
    fork      the rest until the command is forked (its listener's socket pair...)

On the test machine about 2.3 M instructions make a millisecond.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from startup_instructions import count, prepare  # (run as a script: bench/ is on the path)

HERE = Path(__file__).resolve().parent
# (stage, "module:function" whose return ends it; looked up where the caller finds it)
STAGES = (("imports", ""), ("policies", "policy.store:Store.load"), ("plan", "policy.compile:kernel_plan"),
          ("session", "wiring:build"), ("guards", "engine:protect_supervisor"), ("filter", "kernel.filter:compile_plan"),
          ("fork", None))

DRIVER = """
import os, sys
stop = os.environ["STARTUP_STAGE_END"]
os.register_at_fork(before=lambda: os._exit(0))  # the command's fork ends the last stage
from systrace import preload as _preload
_original = _preload.preload
def _preloaded(*args, **kwargs):
    loaded = _original(*args, **kwargs)
    from systrace.kernel import launch
    launch.user_notification_available = lambda: True  # (valgrind: seccomp(2) is ENOSYS)
    if stop == "":
        os._exit(0)
    if stop != "-":
        import importlib
        module, _, path = stop.partition(":")
        owner = importlib.import_module("systrace." + module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        function = getattr(owner, name)
        def ending(*args, **kwargs):
            function(*args, **kwargs)
            os._exit(0)
        setattr(owner, name, ending)
    return loaded
_preload.preload = _preloaded
from systrace.cli import main
main(sys.argv[1:])
"""


def main() -> None:
    trees, scratch, base, floor, true = prepare(__doc__.splitlines()[0], "startup-stages-")
    columns = []
    for number, tree in enumerate(trees):
        env = dict(base, PYTHONPATH=str(tree.resolve() / "src"), PYTHONPYCACHEPREFIX=str(scratch / f"pycache-{number}"))
        policies = str(scratch / f"policies-{number}")
        subprocess.run([sys.executable, "-S", "-m", "systrace", "-d", policies, "-A", true], env=env, check=True)
        argv = ["-c", DRIVER, "-d", policies, "-a", true]
        subprocess.run([sys.executable, "-S", *argv], env=dict(env, STARTUP_STAGE_END="-"), check=True)  # compiled
        columns.append([count(argv, dict(env, STARTUP_STAGE_END="-" if end is None else end)) for _, end in STAGES])
    print(f"systrace -a true, M instructions each stage adds (python3 -S -c pass: {floor / 1e6:.1f} M)")
    print(f"{'stage':10s}" + "".join(f"{str(tree)[-28:]:>30s}" for tree in trees))
    for row, (stage, _) in enumerate(STAGES):
        cells = [(column[row] - (column[row - 1] if row else floor)) / 1e6 for column in columns]
        print(f"{stage:10s}" + "".join(f"{cell:30.1f}" for cell in cells))
    print(f"{'total':10s}" + "".join(f"{(column[-1] - floor) / 1e6:30.1f}" for column in columns))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
