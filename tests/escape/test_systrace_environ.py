"""A root tracee whose opens stay in the kernel reads /proc/<pid>/environ and auxv of a
process that is not dumpable: the kernel checks them with mm_access(PTRACE_MODE_READ),
which lets CAP_PERFMON or CAP_SYS_ADMIN through whatever the ptrace check (Landlock's
domain included) said. Natively a root program reads the secret a non-dumpable victim
was started with; under systrace (--permit-all, a policy that plainly permits openat,
with --supervisors so that replicas exist, -A, -a) systrace and its replicas show an
empty environment and an empty auxiliary vector (kernel/own_entries.py), and the opens
that reach systrace are refused (ENOENT)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_cgroup_any_policy import _plain_permits

from systrace.kernel.own_entries import empty_environ_and_auxv, mm_fields

NAME, VALUE = "H4_SECRET", "the-environment-of-systrace"
SECRET = f"{NAME}={VALUE}"
PROBE = r'''
import errno, json, os, struct, sys
def targets():
    if sys.argv[1] != "parent":
        return [int(sys.argv[1])]
    parent = os.getppid()  # systrace, then its other children: the replicas of --supervisors
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as listed:
            others = [int(pid) for pid in listed.read().split() if int(pid) != os.getpid()]
    except OSError:
        others = []
    return [parent] + others
def read(path):
    try:
        with open(path, "rb") as entry:
            return entry.read()
    except OSError as error:
        return errno.errorcode[error.errno]
seen = {}
for pid in targets():
    environ, auxv = read(f"/proc/{pid}/environ"), read(f"/proc/{pid}/auxv")
    seen[pid] = {
        "environ": environ if isinstance(environ, str) else len(environ),
        "secret": isinstance(environ, bytes) and sys.argv[2].encode() in environ,
        "auxv": auxv if isinstance(auxv, str) else sum(1 for key, _ in struct.iter_unpack("=QQ", auxv) if key),
    }
print(json.dumps(seen))
'''
VICTIM = r'''
import ctypes, sys
if sys.argv[1] == "hidden":
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0, as systrace
print("ready", flush=True)
sys.stdin.read()
'''


def _probe(runner: Runner, argv: list[str]) -> dict:
    result = subprocess.run(argv, capture_output=True, env={**runner.env, NAME: VALUE}, cwd=runner.cwd, timeout=TIMEOUT)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result
    return json.loads(result.stdout)


def test_mm_fields_reads_the_fields_of_stat() -> None:
    with open("/proc/self/stat", "rb") as stat:
        fields = mm_fields(stat.read())
    start_code, end_code, _, _, _, brk, start_stack, arg_start, arg_end, env_start, env_end = fields
    assert brk == 0 and 0 < start_code < end_code and arg_start < arg_end <= env_start < env_end < start_stack + 2 ** 24


def test_an_emptied_environment_keeps_the_process_s_own() -> None:
    """In a child: after the call its environ and auxv entries are empty, and it still
    sees its environment and runs programs with it (what the kernel shows is unused)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        code = empty_environ_and_auxv()
        with open("/proc/self/environ", "rb") as environ, open("/proc/self/auxv", "rb") as auxv:
            shown = (len(environ.read()), auxv.read())
        passed = subprocess.run(["sh", "-c", "echo $HOME"], capture_output=True).stdout.strip().decode()
        os.write(write, json.dumps([code, shown[0], shown[1].hex(), passed, os.environ.get("HOME")]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        code, environ, auxv, passed, home = json.loads(reader.read())
    os.waitpid(child, 0)
    assert (code, environ, auxv) == (0, 0, "00" * 16)
    assert passed == home == os.environ["HOME"]


@pytest.mark.parametrize("who", ["root", "user"])
def test_a_tracee_reads_nothing_of_systrace_s_environment(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    probe = shared_dir / "environ_probe.py"
    probe.write_text(PROBE)
    victim_source = shared_dir / "environ_victim.py"
    victim_source.write_text(VICTIM)
    for path in (probe, victim_source):
        path.chmod(0o644)
    # natively: root reads a non-dumpable victim's environment; the user a dumpable one's
    kind = "hidden" if who == "root" else "plain"
    victim = subprocess.Popen(runner.native_argv(runner.python, str(victim_source), kind), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env={**runner.env, NAME: VALUE})
    try:
        assert victim.stdout.readline() == b"ready\n"
        native = _probe(runner, runner.native_argv(runner.python, str(probe), str(victim.pid), SECRET))
    finally:
        victim.kill()
        victim.wait()
        victim.stdin.close()
        victim.stdout.close()
    python = os.path.realpath(runner.python)
    policies = runner.policy_dir(shared_dir / f"environ-policies-{who}")
    modes = {
        "--permit-all": ["--permit-all"],
        "plain-permit": ["-U", "-f", str(_plain_permits(shared_dir / f"environ-plain-{who}", False, python)), "-a"],
        "supervisors": ["-U", "-f", str(_plain_permits(shared_dir / f"environ-replicas-{who}", False, python)),
                        "-a", "--supervisors", "2"],
        "-A": ["-d", str(policies), "-A"],
        "-a": ["-d", str(policies), "-a"],
    }
    seen = {mode: _probe(runner, runner.argv(*flags, python, str(probe), "parent", SECRET))
            for mode, flags in modes.items()}
    read_natively = sum(entry["secret"] for entry in native.values())
    read = {mode: sum(entry["secret"] for entry in found.values()) for mode, found in seen.items()}
    auxv = {mode: sum(entry["auxv"] for entry in found.values() if isinstance(entry["auxv"], int))
            for mode, found in seen.items()}
    print(f"{who}: the secret read natively {read_natively}/1 (auxv entries {list(native.values())[0]['auxv']}); "
          f"under systrace read in {sum(map(bool, read.values()))}/{len(read)} runs (processes: {read}), "
          f"auxv entries shown {auxv}; {seen}")
    assert read_natively == 1
    assert list(native.values())[0]["auxv"] > 10
    assert sum(read.values()) == 0 and sum(auxv.values()) == 0
    # systrace and the helpers it forked, and with --supervisors the replica too
    assert len(seen["supervisors"]) == len(seen["plain-permit"]) + 1 >= 3
    for mode in ("-A", "-a"):  # routed: refused as for a process gone
        assert {entry["environ"] for entry in seen[mode].values()} == {"ENOENT"}, seen[mode]
    if who == "root":  # the kernel let the opens through: what they show is empty
        for mode in ("--permit-all", "plain-permit", "supervisors"):
            assert {(entry["environ"], entry["auxv"]) for entry in seen[mode].values()} == {(0, 0)}, seen[mode]
