"""Empty what /proc/<systrace>/environ and /proc/<systrace>/auxv show.

A root tracee whose opens stay in the kernel (`--permit-all`, a policy that plainly
permits openat) can open systrace's `environ`, `auxv` and memory-layout entries (`maps`,
`smaps`, `pagemap`...): the kernel checks them with mm_access(PTRACE_MODE_READ), which
lets a perfmon_capable() caller (CAP_PERFMON or CAP_SYS_ADMIN) through whatever the
ptrace check said, so neither non-dumpability nor the command's Landlock domain refuses
them (measured: root with both capabilities dropped is refused;
tests/escape/test_proc_entries_of_systrace.py).

Those two entries show ranges the kernel keeps for the process (mm->env_start..env_end,
mm->saved_auxv), not what the process uses: Python read its environment into os.environ
at start, glibc's getenv and getauxval use their own pointers, nothing reads them back.
So systrace empties both with prctl(PR_SET_MM, PR_SET_MM_MAP), which needs no capability
when it keeps the executable (exe_fd -1), before it forks anything (the replicas and
helpers inherit the empty ranges). PR_SET_MM_MAP sets every field at once: the others are
given as they are, the program break included, so it is done only while systrace has one
thread, and checked after (a brk moved meanwhile is set again). The layout entries
cannot be emptied this way (SECURITY.md)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from .libc import libc

PR_SET_MM = 35
PR_SET_MM_MAP = 14
SYS_brk = 12
# struct prctl_mm_map: start_code end_code start_data end_data start_brk brk start_stack
# arg_start arg_end env_start env_end, auxv (pointer), auxv_size, exe_fd
_MM_MAP = struct.Struct("=11QQII")
# those fields' numbers in /proc/PID/stat, counted from 1 (proc(5)); brk is not there
_STAT_FIELDS = (26, 27, 45, 46, 47, None, 28, 48, 49, 50, 51)
_ENV_START, _ENV_END = 9, 10  # indexes in _STAT_FIELDS
_EMPTY_AUXV = ctypes.create_string_buffer(16)  # one AT_NULL pair
_TRIES = 3

libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_long]


def mm_fields(stat: bytes) -> list[int]:
    """The prctl_mm_map fields /proc/self/stat shows (0 for brk), in the struct's order."""
    fields = stat[stat.rindex(b")") + 2:].split()  # field 3 (state) onwards
    return [0 if number is None else int(fields[number - 3]) for number in _STAT_FIELDS]


def empty_environ_and_auxv() -> int:
    """0 when both are empty now, else an errno: EBUSY with more than one thread (the
    program break could move under us), the prctl's own error otherwise."""
    if len(os.listdir("/proc/self/task")) != 1:
        return errno.EBUSY
    with open("/proc/self/stat", "rb") as stat:
        fields = mm_fields(stat.read())
    fields[_ENV_END] = fields[_ENV_START]
    request = ctypes.create_string_buffer(_MM_MAP.size)
    for _ in range(_TRIES):
        brk = libc.sbrk(0) or 0  # glibc's break, the kernel's too unless a brk runs now
        fields[5] = brk
        _MM_MAP.pack_into(request, 0, *fields, ctypes.addressof(_EMPTY_AUXV), ctypes.sizeof(_EMPTY_AUXV), 0xFFFFFFFF)
        if libc.prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(request), _MM_MAP.size, 0) != 0:
            return ctypes.get_errno() or errno.EINVAL
        if (libc.sbrk(0) or 0) == brk:
            return 0
    return errno.EAGAIN
