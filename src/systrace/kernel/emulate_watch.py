"""Watches, marks and file attributes set by systrace on the file that was checked.

inotify_add_watch and fanotify_mark add a watch (a mark) to the tracee's own inotify
instance (fanotify group): systrace takes that open file with pidfd_getfd, the same
instance, and makes the call on the checked path's final name below its parent opened
without following symlinks (kernel/emulate_view.py), never following the name itself (the
canonical path already ends on what a followed symlink led to at the check). The mask and
flags are the tracee's, passed through: IN_MASK_ADD, IN_MASK_CREATE, IN_ONLYDIR,
FAN_MARK_MOUNT... mean what the kernel says. file_getattr/file_setattr (Linux 6.17) read
or write a struct file_attr, read from (or written into) the tracee once, with its usize.

Each runs as the tracee (its fsuid, groups, capabilities: the kernel checks read access
to the watched inode, and ownership for file_setattr), in emulate_path.PathCall."""

from __future__ import annotations

import ctypes
import errno

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .emulate_path import PathCall

SYS = {"inotify_add_watch": 254, "fanotify_mark": 301, "file_getattr": 468, "file_setattr": 469}
IN_DONT_FOLLOW = 0x02000000
FAN_MARK_DONT_FOLLOW = 0x04
AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000
FILE_ATTR_SIZE = 24  # FILE_ATTR_SIZE_VER0 = FILE_ATTR_SIZE_LATEST on 6.17-6.18
PAGE_SIZE = 4096
# the tracee's descriptor each call acts through (taken before the identity is applied:
# pidfd_getfd is systrace's own access to the tracee)
HELD_ARG = {"inotify_add_watch": 0, "fanotify_mark": 0}


def _probe(call: PathCall, *args: object) -> int | None:
    """The call itself on an empty path (the kernel refuses "" only at the lookup, after
    it checked the descriptor, the mask and the flags): its own error for those, in its
    order, before anything is looked up; the result of a call that looks nothing up
    (FAN_MARK_FLUSH); None when only the lookup failed, as it must."""
    try:
        return call.sys(call.name, *args)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise
    return None


def inotify_add_watch(call: PathCall) -> int:
    mask = call.args[2] & 0xFFFFFFFF
    _probe(call, call.held, b"", ctypes.c_uint32(mask))
    fd, name, by_name = call.where(0)
    if by_name:  # inotify has no directory argument: the parent's magic link, then the name
        path, mask = f"/proc/self/fd/{fd}/".encode() + name, mask | IN_DONT_FOLLOW
    else:
        path, mask = name or f"/proc/self/fd/{fd}".encode(), mask & ~IN_DONT_FOLLOW
    return call.sys("inotify_add_watch", call.held, path, ctypes.c_uint32(mask))


def fanotify_mark(call: PathCall) -> int:
    flags, mask = call.args[1] & 0xFFFFFFFF, ctypes.c_uint64(call.args[2])
    flushed = _probe(call, call.held, ctypes.c_uint32(flags), mask, AT_FDCWD, b"")
    if flushed is not None:
        return flushed
    fd, name, by_name = call.where(0)  # (path NULL, the descriptor form, is continued: a register)
    flags = flags | FAN_MARK_DONT_FOLLOW if by_name else flags & ~FAN_MARK_DONT_FOLLOW
    return call.sys("fanotify_mark", call.held, ctypes.c_uint32(flags), mask, fd, name)


def _attr_args(call: PathCall) -> tuple[int, int, int]:
    """(address, usize, at_flags), refused as the kernel does before any lookup."""
    usize, flags = call.args[3], call.args[4] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise OSError(errno.EINVAL, "unknown flags")
    if usize > PAGE_SIZE:
        raise OSError(errno.E2BIG, "struct file_attr too large")
    if usize < FILE_ATTR_SIZE:
        raise OSError(errno.EINVAL, "struct file_attr too small")
    return call.args[2], usize, flags


def _attr_place(call: PathCall) -> tuple[int, bytes, int]:
    fd, name, by_name = call.where(0)
    return (fd, name, AT_SYMLINK_NOFOLLOW) if by_name else (fd, name, 0 if name else AT_EMPTY_PATH)


def file_getattr(call: PathCall) -> int:
    address, usize, _ = _attr_args(call)
    fd, name, flags = _attr_place(call)
    buffer = ctypes.create_string_buffer(FILE_ATTR_SIZE)
    call.sys("file_getattr", fd, name, buffer, ctypes.c_size_t(FILE_ATTR_SIZE), flags)
    # copy_struct_to_user: a larger struct of the tracee's gets zeros past ours
    call.writes.append((address, buffer.raw + bytes(usize - FILE_ATTR_SIZE)))
    return 0


def file_setattr(call: PathCall) -> int:
    address, usize, _ = _attr_args(call)
    data = call.read(address, usize)  # read once: what is set is what was read
    if data is None:
        raise OSError(errno.EFAULT, "no struct file_attr")
    if any(data[FILE_ATTR_SIZE:]):  # copy_struct_from_user: unknown fields must be zero
        raise OSError(errno.E2BIG, "unknown struct file_attr fields")
    fd, name, flags = _attr_place(call)
    value = ctypes.create_string_buffer(data[:FILE_ATTR_SIZE], FILE_ATTR_SIZE)
    call.sys("file_setattr", fd, name, value, ctypes.c_size_t(FILE_ATTR_SIZE), flags)
    return 0
