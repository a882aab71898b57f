#!/usr/bin/env python3
"""Where one emulated open's time goes, stage by stage (issue 16 item 4).

    PYTHONPATH=src python3 bench/stages.py [--calls 20000] [--clock cpu] [--src OTHER/src]

Runs systrace in this process on an openat+close loop under a learned policy (-a: every
open emulated) with the stages of the pipeline wrapped in timers, and prints, for each,
the µs per routed call it took (inclusive: a stage's own time and its parts'). A timer
costs about 0.2 µs itself, so the column sums a little more than the run's total. Wall
time of the supervisor thread: the ADDFD stage includes the tracee's side of it (the
kernel wakes the tracee to install the descriptor and waits for it). The whole-run CPU
figures are bench/cpu_per_call.py's; this one says which stage to look at.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (label, module, attribute path): the stages of an emulated open, in order
STAGES = [
    ("serve one notification", "systrace.supervisor", "Supervisor.serve_one"),
    ("receive (RECV ioctl)", "systrace.kernel.notify", "Listener.recv"),
    ("identify (process table)", "systrace.supervisor", "Supervisor.identify"),
    ("translate", "systrace.translate.stage", "TranslateStage.before_deciding"),
    ("  the path cache (a repeated open: hit)", "systrace.translate.path_cache", "PathCache.translate"),
    ("    read the path (process_vm_readv)", "systrace.kernel.memory", "read_cstring"),
    ("    the tracee's root", "systrace.translate.tracee", "LiveTracee.root"),
    ("    FUSE check (the mount table)", "systrace.effects", "Effects.may_block"),
    ("    the probe (openat2 O_PATH; and any other openat2)", "systrace.kernel.emulate", "openat2"),
    ("    resolve it in full (a miss)", "systrace.translate.filename", "resolve_for_open"),
    ("decide (guards, chain, ID_VALID)", "systrace.supervisor", "Supervisor.decide"),
    ("  the chain", "systrace.decide", "Chain.decide"),
    ("    policy matching", "systrace.decide.policy", "PolicyDecider.first_match"),
    ("    mount view check", "systrace.decide.policy", "other_mount_view"),
    ("  ID_VALID", "systrace.kernel.notify", "Listener.id_valid"),
    ("carry out", "systrace.effects", "Effects.carry_out"),
    ("  credentials (/proc/TID/status)", "systrace.processes", "ProcessTable.status_bytes"),
    ("  credentials (parse)", "systrace.kernel.emulate_identity", "tracee_identity"),
    ("  Landlock domain", "systrace.effects", "Effects.landlock_domain"),
    ("  open (probe, check, reopen)", "systrace.kernel.worker", "open_without_blocking"),
    ("    the probe still at the checked path", "systrace.kernel.worker", "still_at"),
    ("    reopen the probe", "systrace.kernel.worker", "_open_probed"),
    ("      FUSE check (fstatfs)", "systrace.kernel.worker", "_on_fuse"),
    ("      as the tracee (identity, open)", "systrace.kernel.emulate_identity", "Identity.run"),
    ("      clear O_NONBLOCK (fcntl)", "systrace.kernel.worker", "_blocking_again"),
    ("    the check of what was opened", "systrace.kernel.emulate", "_verify"),
    ("  install (affinity hint, ADDFD, SEND)", "systrace.effects", "Effects._install"),
    ("    affinity hint (the ADDFD wake-up hint)", "systrace.kernel.wakeup", "WakeHere.narrow"),
    ("    ADDFD", "systrace.kernel.notify", "Listener.add_fd"),
    ("    SEND", "systrace.kernel.notify", "Listener.succeed"),
]

# --loop dirfd-stat: the stages of an emulated path call (tar's lstat relative to a dirfd)
PATH_CALL_STAGES = [
    ("serve one notification", "systrace.supervisor", "Supervisor.serve_one"),
    ("receive (RECV ioctl)", "systrace.kernel.notify", "Listener.recv"),
    ("identify (process table)", "systrace.supervisor", "Supervisor.identify"),
    ("translate", "systrace.translate.stage", "TranslateStage.before_deciding"),
    ("  read the path (process_vm_readv)", "systrace.kernel.memory", "read_cstring"),
    ("  what the dirfd names (readlink)", "systrace.translate.tracee", "LiveTracee.fd_path"),
    ("  the tracee's root", "systrace.translate.tracee", "LiveTracee.root"),
    ("  resolve it (a miss of the path cache)", "systrace.translate.filename", "resolve_target"),
    ("  the path cache's O_PATH check", "systrace.translate.path_cache", "openat2"),
    ("decide (guards, chain, ID_VALID)", "systrace.supervisor", "Supervisor.decide"),
    ("  the chain", "systrace.decide", "Chain.decide"),
    ("    policy matching", "systrace.decide.policy", "PolicyDecider.first_match"),
    ("    mount view check", "systrace.decide.policy", "other_mount_view"),
    ("  ID_VALID", "systrace.kernel.notify", "Listener.id_valid"),
    ("carry out", "systrace.effects", "Effects.carry_out"),
    ("  the Landlock domain", "systrace.effects", "Effects.landlock_domain"),
    ("  credentials (/proc/TID/status)", "systrace.processes", "ProcessTable.credentials_status"),
    ("  credentials (parse)", "systrace.effects", "tracee_identity"),
    ("  run the call", "systrace.kernel.emulate_path", "PathCall.run"),
    ("    the tracee's root (/proc/TID/root)", "systrace.kernel.emulate_path", "RootFd"),
    ("    open the parent directory", "systrace.kernel.emulate_path", "open_directory"),
    ("    as the tracee (identity apply + undo)", "systrace.kernel.emulate_identity", "Identity.apply"),
    ("    the stat itself", "systrace.kernel.emulate_path", "_call"),
    ("  write the result (process_vm_writev)", "systrace.kernel.memory", "write"),
    ("  SEND", "systrace.kernel.notify", "Listener.succeed"),
]


CLOCK = time.perf_counter_ns  # --clock cpu: time.thread_time_ns


def _wrap(totals: dict[str, list[int]], label: str, function):  # noqa: ANN001, ANN202 - any callable
    clock = CLOCK
    cell = totals.setdefault(label, [0, 0])

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            cell[0] += clock() - start
            cell[1] += 1

    return timed


def instrument(totals: dict[str, list[int]], stages: list[tuple[str, str, str]]) -> None:
    """Wrap each stage, in its module and wherever another module imported it by name."""
    for label, module_name, attribute in stages:
        module = importlib.import_module(module_name)
        owner: object = module
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)
        timed = _wrap(totals, label, original)
        setattr(owner, name, timed)
        if not path:  # a module-level function: also where it was imported by name
            for other in list(sys.modules.values()):
                if getattr(other, "__name__", "").startswith("systrace") and getattr(other, name, None) is original:
                    setattr(other, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--path", default="/etc/hostname", help="the file the loop opens")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the supervisor thread's CPU time (steadier on a loaded machine; each timer is a "
                             "system call then, ~0.5 µs, and ADDFD leaves out the tracee's side)")
    parser.add_argument("--src", default=str(HERE.parent / "src"), help="the systrace source tree to time")
    parser.add_argument("--loop", choices=("openat", "dirfd-stat"), default="openat",
                        help="dirfd-stat: lstat relative to a directory descriptor (an emulated path call, tar's shape)")
    options = parser.parse_args()
    sys.path.insert(0, options.src)
    global CLOCK
    CLOCK = time.thread_time_ns if options.clock == "cpu" else time.perf_counter_ns
    work = Path(tempfile.mkdtemp())
    name = "openat_loop" if options.loop == "openat" else "dirfd_stat_loop"
    loop = work / name
    subprocess.run(["gcc", "-O2", "-o", str(loop), str(HERE / f"{name}.c")], check=True)
    args = [options.path] if options.loop == "openat" else [os.path.dirname(options.path), os.path.basename(options.path)]
    stages = STAGES if options.loop == "openat" else PATH_CALL_STAGES
    policies = work / "policies"
    env = dict(os.environ, PYTHONPATH=options.src)
    subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", str(loop), "10", *args],
                   env=env, check=True, capture_output=True)
    from systrace import cli

    totals: dict[str, list[int]] = {}
    instrument(totals, stages)
    gc.collect()
    start = time.perf_counter_ns()
    status = cli.main(["-d", str(policies), "-a", str(loop), str(options.calls), *args])
    elapsed = time.perf_counter_ns() - start
    if status:
        raise SystemExit(f"the run failed ({status})")
    served = totals["serve one notification"][1] or 1
    print(f"µs per routed call ({options.clock}, supervisor thread), {served} calls, {options.path}; "
          f"whole run {elapsed / served / 1000:.1f} µs per call")
    print("| stage | µs per call | calls per routed call |\n|---|---:|---:|")
    for label, _, _ in stages:
        total, count = totals.get(label, (0, 0))
        depth = (len(label) - len(label.lstrip())) // 2
        print(f"| {'. ' * depth}{label.strip()} | {total / served / 1000:.1f} | {count / served:.2f} |")


if __name__ == "__main__":
    main()
