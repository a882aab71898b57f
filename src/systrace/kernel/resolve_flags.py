"""openat2's RESOLVE_* flags, kept when systrace opens for the tracee.

The check resolves an openat2 path as an openat one, and the emulated open opens that
canonical path: a tracee that asked for RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS,
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV or RESOLVE_CACHED (restrictions it puts on
itself, as a sandboxed parser does) got the file anyway, and RESOLVE_IN_ROOT (the
directory descriptor as root) got the file of the same name in the real root. So
before an emulated openat2 with resolve flags, systrace resolves the path as the tracee
asked: its directory descriptor (pidfd_getfd) or working directory, its flags, as the
tracee, into an O_PATH descriptor (which opens nothing). Its error is the tracee's
answer (EXDEV, ELOOP, EAGAIN, as natively); what it names must be the file checked (or,
for a file to create, its directory the checked one's), else the open is refused: the
check did not see that file. With RESOLVE_IN_ROOT the check itself resolves the path with
the directory as root (translate/filename.resolve_in_root), so the two agree and the
open opens the checked file. A tracee whose own root is not "/" (chroot) has every
openat2 with resolve flags refused: an absolute path, an absolute symlink or `..` in its
lookup would start from systrace's root here, not the tracee's."""

from __future__ import annotations

import errno
import os

from . import memory
from .emulate import VALID_FLAGS, openat2
from .emulate_identity import EmulationError, Identity
from .libc import pidfd_getfd

AT_FDCWD = -100
RESOLVE_MASK = 0x3F  # NO_XDEV NO_MAGICLINKS NO_SYMLINKS BENEATH IN_ROOT CACHED
RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x08, 0x10
O_TMPFILE = getattr(os, "O_TMPFILE", 0)


def resolve_of(tid: int, args: tuple[int, ...]) -> int:
    """The resolve field of the tracee's struct open_how (0 when it has none). Read again
    here: a tracee that changes it meanwhile only changes its own restrictions."""
    if args[3] < 24:
        return 0
    return int.from_bytes(memory.read(tid, args[2] + 16, 8), "little")


def _invalid(flags: int, mode: int, resolve: int) -> bool:
    """What openat2 refuses with EINVAL before any lookup (fs/open.c build_open_flags)."""
    if flags & ~VALID_FLAGS or resolve & ~RESOLVE_MASK:
        return True
    if mode and not flags & (os.O_CREAT | O_TMPFILE) or mode & ~0o7777:
        return True
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        return True
    return bool(flags & O_TMPFILE == O_TMPFILE and not flags & (os.O_WRONLY | os.O_RDWR))


def check_as_asked(tid: int, tgid: int, args: tuple[int, ...], flags: int, checked: bytes, root: str | None,
                   identity: Identity) -> None:
    """Raise OSError (the tracee's own error) or EmulationError unless the path resolved
    with the tracee's resolve flags names `checked` (module docstring)."""
    size = args[3]
    if size < 24:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    if size > 4096:
        raise OSError(errno.E2BIG, os.strerror(errno.E2BIG))
    how = memory.read(tid, args[2], size)
    if any(how[24:]):  # fields of a later struct version this kernel does not know
        raise OSError(errno.E2BIG, os.strerror(errno.E2BIG))
    mode, resolve = int.from_bytes(how[8:16], "little"), int.from_bytes(how[16:24], "little")
    if _invalid(flags, mode, resolve):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    if not resolve:
        return
    if root not in (None, "/"):
        raise EmulationError(errno.EACCES, "openat2 with RESOLVE flags below a changed root")
    path = memory.read_cstring(tid, args[1])
    dirfd = (args[0] & 0xFFFFFFFF) - (1 << 32) if args[0] & 0x80000000 else args[0] & 0xFFFFFFFF
    start = starting_directory(tid, tgid, dirfd)
    try:
        probe_flags = os.O_PATH | os.O_CLOEXEC | (flags & (os.O_NOFOLLOW | os.O_DIRECTORY))
        if flags & os.O_CREAT and flags & os.O_EXCL:
            probe_flags |= os.O_NOFOLLOW  # O_EXCL creates the name itself, never what a link names
        try:
            _expect(identity.run(lambda: openat2(start, path, probe_flags, 0, resolve)), checked)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            parent = path.rstrip(b"/").rpartition(b"/")[0] if b"/" in path.rstrip(b"/") else b"."
            fd = identity.run(lambda: openat2(start, parent or b"/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                                              resolve))
            _expect(fd, checked.rstrip(b"/").rpartition(b"/")[0] or b"/")
    finally:
        os.close(start)


def starting_directory(tid: int, tgid: int, dirfd: int) -> int:
    """Our descriptor of where the tracee's relative path starts: its working directory
    (AT_FDCWD) or its descriptor `dirfd` (the same file description, pidfd_getfd).
    Raises OSError with the errno the tracee would get (EBADF)."""
    if dirfd == AT_FDCWD:
        return os.open(f"/proc/{tid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    pidfd = os.pidfd_open(tgid)
    try:
        return pidfd_getfd(pidfd, dirfd)
    except OSError as error:
        code = error.errno or errno.EBADF
        raise OSError(code, os.strerror(code)) from None
    finally:
        os.close(pidfd)


def _expect(fd: int, wanted: bytes) -> None:
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}".encode())
    finally:
        os.close(fd)
    if actual != wanted and actual != wanted.rstrip(b"/"):
        raise EmulationError(errno.EACCES, f"openat2's RESOLVE flags resolve to {actual!r}, not the checked {wanted!r}")
