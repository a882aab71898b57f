#!/usr/bin/env python3
"""tar -x of an archive of /usr/include, natively and under systrace, source trees side by
side (runs alternated): what the cgroup guard's routing of write opens costs (SECURITY.md
"The cost of the cgroup guard").

    python3 bench/tar_extract.py --src OLD/src --src NEW/src [--runs 5] [--mode=--permit-all]

As root (or holding a writable cgroup) systrace has the filter route every open that may
write an existing file, whatever the policy; tar opens each file it extracts with
O_CREAT|O_EXCL, which the kernel decides. Prints the median wall and CPU time (systrace
and tar, from wait4) and the calls routed (`--stats`) per tree. The extracted tree is
compared with the archive's listing each run. Timing is never asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUTED = re.compile(rb"^systrace: routed by system call: (.*)$", re.MULTILINE)


def extract(prefix: list[str], archive: Path, into: Path, env: dict[str, str]) -> tuple[float, float, bytes]:
    """(wall s, CPU s, systrace's stderr) of one extraction into a fresh `into`."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([*prefix, "tar", "xf", str(archive), "-C", str(into)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{prefix[:4]} tar xf failed ({status}): {stderr[-300:]!r}")
    return elapsed, usage.ru_utime + usage.ru_stime, stderr


def listing(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", default="--permit-all", help="systrace's mode option (default --permit-all)")
    parser.add_argument("--tree", default="/usr/include")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    archive = scratch / "tree.tar"
    tree = Path(options.tree)
    subprocess.run(["tar", "cf", str(archive), "-C", str(tree.parent), tree.name], check=True,
                   stderr=subprocess.DEVNULL)
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(scratch)}
    into = scratch / "out"
    names = ["native", *options.src]
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    routed: dict[str, bytes] = {}
    expected: list[str] | None = None
    for _ in range(options.runs):
        for name in names:
            if name == "native":
                prefix, env = [], base_env
            else:
                prefix = [sys.executable, "-m", "systrace", options.mode, "--stats"]
                env = dict(base_env, PYTHONPATH=name)
            wall, cpu, stderr = extract(prefix, archive, into, env)
            got = listing(into)
            if expected is None:
                expected = got
            elif got != expected:
                raise SystemExit(f"{name}: not the native tree")
            walls[name].append(wall)
            cpus[name].append(cpu)
            found = ROUTED.findall(stderr)
            if found:
                routed[name] = found[-1]
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"tar xf of {tree} ({len(expected or [])} entries), {options.mode}, median of {options.runs} runs, alternated")
    print("| tree | wall s | CPU s | routed by system call |\n|---|---:|---:|---|")
    for name in names:
        print(f"| {name} | {statistics.median(walls[name]):.3f} | {statistics.median(cpus[name]):.3f} "
              f"| {routed.get(name, b'').decode()} |")


if __name__ == "__main__":
    main()
