"""Work that may wait on something the tracee serves, done in a forked helper.

A lookup on a FUSE mount waits for its daemon, which may be the tracee (or never
answer). systrace's one thread must not make it: the part of serving a call that touches
such a mount (resolving its path, a path call there) runs in a helper forked for it,
which dies with systrace (PR_SET_PDEATHSIG), never holds the listener, and hands back
bytes over a pipe; the loop keeps serving everything else meanwhile and honours its
signals. If the calling thread goes away (its pidfd says so) the helper is killed."""

from __future__ import annotations

import os

from .forking import end_helper, fork_helper, pidfd_of
from .libc import libc
from .plain_signal import signal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PIDFD_THREAD = os.O_EXCL


class Offloaded:
    """A job running in a helper: `fd` is readable with its output (EOF: done), `watch`
    (the calling thread's pidfd) once the caller is gone."""

    def __init__(self, pid: int, fd: int, watch: int, pidfd: int = -1):
        self.pid, self.fd, self.watch, self.pidfd = pid, fd, watch, pidfd  # pidfd: the helper's (forking.py)
        self.output = b""

    def fds(self) -> tuple[int, ...]:
        return (self.fd, self.watch) if self.watch >= 0 else (self.fd,)

    def read(self) -> bytes | None:
        """What the helper wrote, once it is done; None while it goes on."""
        chunk = os.read(self.fd, 1 << 16)
        if chunk:
            self.output += chunk
            return None
        return self.output

    def close(self) -> None:
        """Reap the helper (done) and close our descriptors."""
        self._release(kill=False)

    def cancel(self) -> None:
        self._release(kill=True)

    def _release(self, kill: bool) -> None:
        end_helper(self.pid, self.pidfd, kill)
        self.pidfd = -1
        os.close(self.fd)
        if self.watch >= 0:
            os.close(self.watch)
            self.watch = -1


def start(job: Callable[[], bytes], tid: int, listener_fd: int) -> Offloaded:
    """Run `job` in a helper for the call of thread `tid`."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        watch = os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:
        watch = -1
    pid = fork_helper()
    if pid == 0:
        code = 70
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            os.close(listener_fd)
            os.close(read_end)
            data = job()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return Offloaded(pid, read_end, watch, pidfd_of(pid))
