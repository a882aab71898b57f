"""Acting as a tracee for one emulated operation: its fsuid, fsgid, euid, egid,
supplementary groups, effective capabilities and umask, never systrace's.

The switch uses raw system calls, so it changes only the calling thread (glibc's
setgroups/setresuid wrappers would change every thread of systrace). It is undone right
after the operation. When systrace cannot take the identity (it is not root, or the
tracee holds a capability systrace lacks) the operation is refused: EmulationError(EACCES).

A tracee in another user namespace holds its capabilities over that namespace only:
the operation is done with none (never more than the tracee has here)."""

from __future__ import annotations

import ctypes
import errno
import os

from . import namespaces, procfs
from .libc import libc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from .landlock_domain import Domain

    T = TypeVar("T")

SYS_capget, SYS_capset = 125, 126
SYS_setgroups, SYS_setresuid, SYS_setresgid, SYS_setfsuid, SYS_setfsgid = 116, 117, 119, 122, 123
_CAP_VERSION_3 = 0x20080522
_KEEP = -1  # setres[ug]id: leave that id alone; setfs[ug]id: only report it


class EmulationError(Exception):
    """The operation cannot be done faithfully here; `errno` is what the tracee gets."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.errno = code


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_HEADER = _CapHeader(_CAP_VERSION_3, 0)
_DATA = (_CapData * 2)()


def _sys(number: int, *args: object) -> None:
    if libc.syscall(number, *args) < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def capabilities() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) sets, 64 bits each."""
    _sys(SYS_capget, ctypes.byref(_HEADER), _DATA)
    low, high = _DATA
    return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32)


def set_effective(effective: int) -> None:
    _, permitted, inheritable = capabilities()
    for index, data in enumerate(_DATA):
        shift = 32 * index
        data.effective = (effective >> shift) & 0xFFFFFFFF
        data.permitted = (permitted >> shift) & 0xFFFFFFFF
        data.inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _sys(SYS_capset, ctypes.byref(_HEADER), _DATA)


class Identity:
    """Who an operation is done as. `apply` switches to it, `undo` switches back."""

    __slots__ = ("fsuid", "fsgid", "euid", "egid", "groups", "caps", "umask", "domain", "_saved_umask", "_switched",
                 "_same")
    _own: tuple[int, int, int, int, tuple[int, ...], int, int] | None = None  # systrace's: it never changes

    def __init__(self, fsuid: int, fsgid: int, euid: int, egid: int, groups: tuple[int, ...], caps: int,
                 umask: int):
        self.fsuid, self.fsgid, self.euid, self.egid = fsuid, fsgid, euid, egid
        self.groups, self.caps, self.umask = groups, caps, umask
        # the copy of the tracee's own Landlock domain (kernel/landlock_domain.py), if any
        self.domain: Domain | None = None
        self._saved_umask: int | None = None
        self._switched = False
        self._same: bool | None = None  # same_as_own, once asked (the ids are never changed)

    @classmethod
    def own(cls) -> tuple[int, int, int, int, tuple[int, ...], int, int]:
        """(fsuid, fsgid, euid, egid, groups, effective caps, permitted caps) of systrace."""
        if cls._own is None:
            effective, permitted, _ = capabilities()
            euid, egid = os.geteuid(), os.getegid()
            cls._own = (euid, egid, euid, egid, tuple(sorted(os.getgroups())), effective, permitted)
        return cls._own

    def same_as_own(self) -> bool:
        same = self._same
        if same is None:  # (asked two or three times per emulated call)
            same = self._same = (self.fsuid, self.fsgid, self.euid, self.egid, self.groups, self.caps) == self.own()[:6]
        return same

    def apply(self, creating: bool = False) -> None:
        """Switch to this identity (and its umask when the operation may create a file).
        Raises EmulationError when systrace cannot; call `undo` after whatever happened."""
        switch = not self.same_as_own()
        if switch:
            euid, _, _, _, _, _, permitted = self.own()
            if euid != 0:
                raise EmulationError(errno.EACCES, "the tracee's credentials differ from systrace's, which is not root")
            if self.caps & ~permitted:
                raise EmulationError(errno.EACCES, "the tracee holds capabilities systrace does not have")
        if creating:
            self._saved_umask = os.umask(self.umask)
        if switch:
            self._switched = True
            try:
                groups = (ctypes.c_uint32 * max(len(self.groups), 1))(*self.groups)
                _sys(SYS_setgroups, len(self.groups), groups)
                _sys(SYS_setresgid, _KEEP, self.egid, _KEEP)  # fsgid follows egid
                _sys(SYS_setresuid, _KEEP, self.euid, _KEEP)  # fsuid follows; euid != 0 clears the caps
                if (self.fsuid, self.fsgid) != (self.euid, self.egid):
                    set_effective(permitted)  # CAP_SETUID/SETGID for fsuid/fsgid of their own
                    libc.syscall(SYS_setfsgid, self.fsgid)
                    libc.syscall(SYS_setfsuid, self.fsuid)
                    if (libc.syscall(SYS_setfsuid, _KEEP), libc.syscall(SYS_setfsgid, _KEEP)) != (self.fsuid, self.fsgid):
                        raise OSError(errno.EPERM, "setfsuid/setfsgid refused")
                set_effective(self.caps)
            except OSError as error:
                self.undo()  # (and the umask): nothing of the tracee's is left on systrace's thread
                raise EmulationError(errno.EACCES, f"cannot take the tracee's identity: {error}") from None

    def undo(self) -> None:
        if self._switched:
            _, _, euid, egid, groups, caps, permitted = self.own()
            set_effective(permitted)  # CAP_SETGID back first (euid may not have changed)
            _sys(SYS_setresuid, _KEEP, euid, _KEEP)  # fsuid follows
            _sys(SYS_setresgid, _KEEP, egid, _KEEP)
            array = (ctypes.c_uint32 * max(len(groups), 1))(*groups)
            _sys(SYS_setgroups, len(groups), array)
            set_effective(caps)
            self._switched = False
        if self._saved_umask is not None:
            os.umask(self._saved_umask)
            self._saved_umask = None

    def run(self, operation: Callable[[], T], creating: bool = False) -> T:
        """operation() done as this identity: in this thread, or, when the tracee restricted
        itself with Landlock, in the thread that holds the copy of its domain (as a twin of
        this identity: the caller may hold this one applied meanwhile)."""
        if self.domain is None:  # the common case: no closure
            self.apply(creating)
            try:
                return operation()
            finally:
                self.undo()

        def as_tracee(identity: Identity) -> T:
            identity.apply(creating)
            try:
                return operation()
            finally:
                identity.undo()

        twin = Identity(self.fsuid, self.fsgid, self.euid, self.egid, self.groups, self.caps, self.umask)
        return self.domain.run(lambda: as_tracee(twin))  # type: ignore[return-value]

    def __enter__(self) -> Identity:
        self.apply()
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


