#!/usr/bin/env python3
"""The Python floor of one way systrace carries out a routed newfstatat: bench/kind_floor.c's
system calls, one for one, made from Python with the standard library only and no logic
at all (no process table, no policy, no record), against a program looping on it.

    python3 bench/kind_floor.py fstat PROGRAM [ARGS...]   (emulate-fstat: fstat(fd))
    python3 bench/kind_floor.py path PROGRAM [ARGS...]    (emulate-path: stat(ABSOLUTE))

The calls of each kind, and what they leave out, are kind_floor.c's (its comment). What
this spends beyond the C floor is the interpreter's; what systrace spends beyond this is
its own work. bench/bench.py runs both as the floors of emulate-fstat and emulate-path.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import struct
import sys
from signal import pidfd_send_signal

from continue_floor import CONTINUE, IOCTL_NOTIF_RECV, IOCTL_NOTIF_SEND, NOTIF, RESP, launch

SYS_newfstatat, SYS_openat2, SYS_pidfd_getfd = 262, 437, 438
IOCTL_NOTIF_ID_VALID = 0x40082102
HOW = struct.Struct("=QQQ")
RESOLVE = 0x02 | 0x04  # RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS
AT_FDCWD, AT_SYMLINK_NOFOLLOW = -100, 0x100
STAT_SIZE = 144  # struct stat on x86_64


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("fstat", "path"):
        print("usage: kind_floor.py fstat|path PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    descriptor_form = sys.argv[1] == "fstat"
    libc = ctypes.CDLL(None, use_errno=True)
    child, listener = launch(SYS_newfstatat, sys.argv[2:])
    pidfd = os.pidfd_open(child)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    buffer, zero = bytearray(NOTIF.size), bytes(NOTIF.size)
    response, notif_id = bytearray(RESP.size), bytearray(8)
    page = ctypes.create_string_buffer(4096)
    st = ctypes.create_string_buffer(STAT_SIZE)
    local, remote = IoVec(ctypes.addressof(page), 0), IoVec(0, 0)
    out, theirs = IoVec(ctypes.addressof(st), STAT_SIZE), IoVec(0, STAT_SIZE)
    how = ctypes.create_string_buffer(HOW.size)
    HOW.pack_into(how, 0, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, RESOLVE)
    ioctl, unpack_from, pack_into = fcntl.ioctl, NOTIF.unpack_from, RESP.pack_into

    def answer(ident: int, error: int, flags: int = 0) -> None:
        pack_into(response, 0, ident, 0, -error, flags)
        try:
            ioctl(listener, IOCTL_NOTIF_SEND, response, False)
        except OSError:
            pass  # the call went away

    while True:
        events = poller.poll()
        if not events or not events[0][1] & select.POLLIN:
            break  # POLLHUP: no task left
        buffer[:] = zero
        try:
            ioctl(listener, IOCTL_NOTIF_RECV, buffer, True)
        except OSError:
            continue
        fields = unpack_from(buffer)
        ident, tid, args = fields[0], fields[1], fields[6:12]
        pidfd_send_signal(pidfd, 0)
        local.len = remote.len = 4096 - args[1] % 4096
        remote.base = args[1]
        if libc.process_vm_readv(tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0:
            answer(ident, errno.EFAULT)
            continue
        path = page.value
        if (not path) != descriptor_form:  # the other form (the loader's fstat...): not measured
            answer(ident, 0, CONTINUE)
            continue
        notif_id[:] = ident.to_bytes(8, "little")
        try:
            if descriptor_form:
                fd = libc.syscall(SYS_pidfd_getfd, pidfd, args[0], 0)
                result = libc.fstat(fd, st)
                os.close(fd)
                ioctl(listener, IOCTL_NOTIF_ID_VALID, notif_id, False)
            else:
                os.readlink(f"/proc/{tid}/root")
                ioctl(listener, IOCTL_NOTIF_ID_VALID, notif_id, False)
                parent, _, name = path.rpartition(b"/")  # (the loop's path is absolute)
                directory = libc.syscall(SYS_openat2, AT_FDCWD, parent or b"/", how, HOW.size)
                os.readlink(f"/proc/self/fd/{directory}")
                result = libc.fstatat(directory, name, st, AT_SYMLINK_NOFOLLOW)
                os.close(directory)
        except OSError:
            continue  # the call went away (ID_VALID), or the directory is gone
        if result < 0:
            answer(ident, ctypes.get_errno())
            continue
        theirs.base = args[2]
        libc.process_vm_writev(tid, ctypes.byref(out), 1, ctypes.byref(theirs), 1, 0)
        answer(ident, 0)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
