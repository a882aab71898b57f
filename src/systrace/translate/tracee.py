"""What translators may ask of a tracee: memory, cwd, fds, root. Tests use a fake."""

from __future__ import annotations

import os

from ..kernel import memory, procfs

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Protocol

    class Tracee(Protocol):
        tid: int
        tgid: int

        def read(self, address: int, size: int) -> bytes: ...
        def string(self, address: int, limit: int = 4096) -> bytes: ...
        def pointers(self, address: int, limit: int = 4096) -> list[int]: ...
        def cwd(self) -> bytes: ...
        def fd_path(self, fd: int) -> bytes: ...
        def root(self) -> bytes: ...
        def exe_of(self, pid: int) -> str | None: ...


class LiveTracee:
    """A real thread, read through process_vm_readv and /proc."""

    def __init__(self, tid: int, tgid: int):
        self.tid = tid
        self.tgid = tgid
        self._root: bytes | None = None

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
