"""Carrying out a path-decided call on what was checked (no check-then-use race).

The policy saw each path argument as a canonical path. The supervisor opens that path's
parent directory without following any symlink (kernel/emulate_view.py), then makes the
`*at` call itself on the final component, never following it: the canonical path of a
call that follows symlinks already ends on the file they led to at the check. A thread
that swaps the path string, a symlink or a directory after the check changes nothing
(at worst the call meets a symlink and acts on it, or fails). Results the call returns
in memory (struct stat, statx, the readlink buffer, xattr values and lists) are written
into the tracee; the caller checks the notification is still valid and answers with the
return value. Everything runs as the tracee (kernel/emulate_identity.py).

A path argument that is a descriptor (AT_EMPTY_PATH) acts on the tracee's own file
description, taken with pidfd_getfd and checked to still name the file the policy saw."""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from . import abi, closer, emulate_watch, id_maps, memory
from .emulate import PROBED_CALLS, still_at
from .emulate_identity import EmulationError, Identity
from .emulate_view import RootFd, open_directory, split
from .libc import RLIM_INFINITY, RLIMIT_FSIZE, libc, pidfd_getfd, prlimit, tgkill
from .plain_signal import signal
from .proc_names import FD_DIR
from .procfs import FdLink, Replaced, object_name, same_processes

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_EACCESS, AT_EMPTY_PATH = 0x100, 0x200, 0x200, 0x1000
AT_STATX_SYNC_TYPE, AT_NO_AUTOMOUNT, AT_SYMLINK_FOLLOW = 0x6000, 0x800, 0x400
AT_FDCWD, AT_HANDLE_MNT_ID_UNIQUE, AT_HANDLE_CONNECTABLE, AT_HANDLE_FID = -100, 0x1, 0x2, 0x200
# name -> (index of the flags argument, the flags the kernel accepts; others: EINVAL, as
# natively, before anything is done)
_AT = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH
VALID_FLAGS = {"newfstatat": (3, _AT | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE),
               "statx": (2, _AT | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE),
               "name_to_handle_at": (4, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE
                                     | AT_HANDLE_CONNECTABLE), "faccessat2": (3, _AT | AT_EACCESS),
               "unlinkat": (2, AT_REMOVEDIR), "utimensat": (3, _AT), "fchmodat2": (3, _AT), "fchownat": (4, _AT),
               "linkat": (4, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH), "getxattrat": (2, _AT), "setxattrat": (2, _AT),
               "listxattrat": (2, _AT), "removexattrat": (2, _AT)}
STAT_SIZE, STATX_SIZE, STATFS_SIZE = 144, 256, 120
MAX_HANDLE_SZ = 128
XATTR_SIZE_MAX, XATTR_NAME_MAX = 65536, 255
SYS = {"newfstatat": 262, "statx": 332, "faccessat2": 439, "readlinkat": 267, "unlinkat": 263, "mkdirat": 258,
       "mknodat": 259, "renameat2": 316, "linkat": 265, "symlinkat": 266, "fchmodat2": 452, "fchownat": 260,
       "utimensat": 280, "lgetxattr": 192, "lsetxattr": 189, "llistxattr": 195, "lremovexattr": 198,
       "getxattr": 191, "setxattr": 188, "listxattr": 194, "removexattr": 197, "fstatfs": 138,
       "name_to_handle_at": 303, **emulate_watch.SYS}
# the *xattrat calls (Linux 6.13): (dirfd, path, at_flags, name, ...); get/set take a
# struct xattr_args {u64 value; u32 size; u32 flags} and its size
XATTR_AT = {"getxattrat": 3, "setxattrat": 3, "listxattrat": 3, "removexattrat": 3}


# what the kernel answers a name call whose last component is "." or ".."
_DOT_ERRORS = {"unlink": errno.EISDIR, "unlinkat": errno.EISDIR, ("rmdir", b"."): errno.EINVAL,
               ("rmdir", b".."): errno.ENOTEMPTY, "rename": errno.EBUSY, "renameat": errno.EBUSY,
               "renameat2": errno.EBUSY}


