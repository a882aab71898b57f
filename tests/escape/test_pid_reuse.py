"""A pid named by a continued call must not be handed to a helper (SECURITY.md "Out of
reach": pid reuse). The calls checked only by uid (setpriority, prlimit64, sched_*...)
are checked by systrace and continued: the kernel looks their pid up after the answer.
If the named process dies and a helper systrace forks gets its pid before that, the
call reaches the helper. The reuse is made deterministic by writing ns_last_pid (root,
from the test, outside the run): the next process forked gets the pid. systrace runs in a
PID namespace of its own, whose first process (pid 1 there) sets that namespace's next pid
when the test asks: on a loaded machine another process forked in between took an aimed
pid of the machine's namespace, and a whole test's rounds could all be taken."""

from __future__ import annotations

import os
import select
import subprocess
import sys
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
    """The next pid the kernel hands out in our PID namespace is `pid` (unless another
    fork on the machine takes it first: the counts below say how often it did)."""
    NS_LAST_PID.write_text(str(pid - 1))


# pid 1 of the namespace: runs argv (systrace: stdin, stdout and stderr the test's), and
# sets the namespace's next pid for each number read on the descriptor it is given, once
# no process has that pid: the child systrace discarded last round (it got the pid and
# exited at once) may not be reaped yet, and while it is a zombie the kernel skips its
# pid (the next helper then got the one after, and nothing was put to the test)
_FIRST = r"""
import os, subprocess, sys, threading, time
link = int(sys.argv[1])
def aim():
    for line in os.fdopen(link, "rb", buffering=0):
        pid = int(line)
        deadline = time.monotonic() + 60  # a safety net: systrace reaps it at its next turn
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.001)
        with open("/proc/sys/kernel/ns_last_pid", "w") as handle:
            handle.write(str(pid - 1))
        os.write(link, b"ok\n")
threading.Thread(target=aim, daemon=True).start()  # (started before systrace: it takes its pid now)
code = subprocess.Popen(sys.argv[2:], pass_fds=()).wait()
sys.exit(128 - code if code < 0 else code)
"""


class InPidNamespace:
    """`argv` (systrace) run in a PID namespace of its own, where only the run forks:
    `aim(pid)` makes `pid` the next one handed out there. Pids are the namespace's (what
    the tracee prints); `children` and `outer` translate what /proc (ours) says."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None):
        import socket

        ours, theirs = socket.socketpair()
        self.link = ours.makefile("rwb", buffering=0)
        self._socket = ours
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-c", _FIRST,
                                      str(theirs.fileno()), *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, pass_fds=(theirs.fileno(),))
        theirs.close()

    def aim(self, pid: int) -> None:
        self.link.write(b"%d\n" % pid)
        assert self.link.readline() == b"ok\n"

    def systrace(self) -> int:
        """systrace's pid in our namespace (the child of the namespace's first process)."""
        first = _children(self.proc.pid)
        supervisor = set().union(*(_children(pid) for pid in first))
        assert len(supervisor) == 1, supervisor
        return supervisor.pop()

    def close(self) -> None:
        self.link.close()
        self._socket.close()


def _inner(pid: int) -> int:
    """The pid of our process `pid` in its own (innermost) PID namespace (0: gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except OSError:
        pass
    return 0


def _by_inner(pids: set[int]) -> dict[int, int]:
    """Their pids in the namespace -> ours."""
    return {_inner(pid): pid for pid in pids}


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
    space = InPidNamespace(argv, runner.env, runner.cwd)
    proc = space.proc
    reached = handed_out = 0
    try:
        assert select.select([proc.stdout], [], [], TIMEOUT)[0], "the tracee never started"
        first = proc.stdout.readline().decode()
        assert first.startswith("freed "), (first, proc.stderr.read() if proc.poll() is not None else b"")
        freed = int(first.split()[1])  # (the namespace's pid)
        supervisor = space.systrace()
        command = _children(supervisor)
        for _ in range(ROUNDS):
            writer = _Writer(fifo)
            space.aim(freed)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            fd = writer.opened()  # the helper has the read end now: it is alive
            helpers = _by_inner(_children(supervisor) - command)
            handed_out += freed in helpers  # the kernel gave the helper (or a discarded one) the pid
            reached += freed in helpers and _holds(helpers[freed], fifo)
            os.close(fd)
            assert proc.stdout.readline() == b"opened\n"
        proc.stdin.close()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        space.close()
        fifo.unlink()
    discarded = log.read_text().count("which a call of the command in flight names: discarded")
    print(f"{who}: natively a new process got the freed pid and the call reached it {native}/{ROUNDS}; "
          f"under systrace the kernel gave a helper that pid {discarded} times (discarded), "
          f"the helper doing the open had it {reached}/{ROUNDS} (a child of systrace had it in {handed_out})")
    assert native > 0  # the reuse works natively
    assert discarded > 0  # the kernel did hand that pid to a helper: the guard was put to the test
    assert reached == 0
    assert proc.returncode == 0, proc.stderr.read()
