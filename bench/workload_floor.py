#!/usr/bin/env python3
"""The Python floor of a whole workload: bench/workload_floor.c's supervisor, call for call,
in bare Python (standard library only, no logic at all: no process table, no translation,
no policy, no record), under systrace's own filter for the command.

    python3 -S bench/workload_floor.py FILTER_FILE /PROGRAM [ARGS...]

FILTER_FILE is the BPF program `systrace -a` installs for this command and policy
directory (dumped by bench/workload_floors.py), so exactly the calls systrace gets are
routed here. Each is carried out the way systrace must, with the system calls of
workload_floor.c's comment (an emulated open: the path read, the root, ID_VALID, the open,
the check of what was opened, ADDFD answering; an fstat of a descriptor: pidfd_getfd, the
stat, the result written back; a path call: made here and written back; anything else
continued). It is a lower bound for any supervisor of this design written in Python: the
interpreter's start-up (`-S`, importing only what it needs) and its cost per call, on the
workload itself, with its own cache and scheduling effects. What systrace spends beyond
it is systrace's own work. At exit it prints to stderr
"workload floor: N routed (open A, fstat B, path C, continue D)" and exits with the
program's status. Timing is never asserted by tests: bench/bench.py and
bench/workload_floors.py run it beside systrace and the C floor.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import sys
from _signal import pidfd_send_signal  # (not signal: it imports enum, functools, collections)

from continue_floor import CONTINUE, IOCTL_NOTIF_SEND, RESP, launch_program, received

SYS_OPEN, SYS_STAT, SYS_LSTAT, SYS_ACCESS, SYS_READLINK = 2, 4, 6, 21, 89
SYS_OPENAT, SYS_NEWFSTATAT, SYS_READLINKAT, SYS_FACCESSAT = 257, 262, 267, 269
SYS_STATX, SYS_PIDFD_GETFD, SYS_FACCESSAT2 = 332, 438, 439
ONE_PATH = {SYS_OPEN, SYS_STAT, SYS_LSTAT, SYS_ACCESS, SYS_READLINK}  # the path is the first argument
AT_PATH = {SYS_OPENAT, SYS_NEWFSTATAT, SYS_STATX, SYS_FACCESSAT, SYS_FACCESSAT2, SYS_READLINKAT}  # (dirfd, path)
IOCTL_NOTIF_ID_VALID, IOCTL_NOTIF_ADDFD = 0x40082102, 0x40182103
ADDFD = struct.Struct("=QIIII")
ADDFD_FLAG_SEND = 1 << 1
AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000
SYNC_FLAGS = 0x6000  # AT_STATX_SYNC_TYPE
STAT_SIZE, STATX_SIZE, PATH_MAX = 144, 256, 4096


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Floor:
    """The listener's calls served one by one, counted by how they were carried out."""

    def __init__(self, listener: int):
        self.listener = listener
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.pidfds: dict[int, int] = {}
        self.counts = {"open": 0, "fstat": 0, "path": 0, "continue": 0}
        self.response, self.notif_id, self.addfd = bytearray(RESP.size), bytearray(8), bytearray(ADDFD.size)
        self.page = ctypes.create_string_buffer(PATH_MAX + 1)
        self.result = ctypes.create_string_buffer(STATX_SIZE)
        self.local, self.remote = IoVec(ctypes.addressof(self.page), 0), IoVec(0, 0)

    def answer(self, ident: int, value: int = 0, error: int = 0, flags: int = 0) -> None:
        RESP.pack_into(self.response, 0, ident, value, error, flags)
        try:
            fcntl.ioctl(self.listener, IOCTL_NOTIF_SEND, self.response, False)
        except OSError:
            pass  # the call went away

    def valid(self, ident: int) -> bool:
        self.notif_id[:] = ident.to_bytes(8, "little")
        try:
            fcntl.ioctl(self.listener, IOCTL_NOTIF_ID_VALID, self.notif_id, False)
        except OSError:
            return False
        return True

    def pidfd_of(self, pid: int) -> int:
        """The process's pidfd, with the liveness check (a dead one's is replaced)."""
        fd = self.pidfds.get(pid)
        if fd is not None:
            try:
                pidfd_send_signal(fd, 0)
                return fd
            except OSError:
                os.close(fd)
                del self.pidfds[pid]
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return -1  # a thread other than the leader
        self.pidfds[pid] = fd
        return fd

    def read_path(self, pid: int, address: int) -> bytes | None:
        self.local.len = self.remote.len = 4096 - address % 4096
        self.remote.base = address
        got = self.libc.process_vm_readv(pid, ctypes.byref(self.local), 1, ctypes.byref(self.remote), 1, 0)
        if got <= 0 or b"\0" not in self.page.raw[:got]:  # (a path across a page boundary: a second read)
            self.local.len = self.remote.len = PATH_MAX
            got = self.libc.process_vm_readv(pid, ctypes.byref(self.local), 1, ctypes.byref(self.remote), 1, 0)
            if got <= 0 or b"\0" not in self.page.raw[:got]:
                return None
        return self.page.value

    def write_back(self, pid: int, address: int, data: ctypes.Array[ctypes.c_char] | bytes, size: int, ident: int,
                   value: int) -> None:
        source = data if isinstance(data, ctypes.Array) else ctypes.create_string_buffer(data, size)
        out, theirs = IoVec(ctypes.addressof(source), size), IoVec(address, size)
        if self.libc.process_vm_writev(pid, ctypes.byref(out), 1, ctypes.byref(theirs), 1, 0) != size:
            self.answer(ident, 0, -errno.EFAULT)
        else:
            self.answer(ident, value)

    def serve(self, fields: tuple[int, ...]) -> None:
        ident, pid, nr, a = fields[0], fields[1], fields[3], fields[6:12]
        if nr in ONE_PATH:
            dirfd, address = AT_FDCWD, a[0]
        elif nr in AT_PATH:
            dirfd, address = ctypes.c_int(a[0]).value, a[1]
        else:
            self.counts["continue"] += 1
            self.answer(ident, flags=CONTINUE)
            return
        pidfd = self.pidfd_of(pid)
        path = self.read_path(pid, address)
        if path is None:
            self.answer(ident, 0, -errno.EFAULT)
            return
        flags = a[3] if nr == SYS_NEWFSTATAT else a[2] if nr == SYS_STATX else 0
        if not path and flags & AT_EMPTY_PATH and nr in (SYS_NEWFSTATAT, SYS_STATX):
            self.fstat(ident, pid, pidfd, nr, dirfd, flags, a)
            return
        os.readlink(f"/proc/{pid}/root")
        if not self.valid(ident):
            return
        if not path:
            self.answer(ident, 0, -errno.ENOENT)
            return
        where = path if path.startswith(b"/") else (
            b"/proc/%d/cwd/%s" % (pid, path) if dirfd == AT_FDCWD else b"/proc/%d/fd/%d/%s" % (pid, dirfd, path))
        if nr in (SYS_OPEN, SYS_OPENAT):
            self.open(ident, nr, where, a)
        else:
            self.path_call(ident, pid, nr, where, flags, a)

    def fstat(self, ident: int, pid: int, pidfd: int, nr: int, dirfd: int, flags: int, a: tuple[int, ...]) -> None:
        self.counts["fstat"] += 1
        libc = self.libc
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, dirfd, 0) if pidfd >= 0 and dirfd >= 0 else -1
        if fd >= 0:
            if nr == SYS_NEWFSTATAT:
                r = libc.syscall(SYS_NEWFSTATAT, fd, b"", self.result, AT_EMPTY_PATH | (flags & SYNC_FLAGS))
            else:
                r = libc.syscall(SYS_STATX, fd, b"", AT_EMPTY_PATH | (flags & SYNC_FLAGS), a[3] & 0xFFFFFFFF, self.result)
            r = -ctypes.get_errno() if r < 0 else r
            os.close(fd)
        else:  # a thread other than the leader, or the cwd: through the magic link
            where = b"/proc/%d/cwd" % pid if dirfd == AT_FDCWD else b"/proc/%d/fd/%d" % (pid, dirfd)
            if nr == SYS_NEWFSTATAT:
                r = libc.syscall(SYS_NEWFSTATAT, AT_FDCWD, where, self.result, 0)
            else:
                r = libc.syscall(SYS_STATX, AT_FDCWD, where, 0, a[3] & 0xFFFFFFFF, self.result)
            if r < 0:
                r = -errno.EBADF if ctypes.get_errno() == errno.ENOENT else -ctypes.get_errno()
        if not self.valid(ident):
            return
        if r < 0:
            self.answer(ident, 0, r)
            return
        size = STAT_SIZE if nr == SYS_NEWFSTATAT else STATX_SIZE
        self.write_back(pid, a[2] if nr == SYS_NEWFSTATAT else a[4], self.result, size, ident, 0)

    def open(self, ident: int, nr: int, where: bytes, a: tuple[int, ...]) -> None:
        self.counts["open"] += 1
        oflags, mode = (a[1], a[2]) if nr == SYS_OPEN else (a[2], a[3])
        oflags = ctypes.c_int(oflags).value
        try:
            opened = os.open(where, oflags | os.O_CLOEXEC, mode & 0o7777)
        except OSError as error:
            self.answer(ident, 0, -(error.errno or errno.EIO))
            return
        os.readlink(f"/proc/self/fd/{opened}")
        ADDFD.pack_into(self.addfd, 0, ident, ADDFD_FLAG_SEND, opened, 0, oflags & os.O_CLOEXEC)
        try:
            fcntl.ioctl(self.listener, IOCTL_NOTIF_ADDFD, self.addfd, True)
        except OSError as error:
            if error.errno != errno.ENOENT:
                self.answer(ident, 0, -(error.errno or errno.EIO))
        os.close(opened)

    def path_call(self, ident: int, pid: int, nr: int, where: bytes, flags: int, a: tuple[int, ...]) -> None:
        self.counts["path"] += 1
        libc = self.libc
        if nr in (SYS_STAT, SYS_LSTAT, SYS_NEWFSTATAT):
            at = AT_SYMLINK_NOFOLLOW if nr == SYS_LSTAT else flags & ~AT_EMPTY_PATH if nr == SYS_NEWFSTATAT else 0
            if libc.syscall(SYS_NEWFSTATAT, AT_FDCWD, where, self.result, at) < 0:
                self.answer(ident, 0, -ctypes.get_errno())
            else:
                self.write_back(pid, a[2] if nr == SYS_NEWFSTATAT else a[1], self.result, STAT_SIZE, ident, 0)
        elif nr == SYS_STATX:
            if libc.syscall(SYS_STATX, AT_FDCWD, where, flags & ~AT_EMPTY_PATH, a[3] & 0xFFFFFFFF, self.result) < 0:
                self.answer(ident, 0, -ctypes.get_errno())
            else:
                self.write_back(pid, a[4], self.result, STATX_SIZE, ident, 0)
        elif nr in (SYS_ACCESS, SYS_FACCESSAT, SYS_FACCESSAT2):
            mode = a[1] if nr == SYS_ACCESS else a[2]
            at = a[3] if nr == SYS_FACCESSAT2 else 0
            r = libc.syscall(SYS_FACCESSAT2, AT_FDCWD, where, mode, at)
            self.answer(ident, 0, -ctypes.get_errno() if r < 0 else 0)
        else:  # readlink, readlinkat
            out, size = (a[1], a[2]) if nr == SYS_READLINK else (a[2], a[3])
            try:
                target = os.readlink(where)[:min(size, PATH_MAX)]
            except OSError as error:
                self.answer(ident, 0, -(error.errno or errno.EIO))
                return
            self.write_back(pid, out, target, len(target), ident, len(target))


def main() -> int:
    if len(sys.argv) < 3 or not sys.argv[2].startswith("/"):
        print("usage: workload_floor.py FILTER_FILE /PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], "rb") as file:
            program = file.read()
    except OSError as error:
        print(f"workload_floor.py: {sys.argv[1]}: {error.strerror}", file=sys.stderr)
        return 2
    if not program or len(program) % 8:
        print(f"workload_floor.py: {sys.argv[1]}: not a BPF program", file=sys.stderr)
        return 2
    child, listener = launch_program(program, sys.argv[2:])
    floor = Floor(listener)
    routed = 0
    for fields in received(listener):
        routed += 1
        floor.serve(fields)
    _, status = os.waitpid(child, 0)
    counts = floor.counts
    print(f"workload floor: {routed} routed (open {counts['open']}, fstat {counts['fstat']}, path {counts['path']}, "
          f"continue {counts['continue']})", file=sys.stderr)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # (killed by a signal: as a shell says it)


if __name__ == "__main__":
    sys.exit(main())