def _call(name: str, *args: object) -> int:
    result = libc.syscall(SYS[name], *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


class PathCall:
    """One call being carried out: its raw arguments, the checked targets of its path
    arguments (in order) and the names the policy saw for them."""

    def __init__(self, name: str, tid: int, tgid: int, args: tuple[int, ...], targets: list[bytes | int | None],
                 checked: list[str], root: str | None, identity: Identity, tails: list[bytes] | None = None,
                 pins: dict[int, int | None] | None = None):
        self.name, self.tid, self.tgid, self.args = name, tid, tgid, args
        self.pins = pins or {}  # pids named by relation: they must still name the same processes
        self.tails = tails or []
        self.targets, self.checked, self.identity = targets, checked, identity
        self.root_name = root
        self.root: RootFd | None = None
        self._fds: list[int] = []
        self._taken: list[int] = []  # the tracee's own open files (pidfd_getfd): kernel/closer.py
        self.writes: list[tuple[int, bytes]] = []  # (address, data) to put into the tracee
        self.held = -1  # the tracee's descriptor the call acts through (emulate_watch.HELD_ARG)
        self._applied: bool | None = None  # while the identity is applied: `creating`
        # symlink's target as the check read it (a rule may decide on it: never read again)
        self.checked_target: bytes | None = None
        # systrace's O_PATH descriptor of the first target, opened by translation with no
        # symlink on the way (translate/path_cache.py; the caller closes it), or -1: see
        # use_probe
        self.probe = -1

    def use_probe(self, probe: int) -> None:
        """A stat, readlink or access of one plain path, made on the file translation opened it as
        (`probe`; a readlink of it fails EINVAL: it is no symlink) when nothing of the
        tracee's differs from systrace's there: its identity (the
        lookup as systrace is the lookup as the tracee: the same search permissions), its
        root ("/"), no Landlock domain of its own, no pids named by relation, and while
        the file is still at the checked path (checked as it is used, `place`): no second
        lookup by name, no directory to open and check."""
        identity = self.identity
        if probe >= 0 and self.name in PROBED_CALLS and self.root_name in (None, "/") and identity.domain is None \
                and not self.pins and self.tails == [b""] and len(self.targets) == 1 \
                and isinstance(self.targets[0], bytes) and identity.same_as_own():
            self.probe = probe

    # -- what the handlers use --------------------------------------------------------
    def place(self, index: int) -> tuple[int, bytes]:
        """(directory fd, final name) for path argument `index`, or (the tracee's
        descriptor, b"") for a descriptor argument; the fd is closed afterwards."""
        target = self.targets[index]
        if target is None:
            raise OSError(errno.ENOENT, "no such file")  # the check could not resolve it
        if isinstance(target, int):
            return self._descriptor(target, self.checked[index]), b""
        if isinstance(target, FdLink):
            return self._through(target), b""
        if index == 0 and self.probe >= 0 and still_at(self.probe, target):  # (renamed since: by name)
            return self.probe, b""
        assert self.root is not None
        parent, name = split(target)
        tail = self.tails[index] if index < len(self.tails) else b""
        if tail in (b".", b".."):  # "dir/." names no entry to make or remove
            call = "rmdir" if self.name == "unlinkat" and self.args[2] & AT_REMOVEDIR else self.name
            raise OSError(_DOT_ERRORS.get((call, tail), _DOT_ERRORS.get(call, errno.EEXIST)), "not a name")
        fd = open_directory(self.root, parent)
        self._fds.append(fd)
        if parent.endswith(b"/fd") and parent.startswith(b"/proc/"):
            _same_entry(fd, name, self.checked[index])
        if tail == b"/":  # the kernel checks the slash itself, following nothing
            name += b"/"
        elif tail == b"dir" and not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")  # a lookup with a trailing slash
        return fd, name

    def where(self, index: int) -> tuple[int, bytes, bool]:
        """(directory fd, name, by name) for a call that takes a directory and a name, on
        path argument `index`: the checked parent and final name (never to be followed);
        for another process's descriptor reached through /proc (an O_PATH descriptor
        here), its /proc/self/fd magic link (to be followed: it leads to exactly that file,
        whatever the call does with an O_PATH descriptor); for the tracee's own descriptor
        (the descriptor form), (its copy, b"", False)."""
        fd, name = self.place(index)
        if name:
            return fd, name, True
        if isinstance(self.targets[index], int):
            return fd, b"", False
        return AT_FDCWD, f"/proc/self/fd/{fd}".encode(), False

    def string(self, address: int, limit: int = 4096) -> bytes:
        return self._as_systrace(lambda: memory.read_cstring(self.tid, address, limit))

    def read(self, address: int, size: int) -> bytes | None:
        return None if address == 0 else self._as_systrace(lambda: memory.read(self.tid, address, size))

    def _as_systrace(self, operation: Callable[[], T]) -> T:
        """operation() with systrace's own credentials while the tracee's are applied: its
        access to the tracee (memory, descriptors: the kernel's ptrace check) is systrace's;
        as another user the tracee's identity has no access to its own process here."""
        if self._applied is None or self.identity.same_as_own():
            return operation()
        self.identity.undo()
        try:
            return operation()
        finally:
            self.identity.apply(self._applied)

    def inside(self, operation: Callable[[], T]) -> T:
        """operation() (the access the call makes) in the copy of the tracee's own Landlock
        domain when it has one, as the tracee; else here (the identity is applied already).
        Everything else (the lookups, the tracee's memory) stays in this thread: a domain
        cannot reach the tracee."""
        if self.identity.domain is None:
            return operation()
        return self.identity.run(operation, HANDLERS[self.name][1])

    def sys(self, name: str, *args: object) -> int:
        """The system call `name`, as `inside` says."""
        if self.identity.domain is None:
            return _call(name, *args)
        return self.inside(lambda: _call(name, *args))

    def _descriptor(self, number: int, checked: str) -> int:
        pidfd = os.pidfd_open(self.tgid)
        try:
            fd = self._as_systrace(lambda: pidfd_getfd(pidfd, number))
        except OSError as error:
            raise OSError(errno.EBADF if error.errno == errno.EBADF else error.errno, "bad descriptor") from None
        finally:
            os.close(pidfd)
        self._taken.append(fd)
        link = os.readlink(f"/proc/self/fd/{fd}")
        if checked and link != checked and object_name(link) != checked:  # replaced (dup2) since the check
            raise EmulationError(errno.EACCES, f"descriptor {number} no longer names {checked}")
        return fd

    def _held(self, number: int) -> int:
        """The tracee's descriptor `number` (the same open file: its inotify instance, its
        fanotify group), taken as systrace; -1 when it has none (the call made with -1 then
        fails as the tracee's would: EBADF, after the checks the kernel makes first)."""
        if number < 0:
            return -1
        pidfd = os.pidfd_open(self.tgid)
        try:
            fd = pidfd_getfd(pidfd, number)
        except OSError as error:
            if error.errno == errno.EBADF:
                return -1
            raise EmulationError(errno.EACCES, f"cannot take descriptor {number}: {error}") from None
        finally:
            os.close(pidfd)
        self._taken.append(fd)
        return fd

    def _through(self, entry: FdLink) -> int:
        """Another process's descriptor, reached through its /proc/PID/fd/N as the tracee
        (the kernel checks the tracee's ptrace access), O_PATH: the call acts on it."""
        if self.root_name not in (None, "/"):
            raise EmulationError(errno.EACCES, "another process's descriptor below a changed root")
        try:
            fd = entry.follow_as(self.inside, os.O_PATH)
        except Replaced as replaced:
            raise EmulationError(errno.EACCES, str(replaced)) from None
        self._fds.append(fd)
        return fd

    # -- running -----------------------------------------------------------------------
    def run(self) -> int:
        """The call's return value; OSError is the error the tracee gets."""
        handler, creating, access_identity = HANDLERS[self.name]
        if self.name in VALID_FLAGS:
            index, valid = VALID_FLAGS[self.name]
            if self.args[index] & 0xFFFFFFFF & ~valid:
                raise OSError(errno.EINVAL, "unknown flags")
        identity = self.identity
        self.root = RootFd(self.tid, self.root_name)  # as systrace: /proc/TID/root
        try:
            if self.name in emulate_watch.HELD_ARG:
                self.held = self._held(abi.s32(self.args[emulate_watch.HELD_ARG[self.name]]))
            identity.apply(creating)
            self._applied = creating
            try:
                result = handler(self)
            finally:
                self._applied = None
                identity.undo()
            if self.pins and not same_processes(self.pins):  # its results would be another's
                raise OSError(errno.ENOENT, "the process exited while it was checked")
            return result
        finally:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            for fd in self._taken:
                closer.close_taken(fd)
            self._taken.clear()
            self.root.close()

    def flush(self) -> None:
        """Write the results into the tracee (as systrace, after the identity is undone)."""
        for address, data in self.writes:
            memory.write(self.tid, address, data)


def _same_entry(directory: int, name: bytes, checked: str) -> None:
    """A descriptor's /proc entry itself (lstat, readlink...) was checked by what it
    names (`/proc/self/fd/<pipe:>`): it must still name that, else EACCES (a dup2 onto
    the number since the check). A procfs file is named by relation, here by number."""
    start = checked.find("/fd/<")
    if start < 0 or not checked.endswith(">"):
        return
    expected = checked[start + 5:-1]
    try:
        link = os.fsdecode(os.readlink(name, dir_fd=directory))
    except OSError:  # gone, or not ours to read: the call itself fails with the native errno
        return
    if link != expected and object_name(link) != expected and not (link.startswith("/proc/")
                                                                    and expected.startswith("/proc/")):
        raise EmulationError(errno.EACCES, f"descriptor {name!r} no longer names {expected}")


def _nofollow(fd: int, name: bytes) -> tuple[int, bytes, int]:
    """(fd, name, flags) of an *at call on a place: AT_EMPTY_PATH for a descriptor."""
    return (fd, name, AT_SYMLINK_NOFOLLOW) if name else (fd, b"", AT_EMPTY_PATH)


# -- the stat family -------------------------------------------------------------------
# (one call at a time: the supervisor's thread, or the Landlock thread it waits for)
_STAT_BUFFER = ctypes.create_string_buffer(STAT_SIZE)


def _stat(call: PathCall, index: int, buf_arg: int) -> int:
    fd, name, flags = _nofollow(*call.place(index))
    if call.name == "newfstatat":
        flags |= call.args[3] & (AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)
    call.sys("newfstatat", fd, name, _STAT_BUFFER, flags)
    call.writes.append((call.args[buf_arg], id_maps.stat_seen_by(call.tid, id_maps.NEWFSTATAT, _STAT_BUFFER.raw)))
    return 0


def _statx(call: PathCall) -> int:
    fd, name, flags = _nofollow(*call.place(0))
    buffer = ctypes.create_string_buffer(STATX_SIZE)
    call.sys("statx", fd, name, flags | (call.args[2] & (AT_STATX_SYNC_TYPE | AT_NO_AUTOMOUNT)), ctypes.c_uint(call.args[3] & 0xFFFFFFFF),
          buffer)
    call.writes.append((call.args[4], id_maps.stat_seen_by(call.tid, id_maps.STATX, buffer.raw)))
    return 0


def _access(call: PathCall, mode_arg: int) -> int:
    fd, name, flags = _nofollow(*call.place(0))
    call.sys("faccessat2", fd, name, call.args[mode_arg] & 0xFFFFFFFF, flags | AT_EACCESS)
    return 0


def _readlink(call: PathCall, buf_arg: int) -> int:
    size = ctypes.c_int(call.args[buf_arg + 1] & 0xFFFFFFFF).value
    if size <= 0:
        raise OSError(errno.EINVAL, "bad size")
    fd, name = call.place(0)
    if fd == call.probe:  # (still at the checked path) opened with no symlink on the way, the last either
        raise OSError(errno.EINVAL, "not a symbolic link")
    buffer = ctypes.create_string_buffer(min(size, 65536))
    got = call.sys("readlinkat", fd, name, buffer, len(buffer))
    call.writes.append((call.args[buf_arg], buffer.raw[:got]))
    return got


def _statfs(call: PathCall) -> int:
    """statfs of the checked file: fstatfs of an O_PATH descriptor of its final name."""
    fd, name = call.place(0)
    opened = call.inside(lambda: os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)) if name else fd
    try:
        buffer = ctypes.create_string_buffer(STATFS_SIZE)
        call.sys("fstatfs", opened, buffer)
    finally:
        if opened != fd:
            os.close(opened)
    call.writes.append((call.args[1], buffer.raw))
    return 0


