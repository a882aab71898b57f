#!/usr/bin/env python3
"""systrace's own work per emulated open, without the kernel's round trip: the stages of
one permitted openat (identify, translate, decide, open as the tracee) served in this
process over the tests' fake listener (tests/fakes.py: RECV, ID_VALID, ADDFD and SEND
cost nothing), this process as the tracee, CPU time per open (time.process_time).

    PYTHONPATH=src python3 bench/open_logic.py [--opens 20000] [--runs 5] [--src DIR ...]

Every system call the real path makes besides the listener's is made (the path read,
the root, the mount-table check, the probe, the check of the probe, its reopen, the
FUSE check). --src: other source trees, each run in a
fresh interpreter, their runs interleaved; medians. A quick check of a change to the
per-call logic; the whole figure (tracee and kernel included) is bench/cpu_per_call.py's.
While a FUSE mount exists anywhere on the machine every memory read goes through the
bounded reader (~450 µs): SYSTRACE_TEST_FUSE_UNSEEN=1 then leaves out every FUSE check
(kernel/mounts.py), for a comparison of trees only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from test_pipeline_in_process import Parts, Path_, openat
from systrace.decide.modes import Enforce
work = Path(tempfile.mkdtemp())
target = work / "file"
target.write_text("x\n")
parts = Parts(lambda p: [p.policy_decider(), Enforce()], work, f'\tnative-fsread: filename eq "{target}" then permit\n')
path = Path_(str(target))
parts.supervisor.effects.wake_here = None  # (none in one supervisor; narrowing its own affinity would migrate it)
opens = int(sys.argv[3])
for _ in range(200):  # warm: the process table, the caches
    openat(parts, path)
    parts.serve()
listener = parts.listener
start = time.process_time()
for _ in range(opens):
    notif = openat(parts, path)
    parts.supervisor.serve_batch()
elapsed = time.process_time() - start
assert listener.sent[-1][0] == "succeed", listener.sent[-3:]
print(json.dumps({"us": elapsed / opens * 1e6, "hits": parts.supervisor.translate.paths.hits}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opens", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", action="append", default=None, help="a systrace source tree (default: this one)")
    options = parser.parse_args()
    sources = options.src or [str(HERE.parent / "src")]
    samples: dict[str, list[float]] = {source: [] for source in sources}
    env = dict(os.environ)
    with tempfile.TemporaryDirectory():
        for _ in range(options.runs):
            for source in sources:
                tests = str(Path(source).resolve().parent / "tests")
                output = subprocess.run([sys.executable, "-c", CHILD, source, tests, str(options.opens)], env=env,
                                        check=True, capture_output=True, text=True).stdout
                samples[source].append(json.loads(output.splitlines()[-1])["us"])
    print(f"CPU µs per emulated open in process (fake listener), median of {options.runs} runs of {options.opens}")
    for source, values in samples.items():
        print(f"| {Path(source).resolve().parent.name} | {statistics.median(values):.1f} | "
              f"{' '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
