#!/usr/bin/env python3
"""systrace's own work per emulated path call and per emulated open, without the kernel's
round trip: one permitted call served in this process over the tests' fake listener
(tests/fakes.py: RECV, ID_VALID, ADDFD and SEND cost nothing), this process as the
tracee, CPU time per call (time.process_time). The kinds:

- dirfd-stat: newfstatat(dirfd, name, buf, AT_SYMLINK_NOFOLLOW), tar's shape, on the
  files of one directory in turn (--files: 1 is a repeated call, the path cache's hit;
  more are tar's new file of the same shape);
- abs-stat: newfstatat(AT_FDCWD, "/abs/name", buf, 0);
- dirfd-readlink: readlinkat(dirfd, name, buf, 256) of a file (EINVAL: gcc's realpath);
- fstat: newfstatat(fd, "", buf, AT_EMPTY_PATH), glibc's fstat (the descriptor form);
- open: openat(AT_FDCWD, "/abs/name", O_RDONLY).

    PYTHONPATH=src python3 bench/path_logic.py [--kind dirfd-stat] [--calls 20000] [--runs 5]
        [--files 1] [--src DIR ...]
    python3 bench/path_logic.py --child SRC TESTS KIND CALLS FILES [--profile | --bytecodes]

--src: other source trees, each run in a fresh interpreter, runs interleaved; medians.
--child runs one measurement in this interpreter (its JSON line: CPU µs per call, the path
cache's counts; or with --profile, cProfile's top functions and the function calls per
call, a count steady on a loaded machine; or with --bytecodes, the Python bytecodes executed
per call by function, exact whatever the load). Not under valgrind: it fails openat2 (ENOSYS).
 The whole figure (tracee and kernel included) is
bench/cpu_per_call.py's; the open alone is bench/open_logic.py's.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("dirfd-stat", "abs-stat", "dirfd-readlink", "fstat", "open")


def child(source: str, tests: str, kind: str, calls: int, files: int, profile: bool, bytecodes: bool) -> None:
    sys.path[:0] = [source, tests]
    import ctypes

    from test_pipeline_in_process import AT_FDCWD, Parts, Path_

    from systrace.decide.modes import Enforce
    from systrace.kernel.syscalls_x86_64 import SYSCALLS

    work = Path(tempfile.mkdtemp())
    names = [f"file{i}" for i in range(files)]
    rules = []
    for name in names:
        (work / name).write_text("x\n")
        rules.append(f'\tnative-fsread: filename eq "{work / name}" then permit\n')
    if kind == "fstat":  # (its descriptor form names no file: permitted by name)
        rules.append("\tnative-newfstatat: permit\n")
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], work, "".join(rules))
    parts.supervisor.effects.wake_here = None  # (none in one supervisor)
    dirfd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    stat_buffer = ctypes.create_string_buffer(256)
    if kind == "dirfd-stat":
        paths = [Path_(name) for name in names]
        args = [(dirfd, p.address, ctypes.addressof(stat_buffer), 0x100) for p in paths]
        nr = SYSCALLS["newfstatat"]
    elif kind == "abs-stat":
        paths = [Path_(str(work / name)) for name in names]
        args = [(AT_FDCWD, p.address, ctypes.addressof(stat_buffer), 0) for p in paths]
        nr = SYSCALLS["newfstatat"]
    elif kind == "fstat":
        empty = Path_("")
        paths = [empty]
        args = [(dirfd, empty.address, ctypes.addressof(stat_buffer), 0x1000)] * files
        nr = SYSCALLS["newfstatat"]
    elif kind == "dirfd-readlink":
        paths = [Path_(name) for name in names]
        args = [(dirfd, p.address, ctypes.addressof(stat_buffer), 256) for p in paths]
        nr = SYSCALLS["readlinkat"]
    else:
        paths = [Path_(str(work / name)) for name in names]
        args = [(AT_FDCWD, p.address, os.O_RDONLY, 0) for p in paths]
        nr = SYSCALLS["openat"]
    listener, supervisor = parts.listener, parts.supervisor

    def run(n: int) -> None:
        for i in range(n):
            listener.push(nr, args=args[i % files])
            supervisor.serve_batch()
            if kind == "open":
                listener.next_fd = 3

    run(200)  # warm: the process table, the caches
    expected = "fail" if kind == "dirfd-readlink" else "succeed"  # (EINVAL: no symlink)
    assert listener.sent[-1][0] == expected and listener.sent[-1][2] in (0, 3, errno.EINVAL), listener.sent[-3:]
    if bytecodes:  # exact on a loaded machine: sys.settrace's opcode events, per function
        executed: dict[tuple[str, str], int] = {}

        def tracer(frame, event, arg):  # noqa: ANN001, ANN202 - (sys.settrace's signature)
            frame.f_trace_opcodes, frame.f_trace_lines = True, False
            if event == "opcode":
                code = frame.f_code
                key = (code.co_filename.rsplit("/systrace/", 1)[-1], code.co_name)
                executed[key] = executed.get(key, 0) + 1
            return tracer

        sys.settrace(tracer)
        try:
            run(calls)
        finally:
            sys.settrace(None)
        executed.pop((__file__.rsplit("/systrace/", 1)[-1], "run"), None)  # (the bench's own loop)
        for (where, name), count in sorted(executed.items(), key=lambda item: -item[1])[:40]:
            print(f"{count / calls:8.1f} {where}:{name}")
        print(json.dumps({"bytecodes_per_call": sum(executed.values()) / calls}))
        return
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        run(calls)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(35)
        print(json.dumps({"function_calls_per_call": stats.total_calls / calls}))  # type: ignore[attr-defined]
        return
    start = time.process_time()
    run(calls)
    elapsed = time.process_time() - start
    assert listener.sent[-1][0] == expected, listener.sent[-3:]
    paths_cache = supervisor.translate.paths
    print(json.dumps({"us": elapsed / calls * 1e6, "hits": paths_cache.hits,
                      "shaped": paths_cache.shaped, "misses": paths_cache.misses}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=KINDS, default="dirfd-stat")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--src", action="append", default=None, help="a systrace source tree (default: this one)")
    parser.add_argument("--child", nargs=5, metavar=("SRC", "TESTS", "KIND", "CALLS", "FILES"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--bytecodes", action="store_true", help="with --child: Python bytecodes executed per call")
    options = parser.parse_args()
    if options.child:
        source, tests, kind, calls, files = options.child
        if kind not in KINDS:
            parser.error(f"--child: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        child(source, tests, kind, int(calls), int(files), options.profile, options.bytecodes)
        return
    if options.files < 1 or options.calls < 1:
        parser.error("--files and --calls must be at least 1")
    sources = options.src or [str(HERE.parent / "src")]
    samples: dict[str, list[float]] = {source: [] for source in sources}
    for _ in range(options.runs):
        for source in sources:
            tests = str(Path(source).resolve().parent / "tests")
            output = subprocess.run([sys.executable, __file__, "--child", source, tests, options.kind,
                                     str(options.calls), str(options.files)], check=True, capture_output=True,
                                    text=True).stdout
            samples[source].append(json.loads(output.splitlines()[-1])["us"])
    print(f"CPU µs per {options.kind} in process (fake listener, {options.files} file(s)), "
          f"median of {options.runs} runs of {options.calls}")
    for source, values in samples.items():
        print(f"| {Path(source).resolve().parent.name} | {statistics.median(values):.1f} | "
              f"{' '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