def _name_to_handle(call: PathCall) -> int:
    """name_to_handle_at: the handle and mount id of the checked file, written as the
    kernel writes them (the struct's header and mount id on EOVERFLOW too)."""
    flags = call.args[4] & 0xFFFFFFFF
    if flags & AT_HANDLE_CONNECTABLE and flags & (AT_HANDLE_FID | AT_EMPTY_PATH):
        raise OSError(errno.EINVAL, "conflicting flags")
    fd, name, by_name = call.where(0)
    flags &= ~AT_SYMLINK_FOLLOW  # the canonical path followed what the call would
    if not by_name:
        flags |= AT_EMPTY_PATH if not name else AT_SYMLINK_FOLLOW  # the descriptor, or the magic link
    header = call.read(call.args[2], 8) or b""  # (the kernel reads it after the lookup)
    handle = ctypes.create_string_buffer(header + bytes(MAX_HANDLE_SZ), 8 + MAX_HANDLE_SZ)
    mount_id = ctypes.create_string_buffer(8)
    try:
        call.sys("name_to_handle_at", fd, name, handle, mount_id, flags)
        result = 0
    except OSError as error:
        if error.errno != errno.EOVERFLOW:
            raise
        result = -errno.EOVERFLOW  # answered as the value: the tracee's registers hold -EOVERFLOW either way
    size = int.from_bytes(handle.raw[:4], "little") if result == 0 else 0
    call.writes.append((call.args[3], mount_id.raw[:8 if flags & AT_HANDLE_MNT_ID_UNIQUE else 4]))
    call.writes.append((call.args[2], handle.raw[:8 + size]))
    return result


