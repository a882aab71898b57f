"""Linux seccomp ABI for x86_64: constants and struct layouts (measured in DESIGN.md)."""

from __future__ import annotations

import struct

SYS_seccomp = 317
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2

FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_TSYNC_ESRCH = 1 << 4
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_ALLOW = 0x7FFF0000
RET_DATA = 0x0000FFFF

USER_NOTIF_FLAG_CONTINUE = 1
ADDFD_FLAG_SETFD = 1
ADDFD_FLAG_SEND = 2
USER_NOTIF_FD_SYNC_WAKE_UP = 1

IOCTL_NOTIF_RECV = 0xC0502100
IOCTL_NOTIF_SEND = 0xC0182101
IOCTL_NOTIF_ID_VALID = 0x40082102
IOCTL_NOTIF_ADDFD = 0x40182103
IOCTL_NOTIF_SET_FLAGS = 0x40082104

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data offsets
DATA_NR = 0
DATA_ARCH = 4
DATA_IP = 8
DATA_ARGS = 16

NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags, nr, arch, ip, args[6]
NOTIF_BRIEF = struct.Struct("=QI4xi")  # its id, pid and nr only
NOTIF_RESP = struct.Struct("=QqiI")  # id, val, error, flags
NOTIF_ADDFD = struct.Struct("=QIIII")  # id, flags, srcfd, newfd, newfd_flags
ID = struct.Struct("=Q")
assert NOTIF.size == 80 and NOTIF_RESP.size == 24 and NOTIF_ADDFD.size == 24


def ret_errno(errno_value: int) -> int:
    """The filter return value that fails a call with errno_value."""
    if not 0 < errno_value <= RET_DATA:
        raise ValueError(f"errno out of range: {errno_value}")
    return RET_ERRNO | errno_value


def s32(value: int) -> int:
    """A 32-bit int argument (a descriptor, a pid, a `which`) with its sign: the registers
    hold it zero-extended or sign-extended, as the caller's C code left it."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
