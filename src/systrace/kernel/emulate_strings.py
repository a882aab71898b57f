"""Carrying out, on the strings systrace checked, the calls decided on a string that is
not a path (no check-then-use race).

`memfd_create`'s name, `mq_open`'s and `mq_unlink`'s queue name, `sethostname`'s and
`setdomainname`'s name, `delete_module`'s name: continued after a check, the kernel reads
them again from the tracee's memory, and a second thread can put another one there in
between. So when a rule decides on them, systrace makes the call on the copy the check
read, as the tracee:

- `memfd_create` here, in the loop's thread, with the tracee's ids, groups and
  capabilities (kernel/emulate_identity.py: the file's owner is the caller's fsuid and
  fsgid); the descriptor is installed with ADDFD (close-on-exec from MFD_CLOEXEC). What
  differs from the tracee's own call: the inode's small kernel objects are charged to
  systrace's memory cgroup (its pages to whoever touches them, as natively);
  `vm.memfd_noexec`, which is per PID namespace, is systrace's: a caller in another PID
  namespace is carried out only when its flags give the same file under every setting
  (MFD_NOEXEC_SEAL), else refused;
- `mq_open`/`mq_unlink` and `sethostname`/`setdomainname` by a helper that joins the
  caller's IPC or UTS namespace (and its user namespace, kernel/opener_namespaces.py) and
  becomes it (ids, groups, capabilities; its umask and RLIMIT_MSGQUEUE for a queue it
  creates): the kernel acts on the caller's namespaces. mq_open's attributes are read
  once here; the descriptor is passed back and installed (mqueue descriptors are always
  close-on-exec);
- `delete_module` by a helper as root, only for a caller that holds CAP_SYS_MODULE in
  systrace's user namespace (else EPERM, as natively).

What cannot be made this way is refused (EmulationError: EACCES, logged)."""

from __future__ import annotations

import ctypes
import errno
import os
import resource

from . import abi, namespaces
from .emulate_identity import EmulationError, Identity, tracee_identity
from .libc import check, libc
from .opener_namespaces import Joining
from .worker import Deferred, _defer

SYS = {"memfd_create": 319, "mq_open": 240, "mq_unlink": 241, "sethostname": 170, "setdomainname": 171,
       "delete_module": 176}
CALLS = frozenset(SYS)
KINDS = {"mq_open": "ipc", "mq_unlink": "ipc", "sethostname": "uts", "setdomainname": "uts"}  # joined for each
MFD_CLOEXEC, MFD_NOEXEC_SEAL = 0x1, 0x8
CAP_SYS_MODULE = 16
O_CREAT = os.O_CREAT
MQ_ATTR_SIZE = 64  # struct mq_attr: 8 longs
UTS_LEN = 64  # __NEW_UTS_LEN
EMPTY = b""


def memfd_create(tid: int, name: bytes, flags: int, identity: Identity) -> int:
    """A memfd made with the checked name and the tracee's flags, as the tracee (the
    descriptor is systrace's, close-on-exec here; the caller installs it). Raises
    OSError (the tracee's own error) or EmulationError."""
    if namespaces.differs(tid, "pid") and not flags & MFD_NOEXEC_SEAL:
        raise EmulationError(errno.EACCES, "memfd_create in another PID namespace (its vm.memfd_noexec is not "
                                           "systrace's) without MFD_NOEXEC_SEAL")
    buffer = ctypes.create_string_buffer(name)
    return identity.run(lambda: check(libc.syscall(SYS["memfd_create"], buffer,
                                                   ctypes.c_uint((flags | MFD_CLOEXEC) & 0xFFFFFFFF))))


def read_mq_attr(read: object, address: int, oflag: int) -> bytes | None:
    """mq_open's struct mq_attr, read once as the kernel copies it (only with O_CREAT
    and a pointer: else the kernel reads none). Raises OSError(EFAULT) when unreadable."""
    if not oflag & O_CREAT or address == 0:
        return None
    try:
        return read(address, MQ_ATTR_SIZE)  # type: ignore[operator, no-any-return]
    except OSError:
        raise OSError(errno.EFAULT, "struct mq_attr unreadable") from None


_LACKED: dict[int, bool] = {}
_PROBES = {"delete_module": 176, "init_module": 175, "finit_module": 313, "kexec_file_load": 320}


def kernel_lacks(name: str) -> bool:
    """Is `name` (a module call, kexec_file_load) missing from this kernel (no
    CONFIG_MODULES, CONFIG_KEXEC_FILE: ENOSYS whatever its arguments)? Asked once, with
    arguments it refuses before doing anything (a NULL name or image, descriptor -1)."""
    number = _PROBES.get(name)
    if number is None:
        return False
    lacked = _LACKED.get(number)
    if lacked is None:
        probe = (None, 0) if name == "delete_module" else (None, 0, None) if name == "init_module" else \
            (-1, None, 0) if name == "finit_module" else (-1, -1, 0, None, 0)
        lacked = _LACKED[number] = libc.syscall(number, *probe) < 0 and ctypes.get_errno() == errno.ENOSYS
    return lacked


