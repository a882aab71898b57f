"""Where an emulated operation resolves: the mount view its check was made in, and the
checked parent directory opened without following any symlink.

The check resolved the path in systrace's mount namespace (below the tracee's root when
it has chrooted). A tracee in another mount namespace sees other files under the same
names, so its path-decided calls are refused (EmulationError) unless its policy permits
other mount views (`permit[mountns]`, SECURITY.md "What is not (yet) protected")."""

from __future__ import annotations

import errno
import os

from . import namespaces, procfs
from .emulate import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2
from .emulate_identity import EmulationError

AT_FDCWD = -100


def other_mount_view(tid: int) -> bool:
    """Is the thread in another mount namespace than systrace? (Only the thread itself can
    change its namespace, and it is waiting in the call being emulated: no race. Kept per
    thread: kernel/namespaces.py.)"""
    try:
        return namespaces.differs(tid, "mnt")
    except OSError:
        return True  # cannot tell: fail closed


def split(canonical: bytes) -> tuple[bytes, bytes]:
    """(parent directory, final component) of a canonical path; "/" is ("/", ".")."""
    parent, _, name = canonical.rstrip(b"/").rpartition(b"/")
    return (parent or b"/", name or b".")


class RootFd:
    """The tracee's root as a descriptor (for RESOLVE_IN_ROOT), or AT_FDCWD when it is "/"."""

    def __init__(self, tid: int, root: str | None):
        self.fd = AT_FDCWD
        self.root = root or "/"
        if self.root != "/":
            self.fd = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd != AT_FDCWD:
            os.close(self.fd)
            self.fd = AT_FDCWD

    def resolve_flags(self) -> int:
        flags = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
        return flags | RESOLVE_IN_ROOT if self.fd != AT_FDCWD else flags


def open_directory(root: RootFd, path: bytes) -> int:
    """An O_PATH descriptor of the directory `path` (canonical, in the tracee's root),
    opened without following a symlink anywhere, and checked to be at that path. Raises
    OSError (what the tracee would get) or EmulationError."""
    fd = openat2(root.fd, path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, root.resolve_flags())
    actual = procfs.own_link(fd)  # (from /proc/self/fd held open: no walk of /proc, /proc/self)
    prefix = os.fsencode(root.root) if root.root != "/" else b""
    if prefix and actual.startswith(prefix):
        actual = actual[len(prefix):] or b"/"
    if actual != path:
        os.close(fd)
        raise EmulationError(errno.EACCES, f"opened {actual!r}, not the checked {path!r}")
    return fd
