#!/usr/bin/env python3
"""The Python floor of an emulated open: bench/emulated_open_floor.c's system calls, one
for one, made from Python with no logic at all (no process table, no translation, no
policy, no record), against a program whose openat is routed.

    python3 bench/emulated_open_floor.py [--systrace|--fewest] [--hint] PROGRAM [ARGS...]

Each open: poll for more, the liveness check (pidfd signal 0), /proc/TID/exe, the path
from the tracee's memory (process_vm_readv), /proc/TID/root, the one-call symlink check
(openat2 O_PATH RESOLVE_NO_SYMLINKS, closed), ID_VALID, /proc/TID/status (pread), the
open (openat2), the check of what was opened (readlink), ADDFD and the answer; with
--hint, the ADDFD wake-up hint systrace makes (the
thread's affinity narrowed and restored: three calls; BENCHMARKS.md). What systrace spends per emulated open
beyond this is its own work; what this spends beyond the C floor is the interpreter's.
bench/cpu_per_call.py runs it as the emulated open's "Python floor" column.

--systrace: the system calls systrace itself makes for one emulated open instead (strace
-f of its openat loop under -a), still with no logic: what the C floor leaves out and
systrace must make (the FUSE checks: the backing-device directory's fstat before the
memory read, the mount table's poll, fstat and fstatfs of the probe; the open made
through the probe, O_NONBLOCK, and the flag cleared after) and what systrace does not
make (the exe readlink and the status read: cached; the second lookup: the probe is
reopened; the probe's check and reopen through systrace's /proc/self/fd directory,
opened once). Its "Python floor, systrace's calls" column is the cost of those calls from
Python; what systrace spends beyond it is its own logic.

--fewest: only the calls no supervisor of this design can do without, as
emulated_open_floor.c's emulate-fewest (not the poll for more, the exe and status reads,
the separate symlink check): bench/bench.py's floor model, a lower bound.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import struct
import sys
from signal import pidfd_send_signal

from continue_floor import launch

SYS_openat2 = 437
IOCTL_NOTIF_RECV, IOCTL_NOTIF_SEND, IOCTL_NOTIF_ID_VALID = 0xC0502100, 0xC0182101, 0x40082102
IOCTL_NOTIF_ADDFD = 0x40182103
NOTIF = struct.Struct("=QIIiIQ6Q")
RESP = struct.Struct("=QqiI")
ADDFD = struct.Struct("=QIIII")
HOW = struct.Struct("=QQQ")
RESOLVE = 0x02 | 0x04  # RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS
AT_FDCWD = -100
CONTINUE = 1


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def main() -> int:
    argv = sys.argv[1:]
    as_systrace = argv[:1] == ["--systrace"]  # systrace's own calls (the module's text)
    argv = argv[1:] if as_systrace else argv
    fewest = argv[:1] == ["--fewest"]
    argv = argv[1:] if fewest else argv
    hint = argv[:1] == ["--hint"]
    argv = argv[1:] if hint else argv
    child, listener = launch(257, argv)  # openat
    serve(listener, child, as_systrace, fewest, hint)
    _, status_code = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status_code)


def serve(listener: int, child: int, as_systrace: bool, fewest: bool, hint: bool, threads: bool = False) -> None:
    """Serve the program's opens until its last thread is gone (POLLHUP). threads: as
    bench/threads_floor.c's supervisors (several may share the listener): the status file
    opened, read and closed at each open, the CPU of the hint asked at each open."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(child)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    more = select.poll()
    more.register(listener, select.POLLIN)
    mountinfo = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    mounts_changed = select.poll()
    mounts_changed.register(mountinfo, select.POLLPRI | select.POLLERR)
    devices = os.open("/sys/devices/virtual/bdi", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    own_fds = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # as systrace: kernel/procfs.py
    buffer, zero = bytearray(NOTIF.size), bytes(NOTIF.size)
    response, addfd, notif_id = bytearray(RESP.size), bytearray(ADDFD.size), bytearray(8)
    page = ctypes.create_string_buffer(4096)
    local, remote = IoVec(ctypes.addressof(page), 0), IoVec(0, 0)
    how = ctypes.create_string_buffer(HOW.size)
    statfs = ctypes.create_string_buffer(120)
    status_fds: dict[int, int] = {}
    cpu = libc.sched_getcpu()
    ioctl, unpack_from, pack_into = fcntl.ioctl, NOTIF.unpack_from, RESP.pack_into
    while True:
        events = poller.poll()
        if not events or not events[0][1] & select.POLLIN:
            break
        buffer[:] = zero
        try:
            ioctl(listener, IOCTL_NOTIF_RECV, buffer, True)
        except OSError:
            continue  # the call went away, or another supervisor took it (ENOENT)
        fields = unpack_from(buffer)
        ident, tid, address = fields[0], fields[1], fields[7]
        if not fewest and not threads:  # (threads_floor.c does not poll for more)
            more.poll(0)
        pidfd_send_signal(pidfd, 0)
        if as_systrace:
            os.fstat(devices)  # any FUSE mount on the machine? (then the memory read is bounded)
        elif not fewest:
            os.readlink(f"/proc/{tid}/exe")
        local.len = remote.len = 4096 - address % 4096
        remote.base = address
        libc.process_vm_readv(tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        path = page.value
        os.readlink(f"/proc/{tid}/root")
        if as_systrace:
            mounts_changed.poll(0)  # the mount table: is the path on a FUSE mount?
        HOW.pack_into(how, 0, (os.O_RDONLY if fewest else os.O_PATH) | os.O_CLOEXEC, 0, RESOLVE)
        probe = libc.syscall(SYS_openat2, AT_FDCWD, path, how, HOW.size)  # (with --fewest: the open)
        if probe < 0:  # (the loader's opens of missing files, before the loop: continued)
            pack_into(response, 0, ident, 0, 0, CONTINUE)
            ioctl(listener, IOCTL_NOTIF_SEND, response, False)
            continue
        if not as_systrace and not fewest:
            os.close(probe)
        notif_id[:] = ident.to_bytes(8, "little")
        try:
            ioctl(listener, IOCTL_NOTIF_ID_VALID, notif_id, False)
        except OSError:
            continue
        if as_systrace:  # the probe reopened (its credentials cached)
            os.readlink(b"%d" % probe, dir_fd=own_fds)  # still at the checked path
            os.fstat(probe)  # what kind of file (a FIFO, a device: opened so as never to wait)
            libc.fstatfs(probe, statfs)  # on FUSE?
            opened = os.open(b"%d" % probe, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=own_fds)
            fcntl.fcntl(opened, fcntl.F_SETFL, os.O_RDONLY)  # (O_NONBLOCK: a lease's break never waits)
        elif fewest:
            opened = probe
            os.readlink(f"/proc/self/fd/{opened}")
        elif threads:  # (threads_floor.c opens the status file at each open)
            status = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
            os.pread(status, 4096, 0)
            os.close(status)
        else:
            cached = status_fds.get(tid)
            if cached is None:
                cached = status_fds[tid] = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
            os.pread(cached, 4096, 0)
        if not as_systrace and not fewest:
            HOW.pack_into(how, 0, os.O_RDONLY | os.O_CLOEXEC, 0, RESOLVE)
            opened = libc.syscall(SYS_openat2, AT_FDCWD, path, how, HOW.size)
            os.readlink(f"/proc/self/fd/{opened}")
        if hint:
            allowed = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, (libc.sched_getcpu() if threads else cpu,))
        ADDFD.pack_into(addfd, 0, ident, 0, opened, 0, 0)
        try:
            installed = ioctl(listener, IOCTL_NOTIF_ADDFD, addfd, True)
        except OSError:
            installed = -1
        os.close(opened)
        if hint:
            os.sched_setaffinity(tid, allowed)
        pack_into(response, 0, ident, installed, 0, 0)
        try:
            ioctl(listener, IOCTL_NOTIF_SEND, response, False)
        except OSError:
            pass
        if as_systrace:
            os.close(probe)


if __name__ == "__main__":
    sys.exit(main())