def may_delete_module(status: bytes, tid: int) -> bool:
    """Does the caller hold CAP_SYS_MODULE in systrace's user namespace (modules belong
    to the initial one: in any other the kernel says EPERM)?"""
    for line in status.split(b"\n"):
        if line.startswith(b"CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_MODULE & 1) and not namespaces.differs(tid, "user")
    return False


class StringCall:
    """One call a helper makes on the checked string, in the caller's namespaces."""

    def __init__(self, name: str, args: tuple[int, ...], string: bytes, status: bytes,
                 attr: bytes | None = None, msgqueue: tuple[int, int] | None = None):
        if name not in SYS or name == "memfd_create":
            raise EmulationError(errno.EACCES, f"{name} cannot be carried out by a helper")
        self.name, self.args, self.string, self.status, self.attr = name, args, string, status, attr
        self.msgqueue = msgqueue  # the caller's RLIMIT_MSGQUEUE (mq_open with O_CREAT)

    def run(self) -> int:
        """In the helper, once it is the tracee (kernel/opener_namespaces.Joining.enter):
        the call's result, or OSError with the tracee's error."""
        number = SYS[self.name]
        if self.name in ("sethostname", "setdomainname"):
            length = abi.s32(self.args[1])
            # the checked bytes, as many as the check read (as far as their NUL); a length
            # the kernel refuses (EINVAL, after its EPERM) is given as it is, unread
            size = len(self.string) if 0 <= length <= UTS_LEN else length
            buffer = ctypes.create_string_buffer(self.string, max(len(self.string), 1))
            return check(libc.syscall(number, buffer, ctypes.c_int(size)))
        name = ctypes.create_string_buffer(self.string)
        if self.name == "mq_unlink":
            return check(libc.syscall(number, name))
        if self.name == "delete_module":
            return check(libc.syscall(number, name, ctypes.c_uint(self.args[1] & 0xFFFFFFFF)))
        oflag = self.args[1] & 0xFFFFFFFF
        os.umask(int(_field(self.status, b"Umask") or b"22", 8))
        attr = None if self.attr is None else ctypes.create_string_buffer(self.attr, len(self.attr))
        return check(libc.syscall(number, name, ctypes.c_int(oflag),
                                  ctypes.c_uint(self.args[2] & 0xFFFF), attr))

    def prepare(self) -> None:
        """In the helper, before it becomes the tracee (while it may still raise it):
        the caller's RLIMIT_MSGQUEUE, the limit a queue it creates is counted against."""
        if self.msgqueue is not None:
            resource.setrlimit(resource.RLIMIT_MSGQUEUE, self.msgqueue)


def joining_for(tid: int, name: str, status: bytes) -> Joining | None:
    """The caller's namespaces a helper joins for `name` (None: it has systrace's user
    namespace and identity, and systrace is not root: the helper is it already). Raises
    EmulationError, or OSError when the thread is gone."""
    if os.geteuid() != 0 and not namespaces.differs(tid, "user"):
        if not tracee_identity(status, tid).same_as_own():
            raise EmulationError(errno.EACCES, "the tracee's credentials differ from systrace's, which is not root")
        return None
    return Joining(tid, (KINDS[name],), status)


def _become(call: StringCall, joining: Joining | None) -> None:
    """In the helper: the caller's limits, namespaces and identity (delete_module: root's,
    its CAP_SYS_MODULE checked by the loop)."""
    try:
        call.prepare()
    except OSError as error:
        raise EmulationError(errno.EACCES, f"cannot take the tracee's RLIMIT_MSGQUEUE: {error}") from None
    if joining is not None:
        joining.enter()


def in_helper(call: StringCall, joining: Joining | None) -> bytes:
    """The job of a helper (kernel/offload.py) for a call that returns a number:
    b"R<result>", b"E<errno>" or b"X<errno> <reason>" (refused)."""
    try:
        _become(call, joining)
        return b"R%d" % call.run()
    except EmulationError as error:
        return b"X%d " % error.errno + str(error).encode("utf-8", "replace")[:400]
    except OSError as error:
        return b"E%d" % (error.errno or errno.EIO)


def in_helper_fd(notif_id: int, tid: int, listener_fd: int, call: StringCall, joining: Joining | None) -> Deferred:
    """mq_open in a helper (kernel/worker.py), its descriptor passed back."""
    def job() -> int:
        _become(call, joining)
        return call.run()

    return _defer(notif_id, tid, listener_fd, job)


def msgqueue_limit(tgid: int) -> tuple[int, int]:
    """The caller's RLIMIT_MSGQUEUE (prlimit: systrace may read its tracee's)."""
    return resource.prlimit(tgid, resource.RLIMIT_MSGQUEUE)


def _field(status: bytes, name: bytes) -> bytes:
    for line in status.split(b"\n"):
        if line.startswith(name + b":"):
            return line.split(b":", 1)[1].strip()
    return EMPTY
