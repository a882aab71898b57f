"""A pid named by a continued call must not be handed to a helper (SECURITY.md "Out of
reach": pid reuse). The calls checked only by uid (setpriority, prlimit64, sched_*...)
are checked by systrace and continued: the kernel looks their pid up after the answer.
If the named process dies and a helper systrace forks gets its pid before that, the
call reaches the helper. The reuse is made deterministic by writing ns_last_pid (root,
from the test, outside the run): the next process forked on the machine gets the pid."""

from __future__ import annotations

import os
import select
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_supervisor_integrity import _compile

from systrace.kernel.syscalls_x86_64 import SYSCALLS

O_PATH = 0o10000000
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
ROUNDS = 20

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="writing ns_last_pid needs root")


def _aim(pid: int) -> None:
    """The next pid the kernel hands out is `pid` (unless another fork on the machine
    takes it first: the counts below say how often it did)."""
    NS_LAST_PID.write_text(str(pid - 1))


def _native_reuse(rounds: int) -> int:
    """Natively: a process dies, its pid goes to the next process forked, and a call
    naming that pid (sched_setaffinity, checked only by uid) acts on the newcomer."""
    reached = 0
    mask = os.sched_getaffinity(0)
    for _ in range(rounds):
        victim = subprocess.Popen(["sleep", "1000"])
        pid = victim.pid
        victim.kill()
        victim.wait()
        _aim(pid)
        newcomer = subprocess.Popen(["sleep", "1000"])
        try:
            if newcomer.pid == pid:
                os.sched_setaffinity(pid, mask)  # the call named the dead victim
                reached += 1
        finally:
            newcomer.kill()
            newcomer.wait()
    return reached


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # it has exited meanwhile: no children left to look at
        return out
    for task in tasks:
        try:
            out.update(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            pass
    return out


def _holds(pid: int, fifo: Path) -> bool:
    """Is `pid` the helper doing the open (it holds the FIFO's read end open, not only
    systrace's O_PATH descriptor of it)? A child forked with a reserved pid only exits:
    it may still be on its way out, with systrace's descriptors."""
    inode = fifo.stat().st_ino
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.stat(f"/proc/{pid}/fd/{fd}").st_ino != inode:
                continue
            flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
            if not int(flags, 8) & O_PATH:
                return True
        except OSError:
            pass
    return False


class _Writer:
    """Opens the FIFO for writing, in a thread started before the pid is aimed (a new
    thread takes a pid too): the open returns once a reader (systrace's helper) opens it."""

    def __init__(self, fifo: Path):
        self.fds: list[int] = []
        self.thread = threading.Thread(target=lambda: self.fds.append(os.open(fifo, os.O_WRONLY)), daemon=True)
        self.thread.start()

    def opened(self) -> int:
        self.thread.join(TIMEOUT)  # a safety net: the open returns as soon as the helper opens
        assert self.fds, "the FIFO was never opened for reading"
        return self.fds[0]


def _policy(binary: str, path: Path) -> Path:
    """Every call permitted plainly but openat, permitted by its path: a FIFO with no
    writer is then opened by a helper systrace forks."""
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat"]
    lines.append('\tnative-openat: filename sub "/" then permit')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("who", ["root", "user"])
def test_a_pid_named_by_a_continued_call_is_never_a_helpers(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    native = _native_reuse(ROUNDS)
    tracee = _compile("pid_reuse", shared_dir)
    policy = _policy(tracee, shared_dir / f"pid-reuse-policy-{who}")
    fifo = shared_dir / f"pid-reuse-fifo-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    log = runner.writable(shared_dir / f"pid-reuse-log-{who}")
    argv = runner.argv("-U", "-f", str(policy), "-a", "-E", str(log), tracee, str(fifo), str(ROUNDS))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=runner.env, cwd=runner.cwd)  # setpriv execs in place: proc.pid is systrace
    reached = handed_out = 0
    try:
        assert select.select([proc.stdout], [], [], TIMEOUT)[0], "the tracee never started"
        first = proc.stdout.readline().decode()
        assert first.startswith("freed "), (first, proc.stderr.read() if proc.poll() is not None else b"")
        freed = int(first.split()[1])
        command = _children(proc.pid)
        for _ in range(ROUNDS):
            writer = _Writer(fifo)
            _aim(freed)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            fd = writer.opened()  # the helper has the read end now: it is alive
            helpers = _children(proc.pid) - command
            handed_out += freed in helpers  # the kernel gave the helper (or a discarded one) the pid
            reached += freed in helpers and _holds(freed, fifo)
            os.close(fd)
            assert proc.stdout.readline() == b"opened\n"
        proc.stdin.close()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fifo.unlink()
    discarded = log.read_text().count("which a call of the command in flight names: discarded")
    print(f"{who}: natively a new process got the freed pid and the call reached it {native}/{ROUNDS}; "
          f"under systrace the kernel gave a helper that pid {discarded} times (discarded), "
          f"the helper doing the open had it {reached}/{ROUNDS} (a child of systrace had it in {handed_out})")
    assert native > 0  # the reuse works natively
    assert discarded > 0  # the kernel did hand that pid to a helper: the guard was put to the test
    assert reached == 0
    assert proc.returncode == 0, proc.stderr.read()
