"""ctypes bindings to the few libc entry points the standard library lacks."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
libc.process_vm_readv.restype = ctypes.c_ssize_t
libc.setfsuid.argtypes = [ctypes.c_uint]
libc.setfsgid.argtypes = [ctypes.c_uint]
libc.sched_getcpu.argtypes = []
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]

SYS_pidfd_open = 434
SYS_pidfd_send_signal = 424
SYS_pidfd_getfd = 438


def check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(libc.prctl(option, arg2, arg3, arg4, arg5))


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    return check(libc.syscall(SYS_pidfd_getfd, pidfd, targetfd, 0))


def pidfd_send_signal(pidfd: int, signal_number: int) -> None:
    check(libc.syscall(SYS_pidfd_send_signal, pidfd, signal_number, None, 0))


def tgkill(tgid: int, tid: int, signal_number: int) -> None:
    check(libc.syscall(234, tgid, tid, signal_number))


PROT_READ, PROT_WRITE, MAP_SHARED, MAP_ANONYMOUS = 1, 2, 0x01, 0x20
MAP_FAILED = (1 << 64) - 1


def shared_page(size: int = 4096) -> memoryview:
    """`size` bytes of anonymous memory shared with the children forked after (what
    mmap.mmap(-1, size) gives, without importing mmap: start-up time), as unsigned
    64-bit words. Never unmapped: the view stays valid for the process's life."""
    address = libc.mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    if address is None or address == MAP_FAILED:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return memoryview((ctypes.c_uint64 * (size // 8)).from_address(address)).cast("B").cast("Q")


SYS_prlimit64, RLIMIT_FSIZE, RLIMIT_NOFILE = 302, 1, 7
RLIM_INFINITY = (1 << 64) - 1  # (unsigned, as the kernel's; the resource module says -1)


def prlimit(pid: int, resource: int) -> tuple[int, int]:
    """The (soft, hard) limit `resource` of process `pid`, as resource.prlimit reads it
    (OSError when it cannot), without importing resource (start-up time)."""
    limits = (ctypes.c_uint64 * 2)()
    check(libc.syscall(SYS_prlimit64, pid, resource, None, limits))
    return limits[0], limits[1]


def raise_descriptor_limit() -> None:
    """Our soft limit of open descriptors up to the hard one (each process and thread of
    the run may hold a few of ours: a pidfd, a /proc file). Made after the command is
    forked, so that its limit stays as it was; nothing when it cannot."""
    limits = (ctypes.c_uint64 * 2)()
    if libc.syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, None, limits) == 0 and limits[0] < limits[1]:
        limits[0] = limits[1]
        libc.syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, limits, None)
