"""Character devices whose open is resolved by *who opens them*: `/dev/tty` is the
opener's controlling terminal, `/dev/net/tun` is bound to the opener's network namespace
(drivers/tty/tty_io.c tty_open_current_tty, drivers/net/tun.c tun_chr_open), and a
`/dev/fuse` descriptor mounts only in its opener's user namespace (fs/fuse/inode.c
fuse_fill_super compares the file's credentials' user namespace with the mount's: else
EINVAL). Opened by systrace for the tracee, they would be systrace's: a process that left
the session (setsid) got the user's terminal, with no job control over it; a tun device
made in a network namespace of the tracee's own appeared in systrace's; a FUSE mount in a
user namespace of the tracee's own (`unshare -Urm`, then mount) failed (SECURITY.md)."""

from __future__ import annotations

import errno
import os

from . import namespaces
from .emulate_identity import EmulationError

TTY = os.makedev(5, 0)
TUN = os.makedev(10, 200)
FUSE = os.makedev(10, 229)


class OpenerElsewhere(EmulationError):
    """The device must be opened in the caller's namespaces of `kinds`: by a helper that
    joins them (kernel/open_as.py in_namespaces)."""

    def __init__(self, kinds: tuple[str, ...], reason: str):
        super().__init__(errno.EACCES, reason)
        self.kinds = kinds


def check_opener(tid: int, rdev: int) -> None:
    """Raise when the device `rdev`, opened by systrace, would not be what the thread `tid`
    would get: OSError(ENXIO) as natively for /dev/tty without a controlling terminal,
    EmulationError (refused) when the tracee's terminal differs, OpenerElsewhere when
    its network namespace does (/dev/net/tun: a helper opens it there) or its user
    namespace does (/dev/fuse: a helper joins it, kernel/opener_namespaces.py)."""
    if rdev == FUSE:
        try:
            elsewhere = namespaces.differs(tid, "user")
        except OSError:
            elsewhere = True  # cannot tell: the helper's own checks fail closed
        if elsewhere:
            raise OpenerElsewhere(("user",), "/dev/fuse mounts only in its opener's user namespace, and the caller is in "
                                      "another than systrace")
        return
    if rdev in (TTY, TUN):
        facts = opener_facts(tid)
        if rdev == TUN and facts[2]:
            raise OpenerElsewhere(("net",), "/dev/net/tun is bound to its opener's network namespace, and the caller "
                                            "is in another than systrace")
        check_facts(rdev, facts)


def opener_facts(tid: int) -> tuple[int, int, bool]:
    """(the thread's controlling terminal, systrace's, is it in another network
    namespace): read before a helper leaves systrace's view (kernel/open_as.py)."""
    try:
        elsewhere = namespaces.differs(tid, "net")
    except OSError:
        elsewhere = True  # cannot tell: fail closed
    return _controlling_tty(f"/proc/{tid}/stat"), _controlling_tty("/proc/self/stat"), elsewhere


def check_facts(rdev: int, facts: tuple[int, int, bool]) -> None:
    theirs, ours, other_net = facts
    if rdev == TTY:
        if theirs == 0:
            raise OSError(errno.ENXIO, "no controlling terminal")
        if theirs != ours:
            raise EmulationError(errno.EACCES, "/dev/tty is its opener's controlling terminal, and the caller's "
                                               "is not systrace's")
    elif rdev == TUN and other_net:
        raise EmulationError(errno.EACCES, "/dev/net/tun is bound to its opener's network namespace, and the "
                                           "caller is in another than systrace")


def _controlling_tty(stat_path: str) -> int:
    """tty_nr of /proc/PID/stat (0: none); the name in parentheses may hold anything."""
    with open(stat_path, "rb") as handle:
        fields = handle.read().rpartition(b")")[2].split()
    return int(fields[4])
