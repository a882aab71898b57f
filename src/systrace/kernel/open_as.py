"""Write opens systrace cannot make itself, made by a helper that becomes the tracee.

Two kinds of write open could not be emulated in the loop, and were checked on their
path and then continued (the kernel read the path again: a second thread swapping it
in between opened what it liked, a cgroup file that freezes systrace included):

- `/proc/PID/uid_map`, `gid_map`, `setgroups`, `projid_map`. A write to one is checked
  against the credentials of whoever *opened* it (its user namespace, euid, egid and
  capabilities: kernel/user_namespace.c `map_write`, `new_idmap_permitted`). Opened by
  systrace, the write would be judged as systrace's. So a helper takes the tracee's
  ids, groups and capabilities, joins its user namespace when it is another one (the
  tracee's usual case: `unshare(CLONE_NEWUSER)` then its own map), and reopens the
  file systrace checked through systrace's O_PATH descriptor of it: the inode checked,
  opened with the tracee's credentials as opener.
- an open in another mount namespace than systrace's. The path names another file
  there, and systrace's view of it proves nothing. A helper takes the tracee's root and
  working directory (or the directory descriptor it gave, taken with pidfd_getfd), its
  identity, opens the path as the tracee gives it, and then checks *what it opened*.
  A cgroup file (a cgroup holding systrace may be mounted anywhere there) is refused
  when it moves processes (`cgroup.procs`, `cgroup.threads`, `tasks`), or when its
  directory is a cgroup holding systrace, or is of a hierarchy systrace's own mount
  table does not show: its directory is opened by the name the kernel gives the file
  there, checked to hold that very file (device and inode), and compared by device and
  inode with the directories holding systrace in systrace's view (every mount of one
  hierarchy shares its super block; a cgroup's inode is its kernfs id, the same in
  every mount and cgroup namespace). On a proc file system no `ns_last_pid`, `pid_max`,
  nor an entry of systrace or a helper. The check is on the opened object, so a swapped
  path changes nothing. Needs root (chroot into the tracee's root), or the user's own
  user and mount namespaces: otherwise refused.

The helper passes the descriptor back (kernel/worker.py's Deferred); systrace installs
it with ADDFD. An open that may wait (a FIFO, FUSE) waits in the helper only."""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from . import closer, mounts, namespaces, opener_devices
from .emulate import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, _verify, openat2
from .emulate_identity import EmulationError, set_effective, tracee_identity
from .handed_procfs import OWN_ENTRY, PROC_SUPER_MAGIC, names_systrace
from .libc import check, libc
from .opener_namespaces import KINDS, Joining, permitted_caps
from .opener_namespaces import field as _field
from .opener_namespaces import set_caps as _set_caps
from .resolve_flags import starting_directory
from .worker import Deferred, _defer

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .landlock_domain import Domain

CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
PR_SET_KEEPCAPS = 8
CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC = 0x27E0EB, 0x63677270
PID_ALLOCATION = (b"/sys/kernel/ns_last_pid", b"/sys/kernel/pid_max")
_STATFS = ctypes.create_string_buffer(120)  # struct statfs; f_type is its first word
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def map_file(notif_id: int, tid: int, probe: int, flags: int, status: bytes, listener_fd: int) -> Deferred:
    """Reopen `probe` (systrace's O_PATH descriptor of the checked map file) in a helper
    whose credentials, as opener, are the tracee's."""
    uids, gids = [int(v) for v in _field(status, b"Uid")], [int(v) for v in _field(status, b"Gid")]
    groups = [int(v) for v in _field(status, b"Groups")]
    caps = [int(_field(status, name)[0], 16) for name in (b"CapEff", b"CapPrm", b"CapInh")]
    own_userns = os.readlink("/proc/self/ns/user")
    userns = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    foreign = os.readlink(f"/proc/{tid}/ns/user") != own_userns
    if not foreign and os.geteuid() != 0 and (uids[1], gids[1]) != (os.geteuid(), os.getegid()):
        os.close(userns)
        raise EmulationError(errno.EACCES, "the tracee's credentials differ from systrace's, which is not root")

    def job() -> int:
        try:
            # the tracee's ids and groups, keeping systrace's capabilities for setns
            libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
            if os.geteuid() == 0:
                os.setgroups(groups)
            os.setresgid(gids[0], gids[1], gids[2])
            os.setresuid(uids[0], uids[1], uids[2])
            if foreign:
                permitted = permitted_caps()
                _set_caps(permitted, permitted, 0)
                check(libc.setns(userns, CLONE_NEWUSER))  # full capabilities there, as its creator has
            _set_caps(caps[0], caps[1], caps[2])  # then exactly the tracee's
        except OSError as error:
            raise EmulationError(errno.EACCES, f"cannot take the tracee's identity for its map file: {error}") from None
        return os.open(f"/proc/self/fd/{probe}", (flags & ~(os.O_NOFOLLOW | os.O_CREAT)) | os.O_CLOEXEC)

    try:
        return _defer(notif_id, tid, listener_fd, job)
    finally:
        os.close(userns)