# -- names -----------------------------------------------------------------------------
def _unlink(call: PathCall, flags: int) -> int:
    fd, name = call.place(0)
    target = call.targets[0]
    if isinstance(target, bytes) and _OWN_FD_DIR.match(split(target)[0]) and split(target)[0].split(b"/")[2] == str(call.tgid).encode():
        # the caller's own fd directory: the kernel lets only the caller past its
        # permission check (then EPERM: procfs removes nothing), systrace would get EACCES
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise OSError(errno.ENOENT, "no such descriptor") from None
        raise OSError(errno.ENOTDIR if flags & AT_REMOVEDIR else errno.EPERM, "not removable")
    call.sys("unlinkat", fd, name, flags & AT_REMOVEDIR)
    return 0


_OWN_FD_DIR = FD_DIR  # ^/proc/[0-9]+/(?:task/[0-9]+/)?fd$, without re (start-up)


def _mkdir(call: PathCall, mode_arg: int) -> int:
    fd, name = call.place(0)
    call.sys("mkdirat", fd, name, call.args[mode_arg] & 0o7777)
    return 0


def _mknod(call: PathCall, mode_arg: int) -> int:
    fd, name = call.place(0)
    call.sys("mknodat", fd, name, call.args[mode_arg] & 0xFFFFFFFF, ctypes.c_uint(call.args[mode_arg + 1] & 0xFFFFFFFF))
    return 0


