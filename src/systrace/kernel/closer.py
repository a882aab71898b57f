"""Closing a tracee's open file that systrace took (pidfd_getfd) without waiting on it.

systrace's copy is the file's last reference once the tracee closed its own descriptor
meanwhile (another thread may, at any moment), and a last close can wait: a TCP socket
with SO_LINGER and unsent data (a receiver that reads nothing) waits until its data is
acknowledged or the linger time ends (found by the red team: a thread fstat()ing such a
socket while another closed it held the loop for the whole linger time). Any close of a
file on a file system a process serves (FUSE: FLUSH; a network file system: its write
back) waits for that server. So the copy of such a socket (any but unix, netlink and
UDP ones, which never linger: the tracee may set SO_LINGER at any time) or of such a file
is closed by a thread of systrace's own: the loop hands the number over through a pipe
and goes on.
The thread inherits the loop's blocked signals; a helper forked later starts its own."""

from __future__ import annotations

import _thread
import ctypes
import os

from .libc import libc

STATX, AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_STATX_DONT_SYNC, STATX_TYPE = 332, 0x800, 0x1000, 0x4000, 0x1
BACKING_DEVICES = "/sys/devices/virtual/bdi"  # (kernel/mounts.py: a served file system's device is named there)
S_IFMT, S_IFSOCK = 0o170000, 0o140000  # (no stat module: start-up time)
_buffer = ctypes.create_string_buffer(256)
_hand: list[int] = []  # [the pipe's write end, the pid whose thread reads it]


def served(base: int, place: bytes, empty: int) -> bool:
    """Is the file at `place` on a file system a process serves? Asked with
    AT_STATX_DONT_SYNC, which FUSE and network file systems answer from their cache,
    never asking their server. An error: no (the stat itself then fails alike)."""
    if libc.syscall(STATX, base, place, AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC | empty, ctypes.c_uint(STATX_TYPE), _buffer) < 0:
        return False
    return _served_device(_buffer.raw)


def _served_device(statx: bytes) -> bool:
    major, minor = int.from_bytes(statx[136:140], "little"), int.from_bytes(statx[140:144], "little")
    return os.path.exists(f"{BACKING_DEVICES}/{major}:{minor}") and major == 0 \
        or os.path.exists(f"{BACKING_DEVICES}/{major}:{minor}-fuseblk")


def may_wait_closing(fd: int) -> bool:
    """Can a close of `fd` wait (a socket that may linger, a file a process serves)? Read
    from the cache (AT_STATX_DONT_SYNC); when that fails, yes."""
    if libc.syscall(STATX, fd, b"", AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC | AT_EMPTY_PATH, ctypes.c_uint(STATX_TYPE),
                    _buffer) < 0:
        return True
    raw = _buffer.raw
    if int.from_bytes(raw[28:30], "little") & S_IFMT == S_IFSOCK:
        return socket_may_wait(fd)
    return _served_device(raw)


SOL_SOCKET, SO_TYPE, SO_DOMAIN = 1, 3, 39
AF_UNIX, AF_INET, AF_NETLINK, AF_INET6, SOCK_DGRAM = 1, 2, 16, 10, 2
_value, _size = ctypes.c_int(), ctypes.c_uint(4)


def _option(fd: int, name: int) -> int:
    _size.value = 4
    if libc.getsockopt(fd, SOL_SOCKET, name, ctypes.byref(_value), ctypes.byref(_size)) < 0:
        return -1
    return _value.value


def socket_may_wait(fd: int) -> bool:
    """Can the last close of socket `fd` wait? Unix, netlink and UDP sockets never
    linger; any other may (TCP, SCTP, vsock...); unknown: yes."""
    domain = _option(fd, SO_DOMAIN)
    if domain in (AF_UNIX, AF_NETLINK):
        return False
    return not (domain in (AF_INET, AF_INET6) and _option(fd, SO_TYPE) == SOCK_DGRAM)


def close_taken(fd: int, may_wait: bool | None = None) -> None:
    """Close systrace's copy `fd` of a tracee's open file; `may_wait` when known (None:
    asked here)."""
    if may_wait is None:
        may_wait = may_wait_closing(fd)
    if not may_wait:
        os.close(fd)
        return
    if not _hand or _hand[1] != os.getpid():  # (none yet, or made by the process we were forked from)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(write_end, False)
        _thread.start_new_thread(_closing, (read_end,))
        _hand[:] = [write_end, os.getpid()]
    try:
        os.write(_hand[0], fd.to_bytes(4, "little"))
    except OSError:  # full (the thread waits on a close), or gone: a thread for this one
        _thread.start_new_thread(os.close, (fd,))


def _closing(read_end: int) -> None:
    """The closing thread: close every number handed over (4 bytes each; a pipe write of
    4 bytes is atomic, so reads hold whole numbers)."""
    while True:
        data = os.read(read_end, 4096)
        if not data:
            return
        for start in range(0, len(data) - 3, 4):
            try:
                os.close(int.from_bytes(data[start:start + 4], "little"))
            except OSError:
                pass
