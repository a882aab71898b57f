"""A copy of a tracee's own Landlock domain, for the operations systrace does on its behalf.

A tracee that calls landlock_restrict_self gives up access; an operation systrace
emulates for it (an open, a path call, a connect or bind) must not give it back. So when
a tracee restricts itself, systrace takes the same ruleset (pidfd_getfd: the same kernel
object, whatever rules, ABI or origin it has) and, while the tracee still waits in its
call, a systrace thread calls landlock_restrict_self on it: Landlock restricts only the
calling thread, so that thread is in a domain built from exactly the rules the tracee's
will be built from (rules added later by another thread only widen the tracee's: ours
is never wider). A nested restriction is made by a thread that the parent domain's
thread creates (a new thread starts with its creator's credentials, domain included).

Operations are handed to the thread and waited for: the supervisor stays one flow of
control. The thread blocks every signal (systrace's SIGALRM must interrupt only the
supervisor's own bounded connect) and never touches the tracee: a domain cannot ptrace,
so pidfd_getfd, process_vm_readv and /proc/TID/root are done by the supervisor before.
A helper that must be forked inside the domain (a blocking connect, an open that may
wait) is forked by this thread, and its single thread keeps the domain."""

from __future__ import annotations

import errno
import os
import queue
import signal
import socket
import threading

from . import abi, landlock
from .forking import fork_helper
from .libc import libc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable


class _Job:
    __slots__ = ("operation", "done", "value", "error")

    def __init__(self, operation: Callable[[], object]):
        self.operation = operation
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


class Domain:
    """A thread in a copy of one Landlock domain (`parent`'s domain plus one ruleset).
    `error` is the errno landlock_restrict_self gave it (0: the copy is exact)."""

    def __init__(self, parent: Domain | None, ruleset_fd: int):
        self.parent = parent
        self.error = 0
        self.scopes_abstract_unix = False
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ident = -1
        self._closed = False
        if parent is None:
            self._start(ruleset_fd)
        else:
            parent.run(lambda: self._start(ruleset_fd))
        if not self.error:
            self.scopes_abstract_unix = self._abstract_unix_scoped()

    def _start(self, ruleset_fd: int) -> None:
        ready = threading.Event()
        thread = threading.Thread(target=self._serve, args=(ruleset_fd, ready), name="landlock-domain", daemon=True)
        thread.start()
        ready.wait()

    def _serve(self, ruleset_fd: int, ready: threading.Event) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        self._ident = threading.get_ident()
        if libc.prctl(abi.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # this thread only
            self.error = errno.EPERM
        else:
            self.error = landlock.enter(ruleset_fd)
        ready.set()
        if self.error:
            return
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job.value = job.operation()
            except BaseException as error:  # noqa: BLE001 - handed back to the caller
                job.error = error
            job.done.set()

    def inside(self) -> bool:
        """Is the caller this domain's thread (or a helper it forked)?"""
        return threading.get_ident() == self._ident

    def run(self, operation: Callable[[], object]) -> object:
        """operation() done inside the domain; its exception is raised here."""
        if self.inside():
            return operation()
        if self.error or self._closed:
            raise OSError(errno.EACCES, "the copy of the tracee's Landlock domain is not usable")
        job = _Job(operation)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value

    def fork(self, child: Callable[[], None]) -> int:
        """Fork a helper inside the domain: it runs child() (which must end with
        os._exit); the helper's pid is returned."""
        def forked() -> int:
            pid = fork_helper()
            if pid == 0:
                try:
                    child()
                finally:
                    os._exit(70)
            return pid

        return int(self.run(forked))  # type: ignore[call-overload]

    def close(self) -> None:
        if not self._closed and not self.error:
            self._jobs.put(None)
        self._closed = True

    def _abstract_unix_scoped(self) -> bool:
        """Does the domain keep abstract unix sockets created outside it out of reach
        (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET)? Tried once: a socket of systrace's, outside."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as server:
            server.bind(b"")  # autobind: an abstract name of its own
            server.listen(1)
            name = server.getsockname()

            def connect() -> bool:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as client:
                    try:
                        client.connect(name)
                    except PermissionError:
                        return True
                    return False

            return bool(self.run(connect))
