"""open_by_handle_at made by systrace with the handle that was checked.

The policy saw the handle read from the tracee's memory (`TYPE:HEX`); the kernel would
read it again once the call is continued, so a second thread could swap in the handle of
another file. systrace opens with the handle as checked, on the tracee's mount descriptor
(taken with pidfd_getfd; its cwd for AT_FDCWD), as the tracee (the kernel checks its
CAP_DAC_READ_SEARCH and the file's permissions), and the caller installs the descriptor.

What could make systrace wait is refused (EACCES): a mount descriptor on a FUSE file
system (decoding a handle there asks the server), and anything but a regular file or a
directory (a FIFO's open waits for its other end). Regular files are opened O_NONBLOCK
(a lease would hold the open), the flag cleared after unless the tracee asked for it."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat

from . import closer
from .closer import served as served_file  # (a stat from the cache, never the server's)
from .emulate_identity import EmulationError, Identity
from .libc import libc, pidfd_getfd

SYS_open_by_handle_at, AT_EMPTY_PATH = 304, 0x1000
_ON_FUSE = "open_by_handle_at on a FUSE file system: its server could hold systrace"


def parse_handle(text: str) -> tuple[int, bytes] | None:
    """(type, bytes) of a handle as translated (`TYPE:HEX`), None when it was not read."""
    kind, _, data = text.partition(":")
    try:
        return int(kind), bytes.fromhex(data)
    except ValueError:
        return None


def _mount_descriptor(tid: int, tgid: int, number: int) -> int:
    """Our copy of the tracee's descriptor `number` (an O_PATH one fails with EBADF, as
    natively); for AT_FDCWD its cwd, opened (not O_PATH, for that reason)."""
    if number == -100:
        cwd = os.open(f"/proc/{tid}/cwd", os.O_PATH | os.O_CLOEXEC)
        try:
            if _served(cwd):  # (its open would ask the server)
                raise EmulationError(errno.EACCES, _ON_FUSE)
            return os.open(f"/proc/self/fd/{cwd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise EmulationError(errno.EACCES, f"cannot open the tracee's working directory: {error}") from None
        finally:
            os.close(cwd)
    pidfd = os.pidfd_open(tgid)
    try:
        return pidfd_getfd(pidfd, number)
    except OSError as error:
        if error.errno == errno.EBADF:
            raise  # the tracee's own error
        raise EmulationError(errno.EACCES, f"cannot take descriptor {number}: {error}") from None
    finally:
        os.close(pidfd)


def _served(fd: int) -> bool:
    """Is the descriptor's file on a file system a process serves (asked from the cache)?"""
    return served_file(fd, b"", AT_EMPTY_PATH)


# a write open by handle of a cgroup or proc file could freeze, kill or move systrace, or
# write its /proc entry: a handle names no path the cgroup and /proc guards could check
_MAY_WRITE = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND
_KERNEL_FILE = "a write open by handle of a cgroup or /proc file (it could reach systrace), whatever the policy says"
_CGROUP_SUPER_MAGIC, _CGROUP2_SUPER_MAGIC, _PROC_SUPER_MAGIC = 0x27E0EB, 0x63677270, 0x9FA0
_STATFS = ctypes.create_string_buffer(120)


def _file_system(fd: int) -> int:
    """The file system type of `fd`'s file (-1: fstatfs failed, counted as a kernel one)."""
    if libc.fstatfs(fd, _STATFS) < 0:
        return -1
    return int.from_bytes(_STATFS.raw[:8], "little")


def _kernel_file_system(kind: int) -> bool:
    return kind in (-1, _CGROUP_SUPER_MAGIC, _CGROUP2_SUPER_MAGIC, _PROC_SUPER_MAGIC)


def _by_handle(mount: int, kind: int, data: bytes, flags: int) -> int:
    handle = ctypes.create_string_buffer(len(data).to_bytes(4, "little") + kind.to_bytes(4, "little", signed=True) + data,
                                         8 + max(len(data), 1))
    fd = libc.syscall(SYS_open_by_handle_at, mount, handle, ctypes.c_int(flags))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


def open_by_handle(tid: int, tgid: int, args: tuple[int, ...], handle: tuple[int, bytes], identity: Identity) -> int:
    """Our descriptor of the file; OSError is the tracee's own error, EmulationError a refusal."""
    kind, data = handle  # (at most MAX_HANDLE_SZ: a larger one is not read; 0: the kernel's EINVAL)
    flags = args[2] & 0xFFFFFFFF
    if flags & os.O_PATH:
        raise EmulationError(errno.EACCES, "open_by_handle_at with O_PATH: an O_PATH descriptor cannot be passed (ADDFD)")
    mount = _mount_descriptor(tid, tgid, ctypes.c_int(args[0] & 0xFFFFFFFF).value)
    try:
        if _served(mount):
            raise EmulationError(errno.EACCES, _ON_FUSE)
        probe = identity.run(lambda: _by_handle(mount, kind, data, os.O_PATH | os.O_CLOEXEC))
        try:
            mode, probe_kind = os.fstat(probe).st_mode, _file_system(probe)
        finally:
            os.close(probe)
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise EmulationError(errno.EACCES, "open_by_handle_at of a FIFO, device or socket: its open could wait")
        if flags & _MAY_WRITE and _kernel_file_system(probe_kind):
            raise EmulationError(errno.EACCES, _KERNEL_FILE)
        opened = identity.run(lambda: _by_handle(mount, kind, data, flags | os.O_NONBLOCK | os.O_CLOEXEC))
    finally:
        closer.close_taken(mount)  # (the tracee's descriptor, or its cwd: its last close may wait)
    if not flags & os.O_NONBLOCK:
        fcntl.fcntl(opened, fcntl.F_SETFL, fcntl.fcntl(opened, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return opened
