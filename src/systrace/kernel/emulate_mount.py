"""Carrying out the mount-family calls on what systrace checked (no check-then-use race).

`mount`, `umount2`, `pivot_root`, `swapon`, `swapoff`, `acct`, `mount_setattr` and `quotactl`
(its block device, Q_QUOTAON's quota file) read their path strings from the caller's
memory. Continued after a check, the kernel reads them again, and a second thread can
put another path there in between (mount over /etc where the policy permits
/mnt/allowed, point acct at a file the policy refuses to let it write). So when a rule
decides on their arguments, a helper makes the call instead:

- every path argument is the canonical path the policy saw, opened O_PATH through the
  tracee's root (/proc/TID/root, RESOLVE_IN_ROOT) following no symlink and no magic
  link, as systrace, before anything else: the object checked, in the tracee's own mount
  tree. The call is then given `N`, the helper's /proc/self/fd entry of that descriptor,
  relative to its working directory (its own /proc/self/fd): the kernel follows that
  magic link to exactly the object opened, and reads nothing of the tracee's. For
  `umount2` a descriptor of the mount would keep it busy: the parent directory is
  opened so and made the working directory, and the last component is given with
  UMOUNT_NOFOLLOW (a mount point cannot be renamed or replaced: EBUSY);
- the strings (mount's source and file system type) are the copies the check read;
  mount's data page is read once here (no rule looks at it) and passed as that copy; a
  bind or move source, which the kernel resolves as a path, is resolved once by the
  helper (the tracee's root and working directory, following symlinks as the kernel does)
  and passed as its descriptor too; quotactl's struct (its addr, by command: QUOTA_ADDR)
  is read once here and passed as that copy, and what the call writes there is written
  back into the caller;
- the helper joins the tracee's mount namespace (the kernel acts on the caller's: a
  mount in another namespace than the caller's is EINVAL), and its user namespace when it
  has its own (then it holds there what the tracee holds: `unshare -Urm` works as
  natively, also when systrace is not root), takes its root (`pivot_root` moves the
  caller's), ids, groups and capabilities (kernel/emulate_identity.py: EPERM where the
  tracee has no CAP_SYS_ADMIN, as natively).

The helper may wait (a mount of a network file system, a FUSE server): it is one of
kernel/offload.py's, the loop serves everyone else meanwhile. What cannot be made this
way is refused (EmulationError: EACCES, logged)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from . import closer
from .emulate import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2
from .emulate_identity import EmulationError, Identity, set_effective
from .libc import check, libc

SYS = {"mount": 165, "umount2": 166, "pivot_root": 155, "swapon": 167, "swapoff": 168, "acct": 163,
       "mount_setattr": 442, "quotactl": 179, "bpf": 321, "fsopen": 430, "fsconfig": 431}
# the strings each call reads, by the register they are in (copies of the check's passed)
STRING_REGISTERS = {"mount": {"source": 0, "fstype": 2}, "fsopen": {"fstype": 0}, "fsconfig": {"key": 2, "value": 3}}
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING = 0, 1
CALLS = frozenset(SYS)
SYS_uselib = 134
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
MS_BIND, MS_MOVE = 0x1000, 0x2000
UMOUNT_NOFOLLOW = 0x8
AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000
MOUNT_ATTR_SIZE_VER0 = 32  # struct mount_attr's first size: smaller is EINVAL
PAGE = 4096
Q_QUOTAON = 0x800002
BPF_OBJ_PIN, BPF_F_PATH_FD, BPF_F_RDONLY, BPF_F_WRONLY = 6, 1 << 14, 1 << 3, 1 << 4
BPF_OBJ_ATTR = struct.Struct("=QIIi")  # union bpf_attr for BPF_OBJ_*: pathname, bpf_fd, file_flags, path_fd
# quotactl's addr by command (QCMD's bits above the low 8), as the kernel uses it: ("in",
# N) a struct of N bytes it reads, ("out", N) one it writes, ("inout", N) both, "path"
# Q_QUOTAON's quota file; a command not listed uses no addr (Q_SYNC, Q_QUOTAOFF,
# Q_XQUOTASYNC) or is unknown to the kernel (EINVAL): the helper passes NULL, so that
# nothing of the tracee's memory is ever read again
QUOTA_ADDR: dict[int, tuple[str, int]] = {
    0x800002: ("path", 0), 0x800004: ("out", 4), 0x800005: ("out", 24), 0x800006: ("in", 24),  # QUOTAON GETFMT GETINFO SETINFO
    0x800007: ("out", 72), 0x800008: ("in", 72), 0x800009: ("out", 72),  # GETQUOTA SETQUOTA GETNEXTQUOTA (if_[next]dqblk)
    0x5801: ("in", 4), 0x5802: ("in", 4), 0x5803: ("out", 112), 0x5804: ("in", 112),  # XQUOTAON XQUOTAOFF XGETQUOTA XSETQLIM
    0x5805: ("out", 80), 0x5806: ("in", 4), 0x5808: ("inout", 160), 0x5809: ("out", 112)}  # XGETQSTAT XQUOTARM XGETQSTATV XGETNEXTQUOTA
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def uselib_exists() -> bool:
    """Does this kernel have uselib (CONFIG_USELIB)? Without it every uselib fails with
    ENOSYS, whatever its path: nothing to carry out."""
    return libc.syscall(SYS_uselib, None) == 0 or ctypes.get_errno() != errno.ENOSYS


class MountCall:
    """One call to make in a helper: what was read from the tracee (in the loop), and
    the descriptors of its namespaces and root taken while it waits in the call."""

    def __init__(self, name: str, tid: int, args: tuple[int, ...], targets: list[bytes | int | None],
                 strings: dict[str, bytes | None], identity: Identity, data: bytes | None = None):
        if name not in SYS:
            raise EmulationError(errno.EACCES, f"{name} cannot be carried out by systrace")
        self.name, self.tid, self.args, self.targets = name, tid, args, targets
        self.strings, self.identity, self.data = strings, identity, data
        self.unprivileged = os.geteuid() != 0
        self.lookup_error = 0  # why a checked path could not be opened (run)
        self.written = b""  # what the call wrote into its copy of the caller's struct (quotactl)
        self.object_fd = -1  # bpf's object to pin, taken from the tracee (take_descriptor)
        self.object_flags = 0  # BPF_OBJ_GET's BPF_F_RDONLY/BPF_F_WRONLY
        self._fds: list[int] = []
        try:
            self.root = self._open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY)
            self.cwd = self._open(f"/proc/{tid}/cwd", os.O_PATH | os.O_DIRECTORY)
            self.mntns = self.userns = -1
            if _differs(tid, "mnt"):
                self.mntns = self._open(f"/proc/{tid}/ns/mnt", os.O_RDONLY)
            if _differs(tid, "user"):
                self.userns = self._open(f"/proc/{tid}/ns/user", os.O_RDONLY)
        except OSError as error:
            self.close()
            raise EmulationError(errno.EACCES, f"cannot reach the tracee's namespaces and root: {error}") from None
        if self.unprivileged and (self.userns < 0 and not identity.same_as_own()
                                  or self.userns >= 0 and identity.euid != os.geteuid()):
            self.close()
            raise EmulationError(errno.EACCES, "the tracee's credentials differ from systrace's, which is not root")

    def take_descriptor(self, tgid: int, number: int, missing: int) -> int:
        """The tracee's descriptor `number` (bpf's object to pin, fsconfig's fs context),
        taken now with pidfd_getfd: the object the call names at this moment, as the
        kernel takes it. Raises OSError (`missing` for a number that is no descriptor:
        bpf says EINVAL for anything but a bpf object)."""
        from .resolve_flags import starting_directory  # (the same taking, for a directory)

        try:
            fd = starting_directory(self.tid, tgid, number)
        except OSError as error:
            code = missing if error.errno == errno.EBADF else error.errno or errno.EIO
            raise OSError(code, os.strerror(code)) from None
        self._fds.append(fd)
        return fd

    def _open(self, path: str, flags: int) -> int:
        fd = os.open(path, flags | os.O_CLOEXEC)
        self._fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self._fds:  # (some are the tracee's own open files: their last close may wait)
            closer.close_taken(fd)
        self._fds.clear()

    # -- in the helper -----------------------------------------------------------------
    def run(self) -> int:
        """Make the call (in a forked helper: it changes namespaces and identity for good).
        Returns its result; raises OSError (the tracee's error) or EmulationError. A path
        that could not be opened is given as "": the kernel checks what it checks before
        its lookup (flags, CAP_SYS_ADMIN, CAP_SYS_PACCT) and fails the lookup with
        ENOENT, which is then the error the opening met (ENOENT, ENOTDIR, ELOOP...)."""
        try:
            return self._run()
        except OSError as error:
            if error.errno == errno.ENOENT and self.lookup_error:
                raise OSError(self.lookup_error, os.strerror(self.lookup_error)) from None
            raise

    def _run(self) -> int:
        own_fds = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if self.name in ("fsopen", "fsconfig"):  # the strings checked; the tracee's fs context
            self._become()
            if self.name == "fsopen":
                return check(libc.syscall(SYS["fsopen"], self.strings.get("fstype"), ctypes.c_uint(self.args[1])))
            cmd = self.args[1] & 0xFFFFFFFF
            if cmd not in (FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING):
                raise EmulationError(errno.EACCES, "fsconfig decided on what it reads: only its flags and strings "
                                                   "are carried out")
            # a SET_FLAG value must be NULL: any other is given as one (EINVAL, as natively)
            value = self.strings.get("value") if cmd == FSCONFIG_SET_STRING else None if self.args[3] == 0 else b""
            return check(libc.syscall(SYS["fsconfig"], self.object_fd, ctypes.c_uint(cmd), self.strings.get("key"),
                                      value, ctypes.c_int(self.args[4] & 0xFFFFFFFF)))
        if self.name == "bpf":
            cmd = self.args[0] & 0xFFFFFFFF
            if cmd == BPF_OBJ_PIN:  # the last component made in the checked parent
                parent, placed = self._parent_of(self.targets[0]) if self.targets[0] is not None else (own_fds, [b""])
            else:  # BPF_OBJ_GET: the object checked, N of own_fds (the kernel follows that magic link to it)
                parent, placed = own_fds, [self._place(self.targets[0])]
            self._become()
            pathname = ctypes.create_string_buffer(placed[0] or b"")  # (kept alive until the call returns)
            packed = BPF_OBJ_ATTR.pack(ctypes.addressof(pathname), self.object_fd if cmd == BPF_OBJ_PIN else 0,
                                       self.object_flags | BPF_F_PATH_FD, parent)
            buffer = ctypes.create_string_buffer(packed, len(packed))
            return check(libc.syscall(SYS["bpf"], ctypes.c_int(cmd), buffer, ctypes.c_uint(len(packed))))
        if self.name == "umount2" and self.targets[0] is not None:
            # a descriptor of the mount would keep it busy (EBUSY): its parent directory
            # is opened instead, and the call names the last component from there,
            # following nothing (as emulate_path.py's calls do)
            own_fds, placed = self._parent_of(self.targets[0])
        else:
            placed = [self._place(target) for target in self.targets]  # as systrace, before any change
        self._become()
        source = self.strings.get("source")
        if self.name == "mount" and source is not None and self.args[3] & (MS_BIND | MS_MOVE):
            os.fchdir(self.cwd)  # the kernel resolves a bind or move source as a path, once: so does this
            source = b"%d" % os.open(source, os.O_PATH | os.O_CLOEXEC)
        os.fchdir(own_fds)  # "N" below: /proc/self/fd/N, the object opened above
        number = SYS[self.name]
        if self.name == "mount":
            data = None if self.data is None else ctypes.create_string_buffer(self.data, PAGE)
            return check(libc.syscall(number, source, placed[0], self.strings.get("fstype"),
                                      ctypes.c_ulong(self.args[3]), data))
        if self.name == "umount2":
            return check(libc.syscall(number, placed[0], ctypes.c_int((self.args[1] | UMOUNT_NOFOLLOW) & 0xFFFFFFFF)))
        if self.name == "mount_setattr":  # on the descriptor opened (AT_EMPTY_PATH), the attributes read once
            attr = ctypes.create_string_buffer(self.data or b"", len(self.data or b""))
            flags = self.args[2] & 0xFFFFFFFF
            if placed[0]:
                fd, flags = int(placed[0]), (flags & ~AT_SYMLINK_NOFOLLOW) | AT_EMPTY_PATH
            else:  # (not opened: "" from the working directory, ENOENT after the kernel's checks)
                fd, flags = AT_FDCWD, flags & ~AT_EMPTY_PATH
            return check(libc.syscall(number, fd, b"", ctypes.c_uint(flags), attr, ctypes.c_size_t(len(attr))))
        if self.name == "quotactl":
            return self._quotactl(number, placed)
        if self.name == "pivot_root":
            return check(libc.syscall(number, placed[0], placed[1]))
        if self.name == "swapon":
            return check(libc.syscall(number, placed[0], ctypes.c_int(self.args[1] & 0xFFFFFFFF)))
        return check(libc.syscall(number, placed[0]))  # swapoff, acct (None: accounting off)

    def _quotactl(self, number: int, placed: list[bytes | None]) -> int:
        """quotactl on the checked block device (None: Q_SYNC of every file system) with
        Q_QUOTAON's checked quota file, or the copy of the caller's struct read once (the
        loop writes what the call wrote back: `written`)."""
        cmd = self.args[0] & 0xFFFFFFFF
        use, size = QUOTA_ADDR.get(cmd >> 8, ("", 0))
        addr: bytes | ctypes.Array[ctypes.c_char] | None = None
        if use == "path":
            addr = placed[1] if len(placed) > 1 else b""
        elif use and (use == "out" or self.data is not None):  # (an unreadable struct: NULL, EFAULT)
            addr = ctypes.create_string_buffer(self.data or b"", size)
        result = check(libc.syscall(number, ctypes.c_uint(cmd), placed[0], ctypes.c_uint(self.args[2] & 0xFFFFFFFF),
                                    addr))
        if use in ("out", "inout") and isinstance(addr, ctypes.Array):
            self.written = addr.raw[:size]
        return result

    def _place(self, target: bytes | int | None) -> bytes | None:
        """The name to give the kernel for a checked path argument: `N` of an O_PATH
        descriptor of it (None for acct's NULL)."""
        if target is None:  # missing at the check: an empty name, so that the kernel checks
            return b""  # what it checks first (flags, capabilities) and then fails with ENOENT
        if isinstance(target, int):
            raise EmulationError(errno.EACCES, "a descriptor path argument cannot be carried out")
        if target == b"":  # (acct(NULL): translated as no path)
            return None
        try:
            fd = openat2(self.root, target, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0,
                         RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        except OSError as error:  # (a missing name): the kernel's own checks come first, see run
            self.lookup_error = error.errno or errno.ENOENT
            return b""
        return b"%d" % fd

    def _parent_of(self, target: bytes | int) -> tuple[int, list[bytes | None]]:
        """(an O_PATH descriptor of the checked path's parent directory, [its last
        component]), opened through the tracee's root following nothing."""
        if not isinstance(target, bytes) or not target:
            raise EmulationError(errno.EACCES, "a descriptor path argument cannot be carried out")
        parent, _, name = target.rstrip(b"/").rpartition(b"/")
        try:
            fd = openat2(self.root, parent or b"/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                         RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        except OSError as error:  # as in _place: the kernel checks the flags first
            self.lookup_error = error.errno or errno.ENOENT
            return os.open("/", os.O_PATH | os.O_CLOEXEC), [b""]
        return fd, [name or b"."]

    def _become(self) -> None:
        """Join the tracee's namespaces, take its root and then its identity."""
        identity = self.identity
        try:
            if self.unprivileged:
                if self.userns >= 0:  # the user's own namespaces: their creator holds every capability there
                    check(libc.setns(self.userns, CLONE_NEWUSER))
                if self.mntns >= 0:
                    check(libc.setns(self.mntns, CLONE_NEWNS))
                if self.userns >= 0 or self.name not in ("quotactl", "bpf", "fsopen", "fsconfig"):
                    # (quotactl, bpf, fsopen and fsconfig as the user, who may call them,
                    # cannot chroot: every path of theirs is a descriptor opened in the
                    # tracee's root, or none, so they do not need it)
                    os.fchdir(self.root)
                    os.chroot(".")
                set_effective(identity.caps)  # the same ids as systrace's (checked in __init__)
                return
            if self.mntns >= 0:
                check(libc.setns(self.mntns, CLONE_NEWNS))
            os.fchdir(self.root)
            os.chroot(".")
            identity.apply()  # (in a helper: never undone)
            if self.userns >= 0:  # its creator's ids: full capabilities there, then exactly the tracee's
                check(libc.setns(self.userns, CLONE_NEWUSER))
                set_effective(identity.caps)
        except OSError as error:
            raise EmulationError(errno.EACCES, f"cannot become the tracee for its {self.name}: {error}") from None


def _differs(tid: int, kind: str) -> bool:
    return os.readlink(f"/proc/{tid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}")


def read_attr(read: object, address: int, size: int) -> bytes:
    """mount_setattr's struct mount_attr, read once as the kernel copies it (EINVAL
    below its first size, E2BIG above a page, EFAULT when unreadable)."""
    if size < MOUNT_ATTR_SIZE_VER0:
        raise OSError(errno.EINVAL, "struct mount_attr too small")
    if size > PAGE:
        raise OSError(errno.E2BIG, "struct mount_attr too large")
    try:
        return read(address, size)  # type: ignore[operator, no-any-return]
    except OSError:
        raise OSError(errno.EFAULT, "struct mount_attr unreadable") from None


def read_bpf_attr(read: object, cmd: int, address: int, size: int) -> tuple[int, int]:
    """BPF_OBJ_PIN's or BPF_OBJ_GET's union bpf_attr, read once and checked as the kernel
    checks it: (the object's descriptor number, GET's BPF_F_RDONLY/BPF_F_WRONLY). Raises
    OSError: E2BIG above a page, EFAULT unreadable, EINVAL for bytes beyond the fields
    that are not zero, other flags, a path_fd without BPF_F_PATH_FD, a GET's bpf_fd (the
    helper passes its own path_fd)."""
    size &= 0xFFFFFFFF
    if size > PAGE:
        raise OSError(errno.E2BIG, "union bpf_attr too large")
    try:
        attr = read(address, size) if size else b""  # type: ignore[operator]
    except OSError:
        raise OSError(errno.EFAULT, "union bpf_attr unreadable") from None
    attr = (attr + bytes(BPF_OBJ_ATTR.size))[:max(size, BPF_OBJ_ATTR.size)]
    if any(attr[BPF_OBJ_ATTR.size:]):
        raise OSError(errno.EINVAL, "union bpf_attr: fields BPF_OBJ_PIN does not use")
    _, number, flags, path_fd = BPF_OBJ_ATTR.unpack_from(attr)
    access = BPF_F_RDONLY | BPF_F_WRONLY if cmd != BPF_OBJ_PIN else 0
    if flags & ~(BPF_F_PATH_FD | access) or (path_fd and not flags & BPF_F_PATH_FD) or (access and number):
        raise OSError(errno.EINVAL, "BPF_OBJ_PIN/BPF_OBJ_GET flags")
    if flags & access == access and access:
        raise OSError(errno.EINVAL, "BPF_F_RDONLY with BPF_F_WRONLY")
    return int(number), flags & access


def read_quota_struct(read: object, cmd: int, address: int) -> bytes | None:
    """The struct a quotactl command reads from `address`, read once (None: it reads
    none, or it is unreadable: the helper passes NULL and the kernel says EFAULT after
    its own checks)."""
    use, size = QUOTA_ADDR.get((cmd & 0xFFFFFFFF) >> 8, ("", 0))
    if use not in ("in", "inout") or address == 0:
        return None
    try:
        return read(address, size)  # type: ignore[operator, no-any-return]
    except OSError:
        return None


def read_data(read: object, address: int) -> bytes | None:
    """mount's data argument as the kernel copies it: up to a page from `address`,
    stopping at the first unreadable byte's page (EFAULT when none is readable)."""
    if address == 0:
        return None
    reader = read  # memory.read(tid, address, size), raising on a short read
    first = PAGE - address % PAGE
    try:
        data: bytes = reader(address, first)  # type: ignore[operator]
    except OSError:
        raise OSError(errno.EFAULT, "mount data unreadable") from None
    if first < PAGE:
        try:
            data += reader(address + first, PAGE - first)  # type: ignore[operator]
        except OSError:
            pass  # the kernel stops at the first fault too
    return data