def _rename(call: PathCall, flags: int) -> int:
    old_fd, old_name = call.place(0)
    new_fd, new_name = call.place(1)
    call.sys("renameat2", old_fd, old_name, new_fd, new_name, flags & 0xFFFFFFFF)
    return 0


def _link(call: PathCall, flags: int) -> int:
    old_fd, old_name = call.place(0)  # AT_SYMLINK_FOLLOW: already followed by the check
    new_fd, new_name = call.place(1)
    call.sys("linkat", old_fd, old_name, new_fd, new_name, 0 if old_name else AT_EMPTY_PATH)
    return 0


def _symlink(call: PathCall, target_arg: int) -> int:
    # the link's content as the check read it (read here only when it was not translated)
    target = call.checked_target if call.checked_target is not None else call.string(call.args[target_arg])
    fd, name = call.place(0)
    call.sys("symlinkat", target, fd, name)
    return 0


# -- attributes ------------------------------------------------------------------------
def _chmod(call: PathCall, mode_arg: int) -> int:
    fd, name, flags = _nofollow(*call.place(0))
    call.sys("fchmodat2", fd, name, call.args[mode_arg] & 0o7777, flags)
    return 0


def _chown(call: PathCall) -> int:
    fd, name, flags = _nofollow(*call.place(0))
    first = 0 if call.name in ("chown", "lchown") else 1
    uid, gid = (call.args[first + i] & 0xFFFFFFFF for i in (1, 2))
    maps = id_maps.maps_of(call.tid)
    if maps is not None:  # the ids are the tracee's namespace's (kernel/id_maps.py)
        mapped = id_maps.owner_outside(maps, uid, gid)
        if mapped is None:
            raise OSError(errno.EINVAL, "an id its user namespace does not map")
        uid, gid = mapped
    call.sys("fchownat", fd, name, ctypes.c_uint(uid), ctypes.c_uint(gid), flags)
    return 0


