"""The command's tree seen from outside: the asynchronous signals systrace receives
(kernel/signals.py's signalfd), job control, signals passed on to the command, and
reaping (systrace is a subreaper) down to the command's exit status."""

from __future__ import annotations

import errno
import os

from .kernel.libc import libc, pidfd_send_signal
from .kernel.plain_signal import signal
from .kernel.procfs import field
from .kernel.signals import JOB_STOPS, SI_KERNEL, SignalFd, stop_self
from .kernel.watchdog import ENDING

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .frontend.relay import SignalRelay
    from .handshake import LaunchHandshake
    from .kernel.launch import Launched

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
PTRACE_DETACH = 17


class Children:
    def __init__(self, launched: Launched, signals: SignalFd, handshake: LaunchHandshake, relay: SignalRelay):
        self.child_pid = launched.pid
        self.child_pidfd = launched.pidfd
        self.signals = signals
        self.handshake = handshake  # whether the command itself runs yet
        self.relay = relay  # the parts built before the launch that wait or watch (questions, -t's job control)
        self.child_status: int | None = None
        self.terminal = _controlling_terminal()  # for job control: None without one
        self.child_stopped = 0  # the stop signal while the command's first process is stopped
        self.terminal_to_restore: int | None = None  # its own group held the terminal when it stopped
        self.ending_signals = 0  # received so far of those that end systrace (kernel/watchdog.py ENDING)

    def fileno(self) -> int:
        return self.signals.fileno()

    def start(self) -> None:
        """Before the command execs: what was built before its launch hears of it through
        the relay (a question waits on our signalfd too and serves what it reads as we do;
        -t's job control gives the command its own group and hears of it stopping)."""
        self.relay.launched(self.child_pid, self.child_pidfd, self.signals.fileno(), self.signals.read,
                            self.handle_signals)

    def on_signals(self) -> None:
        self.handle_signals(self.signals.read())

    def handle_signals(self, signals: list[tuple[int, int, int]]) -> None:
        """Every asynchronous signal arrives here (kernel/signals.py). Job control: the
        command shares systrace's process group, as natively it shares its job's, but the
        Landlock domain keeps its own group signals from reaching systrace; so when the
        command's first process stops, systrace stops too (its parent, a shell, sees the
        job stop), and a SIGCONT that reaches only systrace is passed on."""
        stop = 0
        for number, code, sender in signals:
            if number in ENDING:
                self.ending_signals += 1
            if number == signal.SIGCHLD:
                stop = self.reap(block_for_child=False) or stop
                self.relay.child_event()
            elif number in JOB_STOPS:
                if code == SI_KERNEL:  # the terminal stopped our job: stop with it
                    stop = number
                else:
                    self.forward(number)
            elif number == signal.SIGCONT:
                self.continue_child()
            elif number in FORWARDED_SIGNALS and code != SI_KERNEL and sender != self.child_pid:
                # Sent to systrace by someone (kill, a service manager): pass it on. A
                # terminal's signal (SI_KERNEL) already reached the command's group.
                self.forward(number)
            elif number == signal.SIGHUP and code == SI_KERNEL and os.getsid(0) == os.getpid():
                # A hangup goes to the terminal's controlling process only: systrace, the
                # session leader, where natively it would be the command.
                self.forward(number)
        if stop:
            stop_self(stop)
            self.continue_child()

    def forward(self, number: int) -> None:
        if self.child_status is not None:
            return
        try:
            pidfd_send_signal(self.child_pidfd, number)
        except OSError as error:
            if error.errno != errno.ESRCH:
                raise

    def continue_child(self) -> None:
        """After systrace was continued: continue the command if it is still stopped (its
        own process group was not continued with ours), with the terminal back to that
        group if it had it."""
        if not self.child_stopped:
            return
        self.child_stopped = 0
        if self.terminal_to_restore is not None and self.terminal is not None:
            try:
                if os.tcgetpgrp(self.terminal) == os.getpgrp():  # we were put in the foreground
                    os.tcsetpgrp(self.terminal, self.terminal_to_restore)
            except OSError:
                pass
            self.terminal_to_restore = None
        self.forward(signal.SIGCONT)

    def reap(self, block_for_child: bool) -> int:
        """Collect the child and any orphans reparented to us (we are a subreaper). Returns
        the signal to stop systrace with when the child stopped under job control."""
        stop = 0
        if block_for_child and self.child_status is None:
            _, status = os.waitpid(self.child_pid, 0)
            while untraced(self.child_pid, status):
                _, status = os.waitpid(self.child_pid, 0)
            self.child_status = status
        elif self.child_status is None and not self.relay.watches_stops:  # else -t's job control owns stops
            pid, status = os.waitpid(self.child_pid, os.WNOHANG | os.WUNTRACED)
            if pid and os.WIFSTOPPED(status):
                if not untraced(pid, status):
                    stop = self.child_stopped_by(os.WSTOPSIG(status))
            elif pid:
                self.child_status = status
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return stop
            if pid == 0:
                return stop
            if untraced(pid, status):
                continue
            if pid == self.child_pid:
                self.child_status = status

    def child_stopped_by(self, number: int) -> int:
        """Natively the shell would see its child stop: with a terminal (job control),
        systrace stops the same way. Without one nobody waits for stops, and systrace
        keeps serving the rest of the tree."""
        if self.terminal is None or not self.handshake.child_started:
            return 0
        self.child_stopped = number
        try:
            holder = os.tcgetpgrp(self.terminal)
            self.terminal_to_restore = holder if holder == os.getpgid(self.child_pid) != os.getpgrp() else None
        except OSError:
            self.terminal_to_restore = None
        return signal.SIGTSTP if number == signal.SIGSTOP else number

    def finish(self) -> int:
        """The tree is gone: collect the child, release the terminal; its exit status."""
        self.reap(block_for_child=True)
        if self.terminal is not None:
            os.close(self.terminal)
            self.terminal = None
        return self.exit_status()

    def exit_status(self) -> int:
        status = self.child_status
        if status is None:
            return 1
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


def untraced(pid: int, status: int) -> bool:
    """A process of the run that made systrace its tracer (`ptrace(PTRACE_TRACEME)` with
    systrace its parent, or its adopter as the subreaper) stops at each signal until its
    tracer lets it go on, which nothing else could do (nor would a SIGTERM passed on
    reach it): systrace would wait for it forever. Detached at its first stop, with the
    signal it stopped for (not exec's SIGTRAP, nor an event's): it goes on untraced.
    True when `status` was such a stop."""
    if not os.WIFSTOPPED(status) or _tracer_of(pid) != os.getpid():
        return False
    number = os.WSTOPSIG(status)
    libc.ptrace(PTRACE_DETACH, pid, 0, 0 if number == signal.SIGTRAP or status >> 16 else number)
    return True


def _tracer_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            return int(field(b"\n" + handle.read(), b"TracerPid") or b"0")
    except (OSError, ValueError):
        return None


def _controlling_terminal() -> int | None:
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
