"""The last check before systrace hands a descriptor it opened to a tracee (ADDFD): not
one of systrace's own /proc entries, through whatever mount of a proc file system.

Translation refuses /proc/PID of systrace and its helpers by name (translate/filename.py,
"whatever the policy says"), but it knows /proc by its path. A proc file system mounted
anywhere else (a bind mount of /proc, a chroot's /proc, `mount -t proc` in the tracee's
own mount namespace) names the same entries by another path, and an emulated open is
systrace's own open: `/elsewhere/<systrace>/mem` opened for the tracee is systrace's
memory, read-write (measured: tests/escape/test_procfs_elsewhere.py). So every
descriptor handed over is looked at by its file system (one fstatfs), and one on a proc
file system by what the kernel says it is (its /proc/self/fd link, as the tracee's
mount shows it): a numeric component naming systrace, a replica, a helper or one of
their threads refuses it."""

from __future__ import annotations

import ctypes

from .libc import libc
from .procfs import own_link

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

PROC_SUPER_MAGIC = 0x9FA0
_STATFS = ctypes.create_string_buffer(120)  # struct statfs; f_type is its first word
_F_TYPE = ctypes.c_long.from_buffer(_STATFS)
OWN_ENTRY = "systrace's own /proc entry, whatever the policy says"


def on_procfs(fd: int) -> bool:
    """Is `fd`'s file on a proc file system? (fstatfs fails only for a FUSE server that
    answers STATFS with ENOSYS: no proc file system.)"""
    return libc.fstatfs(fd, _STATFS) == 0 and _F_TYPE.value == PROC_SUPER_MAGIC


def names_systrace(link: bytes, is_ours: Callable[[int], bool]) -> bool:
    """Does a proc file system path name a process or thread of systrace's in any of its
    components (/elsewhere/PID/..., /elsewhere/PID/task/TID/..., /elsewhere/TID/...)?
    `is_ours`: is this pid systrace, a replica, a helper or one of their threads. Also
    kernel/open_as.py's check of an open made in the tracee's mount namespace."""
    return any(part.isdigit() and is_ours(int(part)) for part in link.split(b"/"))


def refused(fd: int, is_ours: Callable[[int], bool]) -> str:
    """Why `fd` may not be handed to a tracee ("": it may). `is_ours` is asked only for a
    descriptor on a proc file system."""
    if not on_procfs(fd):
        return ""
    try:
        link = own_link(fd)
    except OSError:
        return OWN_ENTRY  # cannot tell: fail closed
    return OWN_ENTRY if names_systrace(link, is_ours) else ""