class SystraceCgroups:
    """systrace's cgroups, as its own view shows them: the (device, inode) of every
    directory whose cgroup holds systrace, and the devices of every cgroup hierarchy
    mounted there (read in systrace, before the helper leaves its view)."""

    def __init__(self) -> None:
        self.holding: set[tuple[int, int]] = set()
        self.devices: set[int] = set()
        table = mounts.MountTable()
        try:
            mounted = table.mounts()
        finally:
            table.close()
        for point, kind, _ in mounted:
            if kind in ("cgroup", "cgroup2"):
                try:
                    self.devices.add(os.stat(point).st_dev)
                except OSError:
                    continue
        try:
            with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
                directories = mounts.cgroups_holding_me(mounted, handle.read())
        except OSError:
            directories = []
            self.devices.clear()  # cannot tell which hold systrace: every cgroup file is refused
        for directory in directories:
            try:
                found = os.stat(directory)
            except OSError:  # a cgroup of systrace's it cannot name: every cgroup file is refused
                self.devices.clear()
                break
            self.holding.add((found.st_dev, found.st_ino))

    def refused(self, fd: int, own_fds: int) -> str:
        """Why the cgroup file `fd` may not be written ("": it may)."""
        name = os.fsencode(os.readlink(str(fd), dir_fd=own_fds))  # as the tracee's root shows it
        directory, _, base = name.rpartition(b"/")
        if base in (b"cgroup.procs", b"cgroup.threads", b"tasks"):
            return "moves processes between cgroups (systrace's could be one), whatever the policy says"
        opened = os.fstat(fd)
        if opened.st_dev not in self.devices:
            return "a cgroup file of a hierarchy systrace's mount table does not show, opened for writing"
        try:
            parent = os.open(directory or b"/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return "a cgroup file whose directory cannot be found again"
        try:
            inside = os.stat(base, dir_fd=parent, follow_symlinks=False)
            held = os.fstat(parent)
        except OSError:
            return "a cgroup file whose directory cannot be found again"
        finally:
            os.close(parent)
        if (inside.st_dev, inside.st_ino) != (opened.st_dev, opened.st_ino):
            return "a cgroup file whose directory cannot be found again"  # renamed meanwhile: fail closed
        if (held.st_dev, held.st_ino) in self.holding:
            return "a cgroup that holds systrace (freeze, kill, limits), whatever the policy says"
        return ""


def in_own_view(notif_id: int, tid: int, tgid: int, path: bytes, dirfd: int, flags: int, mode: int, status: bytes,
                listener_fd: int, refused_pids: set[int], domain: Domain | None = None) -> Deferred:
    """Open `path` (as the tracee gave it, relative to its `dirfd`) in the tracee's own
    mount namespace, root and working directory, as the tracee; refuse what it opened
    when it is a file no call may change (module docstring)."""
    identity = tracee_identity(status, tid)
    cgroups = SystraceCgroups()  # in systrace's view, before the helper takes the tracee's
    # a tracee in a user namespace of its own opens as a member of it: the kernel judges
    # some files by their opener's namespace (a FUSE mount's /dev/fuse descriptor)
    userns = -1
    if os.readlink(f"/proc/{tid}/ns/user") != os.readlink("/proc/self/ns/user"):
        userns = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    unprivileged = os.geteuid() != 0
    if unprivileged and (userns < 0 or identity.euid != os.geteuid()):
        if userns >= 0:
            os.close(userns)
        raise EmulationError(errno.EACCES, "a write open in another mount namespace, and systrace is not root")
    root = mountns = start = -1
    others: dict[int, int] = {}  # its network and IPC namespaces when they are its own: joined too
    try:  # every descriptor opened below is closed whatever fails (the tracee may be gone)
        root = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        mountns = os.open(f"/proc/{tid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC) if unprivileged else -1
        for kind, flag in KINDS.items():
            if namespaces.differs(tid, kind):
                others[os.open(f"/proc/{tid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)] = flag
        facts = opener_devices.opener_facts(tid)  # (read here: the helper leaves systrace's /proc)
        if others:  # /dev/net/tun opened there is the tracee's (kernel/opener_namespaces.py)
            facts = (facts[0], facts[1], facts[2] and CLONE_NEWNET not in others.values())
        if not path.startswith(b"/"):
            start = starting_directory(tid, tgid, dirfd)
        creating = bool(flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)))

        def job() -> int:
            own_fds = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # before the chroot
            try:
                if unprivileged:  # the user's own namespaces: their creator has every capability there
                    check(libc.setns(userns, CLONE_NEWUSER))
                    check(libc.setns(mountns, CLONE_NEWNS))
                for fd, flag in others.items():  # what /proc/sys/net, the IPC sysctls, a tun device are
                    check(libc.setns(fd, flag))
            except OSError as error:
                raise EmulationError(errno.EACCES, f"cannot join the tracee's namespaces: {error}") from None
            try:
                os.fchdir(root)
                os.chroot(".")
                if start >= 0:
                    os.fchdir(start)
            except OSError as error:
                raise EmulationError(errno.EACCES, f"cannot take the tracee's root: {error}") from None
            if unprivileged:
                if creating:
                    os.umask(identity.umask)
                set_effective(identity.caps)  # the same ids as systrace's (checked above)
            else:
                identity.apply(creating)  # (a helper: never undone)
            if userns >= 0 and not unprivileged:
                try:  # its creator's ids: full capabilities there, then exactly the tracee's
                    check(libc.setns(userns, CLONE_NEWUSER))
                    set_effective(identity.caps)
                except OSError as error:
                    raise EmulationError(errno.EACCES, f"cannot join the tracee's user namespace: {error}") from None
            fd = os.open(path, flags | os.O_CLOEXEC, mode)
            opened = os.fstat(fd)
            if stat.S_ISCHR(opened.st_mode):
                try:  # /dev/tty, /dev/net/tun: the helper's own terminal and network namespace are systrace's
                    opener_devices.check_facts(opened.st_rdev, facts)
                except BaseException:
                    os.close(fd)
                    raise
            reason = _refused(fd, own_fds, refused_pids, cgroups)
            if reason:
                os.close(fd)
                # systrace's or a helper's entry: as for a process gone (SECURITY.md)
                raise EmulationError(errno.ENOENT if reason == OWN_ENTRY else errno.EACCES, reason)
            return fd

        return _defer(notif_id, tid, listener_fd, job, domain)
    finally:
        if start >= 0:
            closer.close_taken(start)  # (the tracee's own open file: its last close may wait)
        for fd in (root, userns, mountns, *others):
            if fd >= 0:
                os.close(fd)


def in_namespaces(notif_id: int, tid: int, checked_path: bytes, flags: int, mode: int, status: bytes,
                  root: str | None, kinds: tuple[str, ...], listener_fd: int, valid: Callable[[], bool],
                  domain: Domain | None = None) -> Deferred | None:
    """Open the checked path (systrace's mount namespace, the tracee's root) in a helper
    that joined the thread's namespaces of `kinds` and its user namespace, as the tracee:
    a /proc entry or device the kernel resolves by its opener's namespace is then the
    tracee's, as natively (kernel/opener_namespaces.py). `valid()`: is the call still
    there, asked once its namespaces are open (None when it is not: TID may name
    another thread by now)."""
    if not checked_path.startswith(b"/"):
        raise EmulationError(errno.EACCES, f"not a path: {checked_path!r}")
    joining = Joining(tid, kinds, status)
    root_fd = -1
    try:
        facts = opener_devices.opener_facts(tid)
        if "net" in joining.fds:
            facts = (facts[0], facts[1], False)  # the helper's network namespace is the tracee's
        if root is None:
            root = os.readlink(f"/proc/{tid}/root")
        resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
        if root != "/":
            root_fd = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            resolve |= RESOLVE_IN_ROOT
        shown_root = root
        if not valid():
            return None

        def job() -> int:
            joining.enter()
            if flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)):
                os.umask(int(_field(status, b"Umask")[0], 8))
            # O_NOCTTY: a terminal opened here must not become the helper's (it ends at once)
            fd = openat2(root_fd if root_fd >= 0 else -100, checked_path, flags | os.O_CLOEXEC | os.O_NOCTTY,
                         mode, resolve)
            _verify(fd, checked_path, shown_root)  # (closes it when it is not the checked path)
            opened = os.fstat(fd)
            if stat.S_ISCHR(opened.st_mode):
                try:  # /dev/tty: the helper's terminal is systrace's
                    opener_devices.check_facts(opened.st_rdev, facts)
                except BaseException:
                    os.close(fd)
                    raise
            return fd

        return _defer(notif_id, tid, listener_fd, job, domain)
    finally:
        joining.close()
        if root_fd >= 0:
            os.close(root_fd)


def _refused(fd: int, own_fds: int, refused_pids: set[int], cgroups: SystraceCgroups) -> str:
    """Why what `fd` opened may not be written from another mount namespace ("": it may)."""
    check(libc.fstatfs(fd, _STATFS))
    kind = int.from_bytes(_STATFS.raw[:8], "little")
    if kind in (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC):
        return cgroups.refused(fd, own_fds)
    if kind == PROC_SUPER_MAGIC:
        name = os.fsencode(os.readlink(str(fd), dir_fd=own_fds))  # as the tracee's root shows it
        if name.endswith(PID_ALLOCATION):
            return "chooses the pids systrace's helpers get, whatever the policy says"
        if names_systrace(name, refused_pids.__contains__):
            return OWN_ENTRY
    return ""