def _truncate(call: PathCall) -> int:
    length = ctypes.c_long(call.args[1]).value
    if length < 0:
        raise OSError(errno.EINVAL, "negative length")
    fd, name = call.place(0)
    before = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if stat.S_ISDIR(before.st_mode):
        raise OSError(errno.EISDIR, "is a directory")
    if not stat.S_ISREG(before.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")  # a swapped-in symlink included
    opened = call.inside(lambda: os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                                         dir_fd=fd))
    try:
        now = os.fstat(opened)
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            raise OSError(errno.EINVAL, "replaced during the call")
        if length > now.st_size:
            _within_file_size_limit(call, length)
        os.ftruncate(opened, length)
    finally:
        os.close(opened)
    return 0


def _within_file_size_limit(call: PathCall, length: int) -> None:
    """Growing a file is bounded by the tracee's RLIMIT_FSIZE, not systrace's: past it
    the kernel sends the calling thread SIGXFSZ and fails with EFBIG."""
    try:
        limit = prlimit(call.tgid, RLIMIT_FSIZE)[0]
    except OSError as error:
        raise EmulationError(errno.EACCES, f"cannot read the tracee's file size limit: {error}") from None
    if limit != RLIM_INFINITY and length > limit:
        try:
            tgkill(call.tgid, call.tid, signal.SIGXFSZ)
        except OSError:
            pass  # the thread is gone: nobody to tell
        raise OSError(errno.EFBIG, "beyond the tracee's RLIMIT_FSIZE")


UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _times(call: PathCall, address: int, kind: str) -> ctypes.Array | None:
    """The struct timespec[2] utimensat takes, from utime's utimbuf, utimes' timeval[2]
    or utimensat's own timespec[2] (read once from the tracee)."""
    if address == 0:
        return None
    if kind == "utimbuf":
        data = call.read(address, 16) or bytes(16)  # not None: the address is not 0
        seconds = [int.from_bytes(data[i:i + 8], "little", signed=True) for i in (0, 8)]
        pairs = [(s, 0) for s in seconds]
    else:
        data = call.read(address, 32) or b""
        words = [int.from_bytes(data[i:i + 8], "little", signed=True) for i in range(0, 32, 8)]
        pairs = [(words[0], words[1]), (words[2], words[3])]
        if kind == "timeval":
            if any(not 0 <= usec < 1_000_000 for _, usec in pairs):
                raise OSError(errno.EINVAL, "bad microseconds")
            pairs = [(sec, usec * 1000) for sec, usec in pairs]
    return (ctypes.c_long * 4)(pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1])


