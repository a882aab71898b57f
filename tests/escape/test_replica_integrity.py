"""`--supervisors N`: the replicas are out of the tracee's reach as systrace is.

test_supervisor_integrity.py::test_helpers_are_out_of_reach[replica] aims every vector
of test_nothing_names_systrace that names one process at a replica's pid (the attacker
finds it itself). The vectors that name a process *group* are aimed at systrace's
group, which holds the replicas: `kill(0)`, `killpg`, SIGIO to the group (`F_SETOWN`
of -pgid), `setpriority` and `ioprio_set` of the group. The attacker cannot see whether
a replica got them (it may kill itself on the way), so this test looks from outside:
each replica alive, its nice value and I/O priority unchanged, while a process of the
run in another session keeps the run (and so the replicas) going."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from proc_waits import wait_for as _wait_for
from test_supervisor_integrity import GROUP_VECTORS, _compile, _native_through

from systrace.kernel import landlock
from systrace.kernel.syscalls_x86_64 import SYSCALLS

pytestmark = pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_ABI,
                                reason="Landlock signal scoping (Linux 6.12) is needed for these guarantees")

SYS_ioprio_get, IOPRIO_WHO_PROCESS = 252, 1
_libc = ctypes.CDLL(None, use_errno=True)


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return out


def _state(pid: int) -> tuple[str, int, int] | None:
    """(state, nice, I/O priority) of a live process, None once gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[0], int(fields[16]), _libc.syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, pid)


def _is_replica(pid: int, systrace_cmdline: bytes) -> bool:
    """A forked copy of systrace that is not one of its named helpers (a watchdog
    "systrace-watch", a memory reader "systrace-memory")."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == systrace_cmdline \
            and not Path(f"/proc/{pid}/comm").read_text().startswith("systrace-")
    except OSError:
        return False


def _keeper_ready(fifo: Path) -> bool:
    """Is the keeper (`read line < FIFO`) running as the leader of a session of its own
    (out of the group the attack aims at)?"""
    wanted = f"sh\0-c\0read line < {fifo}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/cmdline").read_bytes() == wanted \
                    and Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[3] == entry:
                return True
        except OSError:
            continue
    return False


def _permit_all_of(binaries: list[str], path: Path) -> Path:
    """A policy file permitting every call of each binary (--supervisors needs -a)."""
    lines = []
    for binary in binaries:
        lines.append(f"Policy: {binary}, Emulation: native")
        lines += [f"\tnative-{name}: permit" for name in SYSCALLS]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def _replicas_reached(runner: Runner, reach: str, vector: str, fifo: Path, policy: Path) -> tuple[bool, int]:
    """Run the attack under `--supervisors 3 -a`, aimed at systrace's group: (did it
    change or end a replica, how many replicas were watched)."""
    # the keeper, in a session of its own, holds the run open until the test lets it go;
    # the attacker waits for the test to have found the replicas
    script = f"setsid sh -c 'read line < {fifo}' & read go; exec {reach} {vector} 0 0"
    # systrace in a process group of its own: the group vectors reach every other member of
    # systrace's group, as natively, and the test's own process must not be one (renicing
    # pytest to 19 made later tests' native attacks fail)
    proc = subprocess.Popen(runner.argv("-U", "-f", str(policy), "-a", "--supervisors", "3", "sh", "-c", script),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env,
                            cwd=runner.cwd, process_group=0)
    try:
        def split() -> tuple[list[int], list[int]]:
            """(the replicas, the other children): systrace's command line read each time
            (setpriv and the interpreter exec in place: proc.pid becomes systrace)"""
            own = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            children = _children(proc.pid)
            replicas = [p for p in children if _is_replica(p, own)]
            others = [p for p in children if p not in replicas and Path(f"/proc/{p}/cmdline").read_bytes() != own]
            return replicas, others

        _wait_for(lambda: [len(found) for found in split()] == [2, 1] and _keeper_ready(fifo),
                  "the replicas, the command and the keeper in its own session")
        replicas, (command,) = split()
        before = {pid: _state(pid) for pid in replicas}
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        _wait_for(lambda: _state(command) is None, "the attacker to end")
        after = {pid: _state(pid) for pid in replicas}
        reached = any(after[pid] is None or after[pid][1:] != before[pid][1:] for pid in replicas)
        with open(fifo, "w") as keeper:  # the run may end
            keeper.write("done\n")
        proc.communicate(timeout=TIMEOUT)
        assert proc.returncode in (0, 137), (vector, proc.returncode, proc.stderr)  # 137: it killed its own group
        return reached, len(replicas)
    finally:
        try:  # a keeper left waiting (the test failed before letting it go) must not outlive it
            keeper_fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            pass  # ENXIO: no reader left
        else:
            os.write(keeper_fd, b"done\n")
            os.close(keeper_fd)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("who", ["root", "user"])
def test_group_vectors_do_not_reach_the_replicas(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    fifo = shared_dir / f"replica-keeper-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    policy = _permit_all_of([os.path.realpath("/bin/sh"), os.path.realpath("/usr/bin/setsid"), reach],
                            shared_dir / f"replica-group-policy-{who}")
    try:
        native = {vector: _native_through(runner, reach, vector) for vector in GROUP_VECTORS}
        traced, watched = {}, 0
        for vector in GROUP_VECTORS:
            traced[vector], count = _replicas_reached(runner, reach, vector, fifo, policy)
            watched += count
    finally:
        fifo.unlink()
    print(f"{who}: the group vectors natively {sum(native.values())}/{len(native)} got through; aimed at systrace's "
          f"group under --supervisors 3 -a, {sum(traced.values())}/{len(traced)} reached a replica ({watched} watched)")
    assert all(native.values()), native
    assert not any(traced.values()), traced
