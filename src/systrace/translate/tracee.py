"""What translators may ask of a tracee: memory, cwd, fds, root. Tests use a fake."""

from __future__ import annotations

import os

from ..kernel import memory, procfs

# The supervisor that launched the command, read when systrace starts: the processes it
# forks to translate or decide (replicas of --supervisors, FUSE helpers) inherit it, so
# "supervised" and "systrace's own" mean the same in all of them.
SUPERVISOR_PID = os.getpid()
SUPERVISOR_PID_NAMESPACE = os.readlink("/proc/self/ns/pid")

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    class Tracee(Protocol):
        tid: int
        tgid: int
        pins: dict[int, int | None]  # pids named by relation -> their start time (None: moved)
        reaches_systrace: bool  # a /proc path named systrace or one of its helpers

        def read(self, address: int, size: int) -> bytes: ...
        def string(self, address: int, limit: int = 4096) -> bytes: ...
        def pointers(self, address: int, limit: int = 4096) -> list[int]: ...
        def cwd(self) -> bytes: ...
        def fd_path(self, fd: int) -> bytes: ...
        def root(self) -> bytes: ...
        def exe_of(self, pid: int) -> str | None: ...
        def tgid_of(self, tid: int) -> int | None: ...
        def ppid_of(self, pid: int) -> int | None: ...
        def pgid_of(self, pid: int) -> int | None: ...
        def supervised(self, pid: int) -> bool: ...
        def pidfd_pid(self, fd: int) -> int | None: ...
        def start_time(self, pid: int) -> int | None: ...
        def of_systrace(self, pid: int) -> bool: ...
        def namespace_ids(self) -> tuple[int, int] | None: ...


class LiveTracee:
    """A real thread, read through process_vm_readv and /proc."""

    def __init__(self, tid: int, tgid: int, may_block: Callable[[bytes, int, bytes | None], bool] | None = None):
        self.tid = tid
        self.tgid = tgid
        self._root: bytes | None = None
        self.pins: dict[int, int | None] = {}
        self.reaches_systrace = False
        self.may_block = may_block  # would looking this path up wait on the tracee? (filename.MayBlock)
        self._namespace_ids: tuple[int, int] | None | bool = False  # not read yet

    def read(self, address: int, size: int) -> bytes:
        return memory.read(self.tid, address, size)

    def string(self, address: int, limit: int = 4096) -> bytes:
        return memory.read_cstring(self.tid, address, limit)

    def pointers(self, address: int, limit: int = 4096) -> list[int]:
        return memory.read_pointer_array(self.tid, address, limit)

    def cwd(self) -> bytes:
        return procfs.cwd(self.tid)

    def fd_path(self, fd: int) -> bytes:
        return procfs.fd_path(self.tid, fd)

    def root(self) -> bytes:
        if self._root is None:  # read once per call: translation and emulated open agree
            self._root = procfs.root(self.tid)
        return self._root

    def exe_of(self, pid: int) -> str | None:
        try:
            return os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None

    def tgid_of(self, tid: int) -> int | None:
        value = _status_field(tid, "Tgid")
        return None if value is None else int(value)

    def ppid_of(self, pid: int) -> int | None:
        value = _status_field(pid, "PPid")
        return None if value is None else int(value)

    def pgid_of(self, pid: int) -> int | None:
        try:
            return os.getpgid(pid)
        except OSError:
            return None

    def supervised(self, pid: int) -> bool:
        """Under this systrace: a descendant of the supervisor with a seccomp filter (the
        supervisor's own helpers, a frontend program, have none)."""
        return not _unfiltered(pid) and self._below_supervisor(pid)

    def start_time(self, pid: int) -> int | None:
        return procfs.start_time(pid)

    def of_systrace(self, pid: int) -> bool:
        """systrace itself, or a process of its own below it that no filter confines (an
        open helper, a frontend program): never the tracee's to open in /proc."""
        return pid == SUPERVISOR_PID or os.path.exists(f"/proc/{SUPERVISOR_PID}/task/{pid}") \
            or (_unfiltered(pid) and self._below_supervisor(pid))  # (/proc/TID of one of its threads too)

    def _below_supervisor(self, pid: int) -> bool:
        """Is the supervisor one of `pid`'s ancestors (within 64 generations)?"""
        current = pid
        for _ in range(64):
            current = self.ppid_of(current) or 0
            if current <= 1:
                return False
            if current == SUPERVISOR_PID:
                return True
        return False

    def namespace_ids(self) -> tuple[int, int] | None:
        """None when the caller is in systrace's pid namespace; else its tgid and tid as
        its own namespace numbers them (-1 when they cannot be read: they then name
        nothing)."""
        if self._namespace_ids is False:
            self._namespace_ids = _namespace_ids(self.tid)
        return self._namespace_ids  # type: ignore[return-value]

    def pidfd_pid(self, fd: int) -> int | None:
        try:
            with open(f"/proc/{self.tid}/fdinfo/{fd}", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Pid:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return None


def _status_field(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            prefix = name.encode() + b":"
            for line in handle:
                if line.startswith(prefix):
                    return line[len(prefix):].strip().decode()
    except OSError:
        pass
    return None


def _namespace_ids(tid: int) -> tuple[int, int] | None:
    try:
        if os.readlink(f"/proc/{tid}/ns/pid") == SUPERVISOR_PID_NAMESPACE:
            return None
    except OSError:
        return (-1, -1)  # gone, or not ours to read: fail closed
    tgids, tids = _status_field(tid, "NStgid"), _status_field(tid, "NSpid")
    if not tgids or not tids:
        return (-1, -1)
    return int(tgids.split()[-1]), int(tids.split()[-1])


def _unfiltered(pid: int) -> bool:
    """No seccomp filter confines it (or it is gone)."""
    return _status_field(pid, "Seccomp") in (None, "0")
