"""Which process a notifying thread belongs to.

notif.pid is a thread id. Its thread group, parent and credentials are cached per thread
id together with a pidfd for that thread: a thread id is only reused after its task
died, so a cache hit is trusted only while that pidfd still names a live task (a cheap
signal-0 check). This is what lets clone/fork stay out of the notified set; notifying
them would let a signal that arrives before we receive the notification turn fork()
into EINTR, which a native fork never returns. A group's entries are dropped when it
calls execve. The binary is not cached at all: it is read from /proc/TID/exe per call."""

from __future__ import annotations

import ctypes
import errno
import os

from .kernel import procfs
from .kernel.libc import libc
from .record import record

PIDFD_THREAD = os.O_EXCL  # pidfd_open flag (Linux 6.9): a pidfd for one thread
SYS_pidfd_send_signal = 424
SWEEP_AT = 512  # entries; past this, dead threads' entries are swept out


@record
class ThreadInfo:
    tgid: int
    ppid: int
    uid: int
    gid: int


class ProcessTable:
    def __init__(self) -> None:
        self._threads: dict[int, tuple[ThreadInfo, int]] = {}
        # /proc/TID/status fds: bound to their task (after its death reads fail, never
        # another task's), so pread gives fresh credentials cheaply
        self._status_fds: dict[int, int] = {}
        self._sweep_at = SWEEP_AT
        self._thread_pidfds = True

    def info(self, tid: int) -> ThreadInfo:
        entry = self._threads.get(tid)
        if entry is not None:
            if _alive(entry[1]):
                return entry[0]
            self._drop(tid)
        pidfd = self._open_pidfd(tid)
        try:
            status = procfs.parse_status(self.status_bytes(tid, keep=pidfd >= 0))
        except BaseException:
            if pidfd >= 0:
                os.close(pidfd)
            status_fd = self._status_fds.pop(tid, None)
            if status_fd is not None:
                os.close(status_fd)
            raise
        info = ThreadInfo(status.tgid, status.ppid, status.euid, status.egid)
        if pidfd >= 0:
            self._threads[tid] = (info, pidfd)
            if len(self._threads) >= self._sweep_at:
                self._sweep()
        return info

    def status_bytes(self, tid: int, keep: bool | None = None) -> bytes:
        """The thread's /proc status now (credentials, umask). Its fd is kept for the next
        time when `keep`, by default when the thread is tracked (its pidfd proves identity)."""
        fd = self._status_fds.get(tid)
        if fd is not None:
            try:
                data = os.pread(fd, 4096, 0)
                if data:
                    return data
            except OSError:
                pass
            os.close(self._status_fds.pop(tid))
        fd = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
        if keep if keep is not None else tid in self._threads:
            self._status_fds[tid] = fd
            return os.pread(fd, 4096, 0)
        try:
            return os.pread(fd, 4096, 0)
        finally:
            os.close(fd)

    def forget_group(self, tgid: int) -> None:
        for tid in [tid for tid, (info, _) in self._threads.items() if info.tgid == tgid or tid == tgid]:
            self._drop(tid)

    def close(self) -> None:
        for tid in list(self._threads):
            self._drop(tid)

    def __len__(self) -> int:
        return len(self._threads)

    def _open_pidfd(self, tid: int) -> int:
        if not self._thread_pidfds:
            return -1
        try:
            return os.pidfd_open(tid, PIDFD_THREAD)
        except OSError as error:
            if error.errno == errno.EINVAL:  # kernel before 6.9: no caching at all
                self._thread_pidfds = False
            return -1

    def _drop(self, tid: int) -> None:
        entry = self._threads.pop(tid, None)
        if entry is not None:
            os.close(entry[1])
        status_fd = self._status_fds.pop(tid, None)
        if status_fd is not None:
            os.close(status_fd)

    def _sweep(self) -> None:
        for tid in [tid for tid, (_, pidfd) in self._threads.items() if not _alive(pidfd)]:
            self._drop(tid)
        self._sweep_at = max(SWEEP_AT, 2 * len(self._threads))


class PerProcess:
    """Values kept for a process (by tgid) only while that process lives. Each entry holds
    a pidfd opened when it was set (the process was making a call, so it was alive); an
    entry whose process is gone is dropped when looked up, so a recycled tgid never
    finds another process's value (`detached`, an exec expectation...)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, int]] = {}
        self._sweep_at = SWEEP_AT

    def set(self, tgid: int, value: object) -> None:
        entry = self._entries.get(tgid)
        if entry is not None and _alive(entry[1]):
            self._entries[tgid] = (value, entry[1])
            return
        self.discard(tgid)
        try:
            pidfd = os.pidfd_open(tgid)
        except OSError:
            return  # already gone: nothing to remember
        self._entries[tgid] = (value, pidfd)
        if len(self._entries) >= self._sweep_at:
            for dead in [t for t, (_, fd) in self._entries.items() if not _alive(fd)]:
                self.discard(dead)
            self._sweep_at = max(SWEEP_AT, 2 * len(self._entries))

    def add(self, tgid: int) -> None:
        """Set-like use: mark the process."""
        self.set(tgid, True)

    def get(self, tgid: int, default: object = None) -> object:
        entry = self._entries.get(tgid)
        if entry is None:
            return default
        if _alive(entry[1]):
            return entry[0]
        self.discard(tgid)
        return default

    def pop(self, tgid: int, default: object = None) -> object:
        value = self.get(tgid, default)
        self.discard(tgid)
        return value

    def discard(self, tgid: int) -> None:
        entry = self._entries.pop(tgid, None)
        if entry is not None:
            os.close(entry[1])

    def __contains__(self, tgid: int) -> bool:
        return self.get(tgid, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        for tgid in list(self._entries):
            self.discard(tgid)


_MISSING = object()


def _alive(pidfd: int) -> bool:
    """Signal 0 through the pidfd: ESRCH once its task is gone (EPERM means alive)."""
    if libc.syscall(SYS_pidfd_send_signal, pidfd, 0, None, 0) == 0:
        return True
    return ctypes.get_errno() != errno.ESRCH
