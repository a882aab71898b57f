"""A signalfd, so signals are read in the poll loop with their sender and cause.

systrace blocks every asynchronous signal, not only those it consumes: a signal it does
not expect (SIGIO or SIGURG from a descriptor whose owner names it, SIGXCPU, SIGPIPE,
SIGALRM, SIGPROF, SIGTTIN, SIGTTOU...) must neither kill nor stop it. Only signals the
kernel raises for systrace's own faults stay deliverable (and SIGKILL and SIGSTOP, which
cannot be blocked)."""

from __future__ import annotations

import ctypes
import os
import struct

from .libc import check, libc
from .plain_signal import signal

SFD_NONBLOCK = os.O_NONBLOCK
SFD_CLOEXEC = os.O_CLOEXEC
SI_USER = 0
SI_KERNEL = 0x80
_SIGINFO = struct.Struct("=IiiI")  # ssi_signo, ssi_errno, ssi_code, ssi_pid (of 128 bytes)
SYNCHRONOUS = frozenset((signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP, signal.SIGSYS))
JOB_STOPS = frozenset((signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))


def asynchronous_signals() -> list[int]:
    """Every signal systrace blocks and reads through its signalfd."""
    return sorted(number for number in signal.valid_signals()
                  if number not in SYNCHRONOUS and number not in (signal.SIGKILL, signal.SIGSTOP))


class SignalFd:
    """Blocks `signals` in this process and delivers them through a descriptor.
    `previous_mask` is what a child must restore before exec."""

    def __init__(self, signals: list[int]):
        self.previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        mask = ctypes.create_string_buffer(128)
        libc.sigemptyset(mask)
        for number in signals:
            libc.sigaddset(mask, int(number))
        self.fd = check(libc.signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC))

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[tuple[int, int, int]]:
        """Pending signals as (number, si_code, sender pid)."""
        out: list[tuple[int, int, int]] = []
        while True:
            try:
                data = os.read(self.fd, 128)
            except BlockingIOError:
                return out
            if len(data) < 128:
                return out
            number, _, code, sender = _SIGINFO.unpack_from(data)
            out.append((number, code, sender))

    def close(self) -> None:
        os.close(self.fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.previous_mask)


def stop_self(number: int) -> None:
    """Stop systrace as the job-control signal `number` would (its default action), and
    return once it is continued: raised while blocked, then unblocked for an instant."""
    os.kill(os.getpid(), number)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
    signal.pthread_sigmask(signal.SIG_BLOCK, [number])
    if number != signal.SIGSTOP and signal.SIGCONT not in signal.sigpending():
        # Not stopped: the kernel discards SIGTSTP/SIGTTIN/SIGTTOU in an orphaned process
        # group (systrace a session leader, say, under a pty). The command did stop, and
        # whoever waits for systrace must see that: SIGSTOP cannot be discarded. Once
        # continued, SIGCONT waits in the signalfd (it is blocked), as after a real stop.
        os.kill(os.getpid(), signal.SIGSTOP)
