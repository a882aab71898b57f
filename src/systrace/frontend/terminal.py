"""Job control for -t, as a job-control shell does it, so that the terminal has one
reader at a time.

At launch the command gets its own process group, made the terminal's foreground group
when systrace's was (a shell's job). While a question waits systrace takes the terminal:
its group becomes the foreground and the command's group is stopped (SIGSTOP), and so is
the group of the run that had the terminal (an interactive command's foreground job,
which it put there with tcsetpgrp), because a process already blocked in a read of the
terminal would still be handed the answer (the kernel checks the foreground group when
a read starts, not while it waits). The command's group is stopped first: a shell that
waits for its job never sees the job stop, as the job is continued before it. After the
answer the terminal goes back to the group that had it and the processes stopped are
continued (SIGCONT), the job first. Ctrl-Z stops the command's group: systrace then stops itself, so the
shell sees its job stop, and when continued it continues the command.

Only processes of the run are stopped (supervised descendants of systrace: not systrace,
its helpers, nor anyone else). A foreground group may hold processes outside the run (a
process of the run joined the outer shell's group, or another's joined one of the run):
those are never stopped, and as one of them could read the answer, the question is not
asked (NotAsked: the call is denied). systrace's own group is the user's job (a pipeline
may share it): there the run's processes (the command, when it could not get a group of
its own, or one that joined systrace's group) are stopped and the others left alone.
While a question waits no process of the run can change its group or the foreground:
setpgid, setsid and ioctl reach systrace under -t, and its loop is busy asking.

tcsetpgrp from a group that is not the foreground raises SIGTTOU: it is blocked around
the call, as shells do."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time

from ..kernel.libc import tgkill
from .errors import NotAsked
from .relay import SignalRelay

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..kernel.filter import FilterPlan

_JOB_SIGNALS = (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP)


class JobControl:
    def __init__(self, path: str = "/dev/tty", relay: SignalRelay | None = None):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        self.own_group = os.getpgrp()
        self.child_pid = -1  # the command's first process, from its launch on
        self.child_pidfd = -1
        self.child_group: int | None = None  # the command's group, once it has its own
        self.holding = False  # the command's group is stopped by us for a question
        self.held: list[int] = []  # pidfds of the processes stopped for it, to continue in this order
        if relay is not None:  # the command's launch and its stops (Ctrl-Z) are ours to handle
            relay.at_launch(self.launched)
            relay.after_child_event(self.on_child_event)

    def launched(self, child_pid: int, child_pidfd: int) -> None:
        self.child_pid, self.child_pidfd = child_pid, child_pidfd
        self.adopt(child_pid)

    def adopt(self, child_pid: int) -> None:
        """Give the command (not yet exec'd) its own group, in the foreground if systrace's
        group is. Left alone when systrace runs in the background."""
        if self._foreground() != self.own_group:
            return
        try:
            os.setpgid(child_pid, child_pid)
        except OSError:
            return  # it shares systrace's group: questions then only take the terminal
        self.child_group = child_pid
        self._set_foreground(child_pid)

    def take(self) -> int | None:
        """Make systrace's group the foreground, the run's processes in the group that had
        it stopped; the group to hand it back to (None: systrace had it already). Raises
        NotAsked when that group holds processes outside the run (module docstring)."""
        previous = self._foreground()
        if previous is None:
            return None
        processes = _processes()
        run, outside = _members(previous, os.getpid(), processes)
        if outside and previous != self.own_group:
            raise NotAsked(f"the terminal's foreground process group {previous} holds processes outside the run "
                           f"({', '.join(map(str, outside[:4]))})")
        if previous == self.own_group:
            self.held = _stop_processes(run)  # the run's processes in systrace's own group
            self.holding = bool(self.held)  # (the command among them: its stop is ours, not a Ctrl-Z)
            return None
        stopped: list[int] = []
        if self.child_group is not None and (previous == self.child_group or run):
            # first: the command (its shell) must not see its job stop
            stopped = _stop_processes(_members(self.child_group, os.getpid(), processes)[0])
            self.holding = True
        if previous != self.child_group:
            stopped = _stop_processes(run) + stopped  # continued first
        self.held = stopped
        self._set_foreground(self.own_group)
        return previous

    def give_back(self, previous: int | None) -> None:
        if previous is not None:
            self._set_foreground(previous)
        held, self.held, self.holding = self.held, [], False
        for pidfd in held:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGCONT)
            os.close(pidfd)

    def on_child_event(self) -> None:
        """After a SIGCHLD: if the command was stopped from the terminal (Ctrl-Z), stop
        systrace too and, once continued, continue the command."""
        if self.child_group is None or self.holding:
            return
        try:
            info = os.waitid(os.P_PID, self.child_pid, os.WSTOPPED | os.WNOHANG)
        except ChildProcessError:
            return
        if info is None or info.si_code != os.CLD_STOPPED:
            return
        self._set_foreground(self.own_group)
        os.kill(os.getpid(), signal.SIGSTOP)  # here until the shell continues the job
        if self._foreground() == self.own_group:  # `fg`, not `bg`
            self._set_foreground(self.child_group)
        self._signal_group(signal.SIGCONT)

    def kill_command(self) -> None:
        """Ctrl-C at a question: the command ends at once."""
        if self.child_group is not None:
            self._signal_group(signal.SIGKILL)
        if self.child_pidfd >= 0:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.child_pidfd, signal.SIGKILL)

    def restore(self) -> None:
        """At the end of the run the terminal goes back to systrace's group (the shell's job)."""
        if self.child_group is not None and self._foreground() in (self.child_group, None, 0):
            self._set_foreground(self.own_group)
        self.child_group = None

    def close(self) -> None:
        self.restore()
        os.close(self.fd)

    def _foreground(self) -> int | None:
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def _set_foreground(self, group: int) -> None:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _JOB_SIGNALS)
        try:
            os.tcsetpgrp(self.fd, group)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTTY, errno.EINVAL, errno.EIO):
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _signal_group(self, number: int) -> None:
        if self.child_group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child_group, number)


STOP_WAIT = 0.2  # seconds: a stopped thread leaves its read at once; a bound all the same


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, process group, state) of every process (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out.append((int(name), int(fields[1]), int(fields[2]), fields[0].decode()))
    return out


def _members(group: int, systrace: int, processes: list[tuple[int, int, int, str]]) -> tuple[list[int], list[int]]:
    """(the run's processes in `group`, the processes outside the run in it). The run's
    are systrace's descendants under its filter (orphans come back to systrace, the
    subreaper); systrace and its helpers (descendants without the filter) are neither."""
    parents = {pid: ppid for pid, ppid, _, _ in processes}
    run, outside = [], []
    for pid in (pid for pid, _, pgid, _ in processes if pgid == group and pid != systrace):
        current = pid
        for _ in range(4096):
            current = parents.get(current, 0)
            if current == systrace or current <= 1:
                break
        if current != systrace:
            outside.append(pid)
        elif _supervised(pid):
            run.append(pid)
    return run, outside


def _supervised(pid: int) -> bool:
    """Under a seccomp filter (systrace's: a descendant of systrace has no other)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            return b"\nSeccomp:\t2\n" in handle.read()
    except OSError:
        return False  # gone


def _stop_processes(pids: list[int]) -> list[int]:
    """SIGSTOP every thread of each process, and wait (at most STOP_WAIT) until each has
    stopped or waits uninterruptibly (in a system call systrace holds: it reads nothing
    meanwhile). A stop sent to the process alone is taken by one thread, and when that
    thread waits in a notification (the call being asked about), the others go on: one
    blocked in a read of the terminal would take the answer. Returns a pidfd of each
    process stopped (to continue it, and never another that got its pid)."""
    threads, pidfds = [], []
    for pid in pids:
        try:
            pidfds.append(os.pidfd_open(pid))
        except OSError:
            continue  # gone
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    tgkill(pid, int(tid), signal.SIGSTOP)
                    threads.append(f"/proc/{pid}/task/{tid}/stat")
    deadline = time.monotonic() + STOP_WAIT
    while threads and time.monotonic() < deadline:
        threads = [path for path in threads if _state(path) in ("R", "S")]
        if threads:
            time.sleep(0.001)
    return pidfds


def _state(stat_path: str) -> str:
    try:
        with open(stat_path, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "X"  # gone


# The calls that change a process group or the terminal's foreground: under -t they
# always reach systrace, whose loop is busy while a question waits, so none runs then.
TIOCSCTTY, TIOCSPGRP = 0x540E, 0x5410
GROUP_CALLS = ("setpgid", "setsid")


def route_job_control(plan: FilterPlan) -> None:
    """Send setpgid, setsid and ioctl(TIOCSPGRP/TIOCSCTTY) to systrace, whatever the plan
    decided in the kernel for them (a refusal stays one)."""
    from ..kernel import abi
    from ..kernel.filter import ArgRule, ArgTest
    from ..kernel.syscalls_x86_64 import SYSCALLS

    for name in GROUP_CALLS:
        nr = SYSCALLS[name]
        if nr in plan.arg_rules or plan.action_of(nr) == abi.RET_ALLOW:
            plan.actions[nr] = abi.RET_USER_NOTIF
            plan.arg_rules.pop(nr, None)
    ioctl = SYSCALLS["ioctl"]
    if ioctl in plan.arg_rules or plan.action_of(ioctl) == abi.RET_ALLOW:
        routed = tuple(ArgRule((ArgTest(1, "eq", request, width=32),), abi.RET_USER_NOTIF)
                       for request in (TIOCSPGRP, TIOCSCTTY))
        plan.arg_rules[ioctl] = routed + tuple(r for r in plan.arg_rules.get(ioctl, ()) if r not in routed)
