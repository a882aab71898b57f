"""A Landlock domain that puts systrace and its helpers out of the command's reach.

A process in a Landlock domain cannot ptrace, nor make any call that checks ptrace
access (process_vm_readv/writev, pidfd_getfd, kcmp, perf_event_open, /proc/PID/mem,
/proc/PID/fd...), on a process outside its domain (any Landlock ABI), and with
LANDLOCK_SCOPE_SIGNAL (ABI 6, Linux 6.12) it cannot signal one either: not by kill,
tgkill, pidfd_send_signal, a group or broadcast kill (the target is skipped), nor by
SIGIO/SIGURG through F_SETOWN. The ruleset handles no file or network access, so
nothing else changes. systrace and every process it forks (connect helpers, frontends)
are outside the domain; the command and all its descendants are inside it."""

from __future__ import annotations

import ctypes
import os
import struct

from .libc import libc

SYS_landlock_create_ruleset = 444
SYS_landlock_restrict_self = 446
CREATE_RULESET_VERSION = 1
SCOPE_SIGNAL = 1 << 1
SCOPE_ABI = 6  # the first ABI with `scoped`
_RULESET_ATTR = struct.Struct("=QQQ")  # handled_access_fs, handled_access_net, scoped


def abi_version() -> int:
    """The kernel's Landlock ABI, 0 when Landlock is absent or disabled."""
    version = libc.syscall(SYS_landlock_create_ruleset, None, 0, CREATE_RULESET_VERSION)
    return max(0, version)


def signal_scope_ruleset() -> int | None:
    """A ruleset fd (close-on-exec) that scopes signals and handles nothing else, or None
    when this kernel cannot scope signals."""
    if abi_version() < SCOPE_ABI:
        return None
    attr = ctypes.create_string_buffer(_RULESET_ATTR.pack(0, 0, SCOPE_SIGNAL), _RULESET_ATTR.size)
    fd = libc.syscall(SYS_landlock_create_ruleset, attr, _RULESET_ATTR.size, 0)
    if fd < 0:
        return None
    return fd


def enter(ruleset_fd: int) -> int:
    """Put the calling process in the ruleset's domain (no_new_privs must be set): 0 or an
    errno. Called in the forked child, so it allocates nothing."""
    if libc.syscall(SYS_landlock_restrict_self, ruleset_fd, 0) == 0:
        return 0
    return ctypes.get_errno() or 1


def close(ruleset_fd: int | None) -> None:
    if ruleset_fd is not None:
        os.close(ruleset_fd)
