#!/usr/bin/env python3
"""The Python floor of a CONTINUE: the bare receive-and-continue loop, in Python, with
no logic at all (no process lookup, no decision, no record), against the same child as
bench/emulated_open_floor.c's `continue` mode: a filter routing one system call, and a
program looping on it.

    python3 bench/continue_floor.py PROGRAM [ARGS...]        (the program's openat routed)
    python3 bench/continue_floor.py --nr 5 PROGRAM [ARGS...] (another system call: fstat)

What systrace spends per CONTINUE beyond this is its own work; what this spends beyond
the C floor is the interpreter's (poll, two fcntl.ioctl calls, a struct unpack and pack).
bench/cpu_per_call.py runs it as the "Python floor" column.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import struct
import sys

TYPE_CHECKING = False  # (not typing's: the Python floors import nothing they do not use)
if TYPE_CHECKING:
    from collections.abc import Iterator

SYS_seccomp, SYS_pidfd_getfd = 317, 438
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER, FLAG_NEW_LISTENER = 1, 1 << 3
RET_USER_NOTIF, RET_ALLOW = 0x7FC00000, 0x7FFF0000
IOCTL_NOTIF_RECV, IOCTL_NOTIF_SEND, IOCTL_NOTIF_SET_FLAGS = 0xC0502100, 0xC0182101, 0x40082104
NOTIF = struct.Struct("=QIIiIQ6Q")
RESP = struct.Struct("=QqiI")
CONTINUE = 1
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06


def filter_routing(nr: int) -> bytes:
    """nr -> USER_NOTIF, everything else allowed (x86_64 only: a bench, not a sandbox)."""
    insns = [(BPF_LD_W_ABS, 0, 0, 0), (BPF_JEQ_K, 0, 1, nr), (BPF_RET_K, 0, 0, RET_USER_NOTIF),
             (BPF_RET_K, 0, 0, RET_ALLOW)]
    return b"".join(struct.pack("=HBBI", *insn) for insn in insns)


def launch(nr: int, argv: list[str]) -> tuple[int, int]:
    """Run `argv` under a filter routing `nr`; return (its pid, our listener fd), the
    listener set to SYNC_WAKE_UP before the program runs."""
    return launch_program(filter_routing(nr), argv)


def launch_program(code: bytes, argv: list[str]) -> tuple[int, int]:
    """Run `argv` (an absolute path) under the BPF program `code`; as launch()."""
    libc = ctypes.CDLL(None, use_errno=True)
    program = ctypes.create_string_buffer(code)
    fprog = struct.pack("=HxxxxxxQ", len(code) // 8, ctypes.addressof(program))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(report_r)
            os.close(go_w)
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            fd = libc.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, FLAG_NEW_LISTENER, fprog_buffer)
            os.write(report_w, struct.pack("=i", fd))
            os.read(go_r, 1)  # the supervisor holds the listener now
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(report_w)
    os.close(go_r)
    (theirs,) = struct.unpack("=i", os.read(report_r, 4))
    pidfd = os.pidfd_open(child)
    listener = libc.syscall(SYS_pidfd_getfd, pidfd, theirs, 0)
    os.close(pidfd)
    if listener < 0:
        raise SystemExit(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
    fcntl.ioctl(listener, IOCTL_NOTIF_SET_FLAGS, 1)
    os.write(go_w, b"x")
    os.close(go_w)
    return child, listener


def received(listener: int) -> Iterator[tuple[int, ...]]:
    """Each notification's fields (NOTIF), until no task is left (POLLHUP)."""
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    buffer, zero = bytearray(NOTIF.size), bytes(NOTIF.size)
    while True:
        events = poller.poll()
        if not events or not events[0][1] & select.POLLIN:
            return
        buffer[:] = zero
        try:
            fcntl.ioctl(listener, IOCTL_NOTIF_RECV, buffer, True)
        except OSError:
            continue  # the call went away
        yield NOTIF.unpack_from(buffer)


def main() -> int:
    import argparse  # (here: bench/workload_floor.py's start-up is part of its floor)

    parser = argparse.ArgumentParser()
    parser.add_argument("--nr", type=int, default=257, help="the routed system call (default openat)")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    child, listener = launch(options.nr, options.argv)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    buffer = bytearray(NOTIF.size)
    zero = bytes(NOTIF.size)
    response = bytearray(RESP.size)
    ioctl, unpack_from, pack_into = fcntl.ioctl, NOTIF.unpack_from, RESP.pack_into
    while True:
        events = poller.poll()
        if not events or not events[0][1] & select.POLLIN:
            break  # POLLHUP: no task left
        buffer[:] = zero
        try:
            ioctl(listener, IOCTL_NOTIF_RECV, buffer, True)
        except OSError:
            continue  # the call went away
        pack_into(response, 0, unpack_from(buffer)[0], 0, 0, CONTINUE)
        try:
            ioctl(listener, IOCTL_NOTIF_SEND, response, False)
        except OSError:
            pass
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