def _utime(call: PathCall, times_arg: int, kind: str) -> int:
    times = _times(call, call.args[times_arg], kind)
    fd, name, flags = _nofollow(*call.place(0))
    if call.name == "utimensat":
        flags |= call.args[3] & AT_SYMLINK_NOFOLLOW
    call.sys("utimensat", fd, name, times, flags)
    return 0


# -- extended attributes (through /proc/self/fd/DIR/NAME: the l* calls follow no final link)
def _xattr_path(call: PathCall, function: str) -> tuple[str, bytes]:
    """(the l* call on DIR/NAME; or, for a descriptor, the following call on its magic
    link, which leads to exactly that file, path)."""
    fd, name = call.place(0)
    if name:
        return function, f"/proc/self/fd/{fd}/".encode() + name
    return function[1:], f"/proc/self/fd/{fd}".encode()


def _xattr_name(call: PathCall) -> bytes:
    try:
        name = call.string(call.args[XATTR_AT.get(call.name, 1)], XATTR_NAME_MAX + 1)
    except OSError as error:
        raise OSError(errno.ERANGE if error.errno == errno.ENAMETOOLONG else errno.EFAULT, "bad name") from None
    if not name or len(name) > XATTR_NAME_MAX:
        raise OSError(errno.ERANGE, "bad name")
    return name


def _value_args(call: PathCall) -> tuple[int, int, int]:
    """(value address, size, flags) of a get/set xattr call, from the registers or, for
    the *xattrat forms, from their struct xattr_args (read once)."""
    if call.name in XATTR_AT:
        if call.args[5] < 16:
            raise OSError(errno.EINVAL, "short xattr_args")
        data = call.read(call.args[4], 16) or b""
        if len(data) < 16:
            raise OSError(errno.EFAULT, "no xattr_args")
        return (int.from_bytes(data[:8], "little"), int.from_bytes(data[8:12], "little"),
                int.from_bytes(data[12:16], "little"))
    flags = call.args[4] & 0xFFFFFFFF if call.name in ("setxattr", "lsetxattr") else 0
    return call.args[2], call.args[3], flags


def _getxattr(call: PathCall) -> int:
    name = _xattr_name(call)
    address, size, _ = _value_args(call)
    size = min(size, XATTR_SIZE_MAX)
    buffer = ctypes.create_string_buffer(max(size, 1))
    got = call.sys(*_xattr_path(call, "lgetxattr"), name, buffer if size else None, ctypes.c_size_t(size))
    if size:
        value = buffer.raw[:got]
        maps = id_maps.maps_of(call.tid) if name in id_maps.ACL_NAMES else None
        call.writes.append((address, value if maps is None else id_maps.acl_inside(maps, value)))
    return got


def _setxattr(call: PathCall) -> int:
    name = _xattr_name(call)
    address, size, flags = _value_args(call)
    if size > XATTR_SIZE_MAX:
        raise OSError(errno.E2BIG, "value too large")
    value = call.read(address, size) if size else b""
    if value and name in id_maps.ACL_NAMES:  # the ACL's ids are the tracee's namespace's (kernel/id_maps.py)
        maps = id_maps.maps_of(call.tid)
        mapped = value if maps is None else id_maps.acl_outside(maps, value)
        if mapped is None:
            raise OSError(errno.EINVAL, "an id its user namespace does not map")
        value = mapped
    call.sys(*_xattr_path(call, "lsetxattr"), name, value, ctypes.c_size_t(size), flags)
    return 0


def _listxattr(call: PathCall) -> int:
    at = call.name in XATTR_AT
    address, size = (call.args[3], call.args[4]) if at else (call.args[1], call.args[2])
    size = min(size, XATTR_SIZE_MAX)
    buffer = ctypes.create_string_buffer(max(size, 1))
    got = call.sys(*_xattr_path(call, "llistxattr"), buffer if size else None, ctypes.c_size_t(size))
    if size:
        call.writes.append((address, buffer.raw[:got]))
    return got


