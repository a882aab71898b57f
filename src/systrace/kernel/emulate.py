"""Opening a file on a tracee's behalf (TOCTOU-safe open).

The supervisor opens the canonical path the policy was evaluated on, with openat2 and
RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a symlink or a swapped path string after
the check cannot redirect it. It opens with the tracee's filesystem credentials and
umask (kernel/emulate_identity.py), below the tracee's root, checks the path of what it opened, and the caller hands
the fd over with ADDFD. A path that is one of the tracee's own descriptors
(/proc/TGID/fd/N) is reopened from that file description (pidfd_getfd), never by name:
/proc/self and /dev/fd in the supervisor would mean the supervisor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct

from . import closer
from .emulate_identity import EmulationError, Identity, tracee_identity
from .libc import check, libc, pidfd_getfd
from .proc_names import FD_LINK
from .procfs import FdLink, Replaced, own_link

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .landlock_domain import Domain

SYS_openat2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10
OPEN_HOW = struct.Struct("=QQQ")
# the O_ flags openat2 accepts (it rejects unknown bits, which open() ignores)
VALID_FLAGS = (os.O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_APPEND | os.O_NONBLOCK
               | os.O_DSYNC | os.O_SYNC | os.O_DIRECT | os.O_LARGEFILE | os.O_DIRECTORY | os.O_NOFOLLOW
               | os.O_NOATIME | os.O_CLOEXEC | os.O_PATH | getattr(os, "O_TMPFILE", 0) | 0o20000)  # FASYNC
_OWN_FD = FD_LINK  # ^/proc/(\d+)/(?:task/\d+/)?fd/(\d+)$, without re (start-up)


_HOW = ctypes.create_string_buffer(OPEN_HOW.size)  # the supervisor is single-threaded


def openat2(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
    OPEN_HOW.pack_into(_HOW, 0, flags, mode, resolve)
    return check(libc.syscall(SYS_openat2, dirfd, path, _HOW, OPEN_HOW.size))


def open_for(tid: int, tgid: int, checked_path: bytes, flags: int, mode: int, status: bytes,
             root: str | None = None, link: bytes | None = None, domain: Domain | None = None,
             identity: Identity | None = None) -> int:
    """Open what the policy checked; return our fd (the caller injects and closes it).
    `link`: what the tracee's descriptor named when checked, for a path ending on one.
    `domain`: the copy of the tracee's own Landlock domain the open is made in.
    `identity`: the tracee's, parsed from `status` already (else parsed here).
    Raises EmulationError (fail closed) or OSError (the error the tracee would see)."""
    flags &= VALID_FLAGS
    if not flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)):
        mode = 0
    # O_NOFOLLOW, O_CREAT|O_EXCL: the magic link itself (ELOOP, EEXIST, O_PATH of the link)
    follows = not flags & os.O_NOFOLLOW and not (flags & os.O_CREAT and flags & os.O_EXCL)
    own = _OWN_FD.match(checked_path) if follows else None
    credentials = identity if identity is not None else tracee_identity(status, tid)
    credentials.domain = domain
    if own and link is None and int(own.group(1)) != tgid:
        own = None  # one systrace could not read: opened as the tracee, it fails as natively (EACCES)
    if own:
        if link is None:
            raise EmulationError(errno.EACCES, "a descriptor reopened without what it named when checked")
        if isinstance(checked_path, FdLink):  # another process's: the kernel checks our access to it
            if root not in (None, "/"):  # a magic link is not followed below another root (RESOLVE_IN_ROOT)
                raise EmulationError(errno.EACCES, "another process's descriptor below a changed root")
            try:
                return checked_path.follow_as(credentials.run, flags)
            except Replaced as replaced:
                raise EmulationError(errno.EACCES, str(replaced)) from None
        if int(own.group(1)) != tgid:
            raise EmulationError(errno.EACCES, "another process's descriptor")
        return _reopen_descriptor(tgid, int(own.group(2)), flags, credentials, link)
    if not checked_path.startswith(b"/"):
        raise EmulationError(errno.EACCES, f"not a path: {checked_path!r}")
    if root is None:  # else: the root the checked path was resolved in
        root = os.readlink(f"/proc/{tid}/root")
    resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
    root_fd = -1
    try:
        if root != "/":
            root_fd = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            resolve |= RESOLVE_IN_ROOT
        fd = credentials.run(lambda: openat2(root_fd if root_fd >= 0 else -100, checked_path, flags | os.O_CLOEXEC,
                                             mode, resolve),
                             creating=bool(flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0))))
    finally:
        if root_fd >= 0:
            os.close(root_fd)
    _verify(fd, checked_path, root)
    return fd


def _reopen_descriptor(tgid: int, number: int, flags: int, identity: Identity, link: bytes) -> int:
    """The tracee's fd N, reopened from its file description with `flags` (what opening
    /proc/self/fd/N does in the tracee), as the tracee: the reopen checks the file's
    permissions against its identity, not systrace's. The description must still name
    `link` (the exact pipe:[INODE] or path the policy was shown): a thread that dup2s
    another file onto N after the check gets EACCES, never that file."""
    pidfd = os.pidfd_open(tgid)
    try:
        theirs = pidfd_getfd(pidfd, number)
    except OSError as error:
        code = errno.ENOENT if error.errno == errno.EBADF else error.errno or errno.EIO
        raise OSError(code, os.strerror(code)) from None
    finally:
        os.close(pidfd)
    try:
        if os.readlink(f"/proc/self/fd/{theirs}".encode()) != link:
            raise EmulationError(errno.EACCES, f"descriptor {number} no longer names {link!r}")
        return identity.run(lambda: os.open(f"/proc/self/fd/{theirs}", (flags & ~os.O_NOFOLLOW) | os.O_CLOEXEC))
    finally:
        closer.close_taken(theirs)  # (the tracee's own open file: its last close may wait)


# the path calls a probe of their one plain path serves (translate/path_cache.py keeps
# it, kernel/emulate_path.PathCall.use_probe uses it): the file it holds is the one the
# call would look up, and it is no symlink (opened with RESOLVE_NO_SYMLINKS)
PROBED_CALLS = frozenset({"stat", "lstat", "newfstatat", "statx", "readlink", "readlinkat", "access", "faccessat",
                          "faccessat2"})


def still_at(fd: int, checked_path: bytes) -> bool:
    """Is what `fd` names (below "/") at the checked path now? (A rename since it was
    opened moves it: then the path is looked up again.)"""
    try:
        return own_link(fd) == checked_path
    except OSError:
        return False


def _unnamed_in(fd: int, actual: bytes, directory: bytes) -> bool:
    """Is `fd` an O_TMPFILE file made in the checked `directory`? The kernel names it
    "DIR/#INODE (deleted)", and it has no link yet."""
    status = os.fstat(fd)
    return (stat.S_ISREG(status.st_mode) and status.st_nlink == 0
            and actual == b"%s/#%d (deleted)" % (directory.rstrip(b"/"), status.st_ino))


def _verify(fd: int, checked_path: bytes, root: str) -> None:
    """What we opened is at the path we checked (else close it and fail closed)."""
    actual = own_link(fd)
    if root != "/" and actual.startswith(os.fsencode(root)):
        actual = actual[len(os.fsencode(root)):] or b"/"
    if actual != checked_path and not (checked_path.endswith(b"/") and actual == checked_path.rstrip(b"/")) \
            and not _unnamed_in(fd, actual, checked_path):
        os.close(fd)
        raise EmulationError(errno.EACCES, f"opened {actual!r}, not the checked {checked_path!r}")
