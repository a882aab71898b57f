"""The descriptor form of the stat calls, carried out on the descriptor itself.

glibc's fstat is newfstatat(fd, "", &st, AT_EMPTY_PATH); statx has the same form. The
path is in the tracee's memory: a CONTINUE after systrace read "" lets the kernel read it
again, and a second thread can have written "/etc/shadow" there meanwhile (the kernel
then stats that path, which the policy never saw: tests/escape/test_descriptor_stat_race.py).
So systrace makes the call itself on what it checked, the tracee's descriptor, reached
through its magic link /proc/TID/fd/N (one stat call: no pidfd, no descriptor taken), and
writes the result into the tracee. The link leads to the open file's own path (O_PATH,
pipes, sockets, deleted files included), so the result is the one fstat gives; systrace
needs the ptrace access the kernel asks for reading the tracee's memory anyway.

Pure ABI: which calls are in that form (`descriptor_form`) and the call made on the
descriptor (`stat_descriptor`). Deciding whether it is permitted is not here."""

from __future__ import annotations

import ctypes
import errno

from . import closer, id_maps
from .abi import s32
from .libc import libc, pidfd_getfd

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_STATX_SYNC_TYPE = 0x100, 0x800, 0x1000, 0x6000
NEWFSTATAT, STATX = 262, 332
SIZES = {NEWFSTATAT: 144, STATX: 256}  # struct stat, struct statx
# the flags each accepts (others: EINVAL natively; left to the stages, which answer it)
_VALID = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE
_buffer = ctypes.create_string_buffer(256)  # the supervisor is single-threaded (helpers fork)


def descriptor_form(nr: int, args: tuple[int, ...]) -> tuple[int, int, int, int, int] | None:
    """(fd, path address, flags, mask, result address) of a newfstatat/statx whose flags
    name the descriptor form (AT_EMPTY_PATH, valid flags, a descriptor or AT_FDCWD); None
    otherwise. Whether the path is "" is for the caller to read."""
    if nr == NEWFSTATAT:
        fd, path, out, flags, mask = s32(args[0]), args[1], args[2], args[3] & 0xFFFFFFFF, 0
    elif nr == STATX:
        fd, path, flags, mask, out = s32(args[0]), args[1], args[2] & 0xFFFFFFFF, args[3] & 0xFFFFFFFF, args[4]
    else:
        return None
    if not flags & AT_EMPTY_PATH or flags & ~_VALID or path == 0 or (fd < 0 and fd != AT_FDCWD):
        return None
    return fd, path, flags, mask, out


class MayWait(Exception):
    """The descriptor names a file a process serves (FUSE, a network file system): its
    stat may wait on that process, so the caller has a helper make it."""


def stat_descriptor(tid: int, nr: int, fd: int, flags: int, mask: int, served_exist: bool = False,
                    pidfd: int = -1) -> bytes:
    """The struct stat (newfstatat) or struct statx the tracee thread `tid` would get for
    its descriptor `fd` (AT_FDCWD: its working directory). OSError: the tracee's error
    (EBADF for a descriptor it does not hold). `served_exist`: file systems that a
    process serves exist (mounts.ServedAnywhere): MayWait if the file is on one.
    `pidfd`: the thread's own pidfd, when known: the descriptor is taken with
    pidfd_getfd and stat'ed (cheaper than the magic link's lookup)."""
    if pidfd >= 0 and fd >= 0:
        try:
            taken = pidfd_getfd(pidfd, fd)
        except OSError as error:
            if error.errno == errno.EBADF:
                raise
        else:
            may_wait = True  # (closing a socket or a served file may wait: kernel/closer.py)
            try:
                result = _stat_at(taken, b"", nr, flags | AT_EMPTY_PATH, mask, served_exist)
                may_wait = _socket_or_unknown(nr, result) and closer.socket_may_wait(taken)  # (served: MayWait)
                return id_maps.stat_seen_by(tid, nr, result)
            finally:
                closer.close_taken(taken, may_wait)
    place = b"/proc/%d/cwd" % tid if fd == AT_FDCWD else b"/proc/%d/fd/%d" % (tid, fd)
    return id_maps.stat_seen_by(tid, nr, _stat_at(AT_FDCWD, place, nr, 0, mask, served_exist))


def _stat_at(base: int, place: bytes, nr: int, flags: int, mask: int, served_exist: bool) -> bytes:
    """The stat of `place` from `base` (b"": `base` itself, with AT_EMPTY_PATH in `flags`)."""
    empty = flags & AT_EMPTY_PATH
    if served_exist and closer.served(base, place, empty):
        raise MayWait(place)
    # following the magic link (never AT_SYMLINK_NOFOLLOW: that would stat the link);
    # the descriptor form never triggers an automount, so neither does this
    at = AT_NO_AUTOMOUNT | (flags & AT_STATX_SYNC_TYPE) | empty
    if nr == NEWFSTATAT:
        result = libc.syscall(NEWFSTATAT, base, place, _buffer, at)
    else:
        result = libc.syscall(STATX, base, place, at, ctypes.c_uint(mask), _buffer)
    if result < 0:
        code = ctypes.get_errno()
        if code == errno.ENOENT:  # no such entry: the tracee holds no such descriptor
            code = errno.EBADF
        raise OSError(code, "stat of the tracee's descriptor")
    return _buffer.raw[:SIZES[nr]]


def _socket_or_unknown(nr: int, result: bytes) -> bool:
    """Is the stat result a socket's, or one without the file type (statx's mask)?"""
    mode = int.from_bytes(result[24:28], "little") if nr == NEWFSTATAT else int.from_bytes(result[28:30], "little")
    return mode & closer.S_IFMT in (closer.S_IFSOCK, 0)