_PARSED: dict[tuple[bytes, ...], tuple] = {}  # a few distinct identities per run
_LAST: list = [None, None]  # the status text parsed last (the object itself) and its values


def _foreign_user_namespace(tid: int) -> bool:
    try:
        return namespaces.differs(tid, "user")  # kept per thread (kernel/namespaces.py)
    except OSError as error:
        raise EmulationError(errno.EACCES, f"cannot read the tracee's user namespace: {error}") from None


def _credential_lines(status: bytes) -> tuple[bytes, ...]:
    """The lines of a /proc/TID/status text an identity is made of (Umask, Uid through
    Groups, CapPrm and CapEff), as bytes: the key of a parse done once per distinct
    identity. Name, the one field a process writes, is escaped by the kernel, so it
    cannot fake a line. Another layout: each field looked up on its own."""
    find = status.find
    umask = find(b"\nUmask:\t")
    uid = find(b"\nUid:\t", umask)
    groups = find(b"\nGroups:", uid)
    groups_end = find(b"\n", groups + 1)
    caps = find(b"\nCapPrm:\t", groups_end)
    caps_end = find(b"\nCapBnd:", caps)
    if umask < 0 or uid < 0 or groups < 0 or groups_end < 0 or caps < 0 or caps_end < 0:
        return (procfs.field(status, b"Uid"), procfs.field(status, b"Gid"), procfs.field(status, b"Groups"),
                procfs.field(status, b"Umask"), procfs.field(status, b"CapEff"), procfs.field(status, b"CapPrm"))
    # FDSize, between Gid and Groups, changes as the process opens files: left out
    return (status[umask:find(b"\n", umask + 1)], status[uid:find(b"\nFDSize:", uid)], status[groups:groups_end],
            status[caps:caps_end])


def _parse_identity(status: bytes) -> tuple:
    uids, gids = procfs.field(status, b"Uid").split(), procfs.field(status, b"Gid").split()
    umask, effective, permitted = procfs.field(status, b"Umask"), procfs.field(status, b"CapEff"), \
        procfs.field(status, b"CapPrm")
    if len(uids) != 4 or len(gids) != 4 or not effective:
        raise EmulationError(errno.EACCES, "cannot read the tracee's credentials")
    return (tuple(int(u) for u in uids), tuple(int(g) for g in gids),
            tuple(sorted(int(g) for g in procfs.field(status, b"Groups").split())), int(umask, 8) if umask else 0o022,
            int(effective, 16), int(permitted, 16) if permitted else 0)


def tracee_identity(status: bytes, tid: int | None = None, access_check: bool = False) -> Identity:
    """From /proc/TID/status read fresh for this operation (ids change between calls).
    `access_check`: the identity access(2) checks with (the real ids; no capabilities
    unless the real uid is 0, as the kernel does). With `tid`, a tracee in another user
    namespace gets no capabilities."""
    if status is _LAST[0]:  # the same text as last time (processes.py keeps it per thread)
        values = _LAST[1]
    else:
        key = _credential_lines(status)
        values = _PARSED.get(key)
        if values is None:
            values = _parse_identity(status)
            if len(_PARSED) < 256:
                _PARSED[key] = values
        _LAST[:] = [status, values]
    uids, gids, groups, umask, effective, permitted = values
    if tid is not None and (effective or permitted) and _foreign_user_namespace(tid):
        effective = permitted = 0
    if access_check:  # access(2): real ids; capabilities only for a real root
        return Identity(uids[0], gids[0], uids[1], gids[1], groups, permitted if uids[0] == 0 else 0, umask)
    return Identity(uids[3], gids[3], uids[1], gids[1], groups, effective, umask)