def _removexattr(call: PathCall) -> int:
    name = _xattr_name(call)
    call.sys(*_xattr_path(call, "lremovexattr"), name)
    return 0


# name -> (handler, may create a file (the umask applies), checked with access(2)'s ids)
HANDLERS = {
    "stat": (lambda c: _stat(c, 0, 1), False, False),
    "lstat": (lambda c: _stat(c, 0, 1), False, False),
    "newfstatat": (lambda c: _stat(c, 0, 2), False, False),
    "statx": (_statx, False, False),
    "access": (lambda c: _access(c, 1), False, True),
    "faccessat": (lambda c: _access(c, 2), False, True),
    "faccessat2": (lambda c: _access(c, 2), False, True),  # AT_EACCESS: see identity_for
    "readlink": (lambda c: _readlink(c, 1), False, False),
    "readlinkat": (lambda c: _readlink(c, 2), False, False),
    "unlink": (lambda c: _unlink(c, 0), False, False),
    "unlinkat": (lambda c: _unlink(c, c.args[2]), False, False),
    "rmdir": (lambda c: _unlink(c, AT_REMOVEDIR), False, False),
    "mkdir": (lambda c: _mkdir(c, 1), True, False),
    "mkdirat": (lambda c: _mkdir(c, 2), True, False),
    "mknod": (lambda c: _mknod(c, 1), True, False),
    "mknodat": (lambda c: _mknod(c, 2), True, False),
    "rename": (lambda c: _rename(c, 0), False, False),
    "renameat": (lambda c: _rename(c, 0), False, False),
    "renameat2": (lambda c: _rename(c, c.args[4]), False, False),
    "link": (lambda c: _link(c, 0), False, False),
    "linkat": (lambda c: _link(c, c.args[4]), False, False),
    "symlink": (lambda c: _symlink(c, 0), False, False),
    "symlinkat": (lambda c: _symlink(c, 0), False, False),
    "chmod": (lambda c: _chmod(c, 1), False, False),
    "fchmodat": (lambda c: _chmod(c, 2), False, False),
    "fchmodat2": (lambda c: _chmod(c, 2), False, False),
    "chown": (_chown, False, False),
    "lchown": (_chown, False, False),
    "fchownat": (_chown, False, False),
    "truncate": (_truncate, False, False),
    "utime": (lambda c: _utime(c, 1, "utimbuf"), False, False),
    "utimes": (lambda c: _utime(c, 1, "timeval"), False, False),
    "futimesat": (lambda c: _utime(c, 2, "timeval"), False, False),
    "utimensat": (lambda c: _utime(c, 2, "timespec"), False, False),
    "getxattr": (_getxattr, False, False),
    "lgetxattr": (_getxattr, False, False),
    "setxattr": (_setxattr, False, False),
    "lsetxattr": (_setxattr, False, False),
    "listxattr": (_listxattr, False, False),
    "llistxattr": (_listxattr, False, False),
    "removexattr": (_removexattr, False, False),
    "lremovexattr": (_removexattr, False, False),
    "getxattrat": (_getxattr, False, False),
    "setxattrat": (_setxattr, False, False),
    "listxattrat": (_listxattr, False, False),
    "removexattrat": (_removexattr, False, False),
    "statfs": (_statfs, False, False),
    "name_to_handle_at": (_name_to_handle, False, False),
    "inotify_add_watch": (emulate_watch.inotify_add_watch, False, False),
    "fanotify_mark": (emulate_watch.fanotify_mark, False, False),
    "file_getattr": (emulate_watch.file_getattr, False, False),
    "file_setattr": (emulate_watch.file_setattr, False, False),
}
EMULATED = frozenset(HANDLERS)


def creates(name: str) -> bool:
    """May the call create a file (so the tracee's umask applies)?"""
    return HANDLERS[name][1]


def uses_access_identity(name: str, args: tuple[int, ...]) -> bool:
    """access(2) checks with the real ids, unless faccessat2 says AT_EACCESS."""
    if name == "faccessat2" and args[3] & AT_EACCESS:
        return False
    return HANDLERS[name][2]
