"""A helper that becomes a member of the tracee's network, IPC and user namespaces.

Some objects are picked by the namespaces of whoever opens or looks them up, not by the
path: `/proc/sys/net/*` (the opener's network namespace), the IPC sysctls and
`/proc/sysvipc/*` (its IPC namespace), `/proc/sys/user/*` (its user namespace), and
`/dev/net/tun` (the interface is made in its opener's network namespace). Opened or
looked up by systrace they were systrace's, the host's; so the call is carried out by
a helper (kernel/worker.py's `_defer`, kernel/offload.py: forked through
kernel/forking.py, it dies with systrace and never holds the listener) that first
joins the namespaces of those kinds the calling thread is in, when they differ from
systrace's:

- the namespaces are opened here, in systrace, from `/proc/TID/ns/*` while the thread
  waits in its call (the caller checks that the notification is still valid after, so
  TID was that thread); a thread's namespaces change only by its own unshare or setns,
  and it is blocked in this call;
- as root the helper joins the network and IPC namespaces first (root may join any),
  then, when the user namespace differs, takes the tracee's ids and groups keeping its
  capabilities, joins its user namespace, and keeps exactly the tracee's capabilities
  there (`CapEff`, `CapPrm`, `CapInh`: what the kernel judges a sysctl write by,
  `net_ctl_permissions`, `ipc_permissions`); with the same user namespace it takes the
  tracee's ids and capabilities as any helper does;
- as the unprivileged user only a tracee in a user namespace of the user's own, with
  systrace's ids, is joined (its creator holds every capability there, enough to join
  the network and IPC namespaces it owns), then its capabilities are the tracee's.

Anything that fails refuses the call (EACCES), as before this helper existed."""

from __future__ import annotations

import ctypes
import errno
import os

from . import namespaces
from .emulate_identity import EmulationError
from .libc import check, libc

CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS = 0x10000000, 0x40000000, 0x08000000, 0x04000000
KINDS = {"net": CLONE_NEWNET, "ipc": CLONE_NEWIPC}  # joined besides the user namespace
JOINED = {**KINDS, "uts": CLONE_NEWUTS}  # ... by Joining, when asked (uts: sethostname, kernel/emulate_strings.py)
PR_SET_KEEPCAPS = 8
SYS_capget, SYS_capset = 125, 126
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def permitted_caps() -> int:
    """The calling thread's permitted capabilities (also kernel/open_as.py)."""
    return _caps()


def set_caps(effective: int, permitted: int, inheritable: int) -> None:
    """capset the calling thread to these sets (also kernel/open_as.py)."""
    _caps(effective, permitted, inheritable)


def _caps(effective: int | None = None, permitted: int = 0, inheritable: int = 0) -> int:
    """capset to these sets (capget's permitted set returned when `effective` is None)."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if effective is None:
        check(libc.syscall(SYS_capget, ctypes.byref(header), data))
        return data[0].permitted | data[1].permitted << 32
    for index in range(2):
        shift = 32 * index
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    check(libc.syscall(SYS_capset, ctypes.byref(header), data))
    return 0


def field(status: bytes, name: bytes) -> list[bytes]:
    """The values of `name`'s line of a /proc/TID/status (also kernel/open_as.py)."""
    for line in status.split(b"\n"):
        if line.startswith(name + b":"):
            return line.split()[1:]
    raise EmulationError(errno.EACCES, f"cannot read the tracee's {name.decode()}")


def differing(tid: int, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Those of `kinds` ("net", "ipc", "user") whose namespace thread `tid` has of its
    own (another than systrace's). Unreadable: OSError (the thread is gone)."""
    return tuple(kind for kind in kinds if namespaces.differs(tid, kind))


class Joining:
    """The thread's namespaces of `kinds` that differ from systrace's, and its user
    namespace when that differs, opened now; `enter()` in the helper joins them."""

    def __init__(self, tid: int, kinds: tuple[str, ...], status: bytes):
        self.status = status
        self.root = os.geteuid() == 0
        self.fds: dict[str, int] = {}
        try:
            for kind in ("user", *(kind for kind in JOINED if kind in kinds)):
                if namespaces.differs(tid, kind):
                    self.fds[kind] = os.open(f"/proc/{tid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise
        uid = int(field(status, b"Uid")[1])
        if not self.root and ("user" not in self.fds or uid != os.geteuid()):
            self.close()
            raise EmulationError(errno.EACCES, "the caller's namespaces are not the user's own, and systrace is not root")

    @property
    def joins(self) -> bool:
        return bool(self.fds)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def enter(self) -> None:
        """In the helper: become a member of the namespaces, as the tracee (its ids,
        groups and capabilities). Raises EmulationError."""
        try:
            self._enter()
        except OSError as error:
            raise EmulationError(errno.EACCES, f"cannot join the tracee's namespaces: {error}") from None

    def _enter(self) -> None:
        status = self.status
        uids, gids = [int(v) for v in field(status, b"Uid")], [int(v) for v in field(status, b"Gid")]
        groups = [int(v) for v in field(status, b"Groups")]
        caps = [int(field(status, name)[0], 16) for name in (b"CapEff", b"CapPrm", b"CapInh")]
        userns = self.fds.get("user", -1)
        if self.root:  # any namespace, while every capability is ours
            self._join_others()
        libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)  # the tracee's ids, keeping the capabilities setns needs
        if self.root:
            os.setgroups(groups)
        os.setresgid(gids[0], gids[1], gids[2])
        os.setresuid(uids[0], uids[1], uids[2])
        permitted = _caps()
        _caps(permitted, permitted, 0)
        if userns >= 0:
            check(libc.setns(userns, CLONE_NEWUSER))  # every capability there, as its creator has
        if not self.root:
            self._join_others()  # owned by that user namespace
        _caps(caps[0], caps[1], caps[2])  # then exactly the tracee's (in its own user namespace)
        # the helper is the tracee now: an Identity its own code builds reads that afresh
        from .emulate_identity import Identity

        Identity._own = None

    def _join_others(self) -> None:
        for kind, flag in JOINED.items():
            fd = self.fds.get(kind, -1)
            if fd >= 0:
                check(libc.setns(fd, flag))
