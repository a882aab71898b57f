"""The rows of the system call facts table (see __init__.py for what each field means).

Argument counts and classes follow strace's syscallent for x86_64; errno tables come
from the man pages (only errors a call can really return); reach and arguments are
systrace's own reading of what each call acts on."""

from __future__ import annotations

from errno import (
    E2BIG,
    EACCES,
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    EAGAIN,
    EBUSY,
    ECONNABORTED,
    ECONNREFUSED,
    EDQUOT,
    EEXIST,
    EFBIG,
    EINTR,
    EIO,
    ELOOP,
    EMFILE,
    EMLINK,
    ENAMETOOLONG,
    ENETUNREACH,
    ENFILE,
    ENOBUFS,
    ENOENT,
    ENOMEM,
    ENOSPC,
    ENOTDIR,
    ENOTEMPTY,
    EPERM,
    EROFS,
    ETIMEDOUT,
    ETXTBSY,
    EXDEV,
)

from ..record import record
from ..translate import formats
from .args import (
    ArgSpec,
    ArgvArg,
    FdArg,
    HandleArg,
    IntArg,
    MsgNameArg,
    OpenHowArg,
    PathArg,
    PidArg,
    SockaddrArg,
    StrArg,
    UnameArg,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

SELF = "self"  # acts only on the calling process
HELD = "held"  # on descriptors it holds, within the access their open granted
OUTSIDE = "outside"  # on anything else: files, processes, the terminal, mounts, network, system
FD_FORM = "/fd"  # fault-set key suffix of a call's descriptor form (newfstatat/fd)


@record
class Row:
    name: str
    nargs: int
    classes: frozenset[str]
    reach: str
    args: tuple[ArgSpec, ...] = ()
    errnos: tuple[int, ...] = ()
    failure: str = "errno"  # "errno", "old-break", "none"
    kernel: str | None = None  # baseline.py: "allowed", "never-fail", "plumbing", "process", "refused", "notified"
    emulated: bool = False
    alias: str | None = None
    fd_errnos: tuple[int, ...] | None = None  # the descriptor form's errors (None: no such form)
    faultable: bool = True  # False: never failed by fault injection (README "Never failed")
    deny: int = EPERM
    learn: tuple[str, ...] | None = None  # the translated arguments a learned rule names (None: all but `fd`)
    base: str | None = None  # the learned policies' base rule for the part of an OUTSIDE call on itself
    invalidates: str | None = None  # what of the supervisor's caches it changes: "exec", "credentials"

    @property
    def route(self) -> str:
        """Where the call is decided: "kernel", "emulated" or "routed"."""
        if self.kernel not in (None, "notified"):
            return "kernel"
        return "emulated" if self.emulated else "routed"


ROWS: dict[str, Row] = {}


_CLASSES: dict[str, frozenset[str]] = {}  # (25 distinct strings for 380 rows: one frozenset each)


def _row(name: str, nargs: int, classes: str, reach: str, *args: ArgSpec, **fields: Any) -> None:
    klass = _CLASSES.get(classes)
    if klass is None:
        klass = _CLASSES[classes] = frozenset(classes.split())
    if "deny" not in fields:
        fields["deny"] = EACCES if "file" in klass and reach == OUTSIDE else ENOMEM if "memory" in klass else EPERM
    if fields.get("failure") == "none" or fields.get("kernel") in ("allowed", "never-fail", "plumbing", "process"):
        fields.setdefault("faultable", False)
    ROWS[name] = Row(name, nargs, klass, reach, tuple(args), **fields)


def _rows(names: str, nargs: int, classes: str, reach: str, *args: ArgSpec, **fields: Any) -> None:
    for name in names.split():
        _row(name, nargs, classes, reach, *args, **fields)


# -- argument shorthands -----------------------------------------------------------------
NOFOLLOW = False


def _oflags(i: int) -> IntArg:
    return IntArg("oflags", i, formats.oflags)


def _mode(i: int) -> IntArg:
    return IntArg("mode", i, formats.mode)


def _uid(i: int) -> IntArg:
    return IntArg("uid", i, formats.decimal)


def _gid(i: int) -> IntArg:
    return IntArg("gid", i, formats.decimal)


def _prot(i: int) -> IntArg:
    return IntArg("prot", i, formats.prot)


def _sig(i: int) -> IntArg:
    return IntArg("signame", i, formats.signame)


def _num(name: str, i: int) -> IntArg:
    return IntArg(name, i, formats.decimal)


def _hex(name: str, i: int, width: int = 32) -> IntArg:
    return IntArg(name, i, formats.hexadecimal if width == 32 else formats.hexadecimal64, width=width)


P = PathArg
Q_QUOTAON = 0x800002  # quotactl's command turning quotas on from a quota file (QCMD's high bits)
FD0 = FdArg(0)

# -- errno tables (man pages) -------------------------------------------------------------
_OPEN = (ENOENT, EACCES, EMFILE, ENFILE, ENOMEM, ENOSPC, EROFS, ELOOP, ENAMETOOLONG, EDQUOT)
_STAT = (ENOENT, EACCES, ENOMEM, ELOOP, ENAMETOOLONG, ENOTDIR)
_FSTAT = (ENOMEM,)  # a descriptor names no path: none of ENOENT ENOTDIR ELOOP EACCES...
_ACCESS = (ENOENT, EACCES, EROFS, ELOOP)
_READ = (EIO, EINTR, EAGAIN)
_WRITE = (ENOSPC, EIO, EDQUOT, EINTR)
_REMOVE = (EACCES, EBUSY, EIO, EPERM, EROFS, ENOENT)
_MAKE = (EACCES, EEXIST, ENOSPC, EROFS, EDQUOT, ENOENT, EMLINK)
_RENAME = (EACCES, EBUSY, EXDEV, ENOSPC, EROFS, ENOTEMPTY, EDQUOT)
_ATTR = (EACCES, EIO, EPERM, EROFS, ENOENT)
_FATTR = (EIO, EPERM, EROFS)
_TRUNC = (EIO, EFBIG, EINTR, EACCES)
_SYNC = (EIO, ENOSPC, EDQUOT)
_FDS = (EMFILE, ENFILE)
_FDS_MEM = (EMFILE, ENFILE, ENOMEM)
_EXEC = (E2BIG, EACCES, ENOENT, ENOMEM, ETXTBSY)
_WAIT = (EINTR,)
_POLL = (EINTR, ENOMEM)
_MEM = (ENOMEM,)

# -- files by name ------------------------------------------------------------------------
_row("open", 3, "desc file", OUTSIDE, P(0), _oflags(1), _mode(2), errnos=_OPEN, emulated=True, alias="open")
_row("openat", 4, "desc file", OUTSIDE, P(1, dirfd=0), _oflags(2), _mode(3), errnos=_OPEN, emulated=True,
     alias="open")
_row("openat2", 4, "desc file", OUTSIDE, P(1, dirfd=0), OpenHowArg(2, 3), errnos=_OPEN, emulated=True, alias="open")
_row("creat", 2, "desc file", OUTSIDE, P(0), _mode(1), errnos=_OPEN, emulated=True, alias="open")
_row("stat", 2, "file stat", OUTSIDE, P(0), errnos=_STAT, alias="fsread")
_row("lstat", 2, "file stat", OUTSIDE, P(0, follow=NOFOLLOW), errnos=_STAT, alias="fsread")
_FD_FORM = 'fd match "*"'  # true only for the descriptor form: the path form has no `fd`
_row("newfstatat", 4, "desc file stat", OUTSIDE, P(1, dirfd=0, flags=3), errnos=_STAT, alias="fsread",
     fd_errnos=_FSTAT, base=_FD_FORM)
_row("statx", 5, "desc file stat", OUTSIDE, P(1, dirfd=0, flags=2), errnos=_STAT, alias="fsread", fd_errnos=_FSTAT,
     base=_FD_FORM)
_row("access", 2, "file", OUTSIDE, P(0), errnos=_ACCESS, alias="fsread")
_row("faccessat", 3, "desc file", OUTSIDE, P(1, dirfd=0), errnos=_ACCESS, alias="fsread")
_row("faccessat2", 4, "desc file", OUTSIDE, P(1, dirfd=0, flags=3), errnos=_ACCESS, alias="fsread",
     fd_errnos=(EACCES, EROFS))
_row("readlink", 3, "file", OUTSIDE, P(0, follow=NOFOLLOW), errnos=_STAT, alias="fsread")
_row("readlinkat", 4, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), errnos=_STAT, alias="fsread")
_rows("getxattr listxattr", 4, "file", OUTSIDE, P(0), alias="fsread")
_rows("lgetxattr llistxattr", 4, "file", OUTSIDE, P(0, follow=NOFOLLOW), alias="fsread")
_rows("getxattrat listxattrat", 6, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), alias="fsread", fd_errnos=())
_row("file_getattr", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=4, nullable=True), alias="fsread", fd_errnos=())
_row("statfs", 2, "file", OUTSIDE, P(0), errnos=_STAT, alias="fsread")
_row("chdir", 1, "file", OUTSIDE, P(0), errnos=(ENOENT, EACCES, ENOTDIR), alias="fsread")
_rows("setxattr removexattr", 5, "file", OUTSIDE, P(0), alias="fswrite")
_rows("lsetxattr lremovexattr", 5, "file", OUTSIDE, P(0, follow=NOFOLLOW), alias="fswrite")
_rows("setxattrat removexattrat", 6, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), alias="fswrite", fd_errnos=())
_row("file_setattr", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=4, nullable=True), alias="fswrite", fd_errnos=())
_row("unlink", 1, "file", OUTSIDE, P(0, follow=NOFOLLOW), errnos=_REMOVE, alias="fswrite")
_row("unlinkat", 3, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), errnos=_REMOVE, alias="fswrite")
_row("rmdir", 1, "file", OUTSIDE, P(0, follow=NOFOLLOW), errnos=_REMOVE, alias="fswrite")
_row("mkdir", 2, "file", OUTSIDE, P(0, follow=NOFOLLOW), _mode(1), errnos=_MAKE, alias="fswrite")
_row("mkdirat", 3, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), _mode(2), errnos=_MAKE, alias="fswrite")
_row("rename", 2, "file", OUTSIDE, P(0, follow=NOFOLLOW), P(1, follow=NOFOLLOW), errnos=_RENAME, alias="fswrite")
_row("renameat", 4, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), P(3, dirfd=2, follow=NOFOLLOW),
     errnos=_RENAME, alias="fswrite")
_row("renameat2", 5, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), P(3, dirfd=2, follow=NOFOLLOW),
     _hex("flags", 4), errnos=_RENAME, alias="fswrite")
_row("link", 2, "file", OUTSIDE, P(0, follow=NOFOLLOW), P(1, follow=NOFOLLOW), errnos=_MAKE, alias="fswrite")
_row("linkat", 5, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW, flags=4, follow_flag=True),
     P(3, dirfd=2, follow=NOFOLLOW), errnos=_MAKE, alias="fswrite")
_row("symlink", 2, "file", OUTSIDE, P(1, follow=NOFOLLOW), StrArg("target", 0), errnos=_MAKE, alias="fswrite")
_row("symlinkat", 3, "desc file", OUTSIDE, P(2, dirfd=1, follow=NOFOLLOW), StrArg("target", 0), errnos=_MAKE,
     alias="fswrite")
_row("truncate", 2, "file", OUTSIDE, P(0), errnos=_TRUNC, alias="fswrite")
_row("chmod", 2, "file", OUTSIDE, P(0), _mode(1), errnos=_ATTR, alias="fswrite")
_row("fchmodat", 3, "desc file", OUTSIDE, P(1, dirfd=0), _mode(2), errnos=_ATTR, alias="fswrite")
_row("fchmodat2", 4, "desc file", OUTSIDE, P(1, dirfd=0, flags=3), _mode(2), errnos=_ATTR, alias="fswrite",
     fd_errnos=_FATTR)
_row("chown", 3, "file", OUTSIDE, P(0), _uid(1), _gid(2), errnos=_ATTR, alias="fswrite")
_row("lchown", 3, "file", OUTSIDE, P(0, follow=NOFOLLOW), _uid(1), _gid(2), errnos=_ATTR, alias="fswrite")
_row("fchownat", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=4), _uid(2), _gid(3), errnos=_ATTR, alias="fswrite",
     fd_errnos=_FATTR)
_row("mknod", 3, "file", OUTSIDE, P(0, follow=NOFOLLOW), _mode(1), errnos=_MAKE, alias="fswrite")
_row("mknodat", 4, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW), _mode(2), errnos=_MAKE, alias="fswrite")
_rows("utime utimes", 2, "file", OUTSIDE, P(0), alias="fswrite")
_row("utimensat", 4, "desc file", OUTSIDE, P(1, dirfd=0, flags=3, nullable=True), errnos=_ATTR, alias="fswrite",
     fd_errnos=_FATTR)
_row("futimesat", 3, "desc file", OUTSIDE, P(1, dirfd=0), alias="fswrite")
_row("execve", 3, "file process", OUTSIDE, P(0), ArgvArg(1), errnos=_EXEC, kernel="notified", invalidates="exec")
_row("execveat", 5, "desc file process", OUTSIDE, P(1, dirfd=0, flags=4), ArgvArg(2), errnos=_EXEC,
     kernel="notified", fd_errnos=(E2BIG, EACCES, ENOMEM, ETXTBSY), invalidates="exec")
_row("chroot", 1, "file", OUTSIDE, P(0), kernel="notified")  # its new root is checked (decide/roots.py)
_row("pivot_root", 2, "file", OUTSIDE, P(0), P(1))
_row("acct", 1, "file", OUTSIDE, P(0, nullable=True))  # NULL: accounting off
_row("swapon", 2, "file", OUTSIDE, P(0))
_row("swapoff", 1, "file", OUTSIDE, P(0))
_row("uselib", 1, "file", OUTSIDE, P(0))
_row("mount", 5, "file", OUTSIDE, StrArg("source", 0), P(1), StrArg("fstype", 2), _hex("flags", 3, width=64))
_row("umount2", 2, "file", OUTSIDE, P(0, follow=NOFOLLOW), _hex("flags", 1))
# quotactl: the block device (NULL: Q_SYNC of every file system) and, for Q_QUOTAON only,
# the quota file (its addr); quotactl_fd's addr is never a path (the kernel passes no
# path to Q_QUOTAON there: EINVAL)
_row("quotactl", 4, "file", OUTSIDE, _hex("cmd", 0), P(1, nullable=True), _num("id", 2),
     P(3, only_for=(0, 8, (Q_QUOTAON,))))
_row("inotify_add_watch", 3, "desc file", OUTSIDE, P(1), _hex("mask", 2))
_row("fanotify_mark", 5, "desc file", OUTSIDE, P(4, dirfd=3, nullable=True), _hex("flags", 1), _hex("mask", 2))
_row("name_to_handle_at", 5, "desc file", OUTSIDE, P(1, dirfd=0, follow=NOFOLLOW, flags=4, follow_flag=True), fd_errnos=())
_row("open_tree", 3, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), _hex("flags", 2), fd_errnos=())
_row("open_tree_attr", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), _hex("flags", 2), fd_errnos=())
_row("move_mount", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=4), P(3, dirfd=2), fd_errnos=())
_row("fspick", 3, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), fd_errnos=())
_row("mount_setattr", 5, "desc file", OUTSIDE, P(1, dirfd=0, flags=2), fd_errnos=())
_row("open_by_handle_at", 3, "desc file", OUTSIDE, FdArg(0), HandleArg(1), _oflags(2))
_row("getcwd", 2, "file", SELF, errnos=(ENOENT, EACCES))

# -- descriptors the process holds --------------------------------------------------------
_rows("read readv", 3, "desc", HELD, errnos=_READ)
_rows("pread64 preadv", 4, "desc", HELD, errnos=_READ)
_row("preadv2", 6, "desc", HELD, errnos=_READ)
_rows("write writev", 3, "desc", HELD, errnos=_WRITE)
_rows("pwrite64 pwritev", 4, "desc", HELD, errnos=_WRITE)
_row("pwritev2", 6, "desc", HELD, errnos=_WRITE)
_row("lseek", 3, "desc", HELD)
_row("fstat", 2, "desc stat", HELD, errnos=(EIO, ENOMEM))
_row("fstatfs", 2, "desc", HELD, errnos=(EIO, ENOMEM))
_rows("fsync fdatasync", 1, "desc", HELD, errnos=_SYNC)
_row("sync_file_range", 4, "desc", HELD, errnos=_SYNC)
_row("syncfs", 1, "desc", HELD)
_row("ftruncate", 2, "desc", HELD, errnos=_TRUNC)  # needs a descriptor open for writing
_row("fallocate", 4, "desc", HELD)
_row("fadvise64", 4, "desc", HELD)
_row("readahead", 3, "desc", HELD)
_row("flock", 2, "desc", HELD)
_rows("fgetxattr", 4, "desc", HELD)
_rows("flistxattr", 3, "desc", HELD)
_rows("getdents getdents64", 3, "desc", HELD, errnos=(ENOENT,))
_row("fchdir", 1, "desc", HELD, IntArg("fd", 0, formats.decimal), errnos=(EACCES,))
_row("cachestat", 4, "desc", HELD)
_rows("splice", 6, "desc", HELD)
_rows("tee vmsplice", 4, "desc", HELD)
_row("sendfile", 4, "desc network", HELD)
_row("copy_file_range", 6, "desc", HELD)
_rows("select", 5, "desc", HELD, errnos=_POLL)
_row("pselect6", 6, "desc", HELD, errnos=_POLL)
_row("poll", 3, "desc", HELD, errnos=_POLL)
_row("ppoll", 5, "desc", HELD, errnos=_POLL)
_row("epoll_wait", 4, "desc", HELD, errnos=_POLL)
_row("epoll_ctl", 4, "desc", HELD, errnos=(ENOMEM, ENOSPC))
_row("epoll_pwait", 6, "desc", HELD, errnos=_POLL)
_row("epoll_pwait2", 6, "desc", HELD, errnos=_POLL)
_rows("epoll_ctl_old epoll_wait_old", 4, "desc", HELD)
_rows("epoll_create epoll_create1", 1, "desc", HELD, errnos=_FDS_MEM)
# pipe and pipe2 are plumbing: routed, a pipe() hit by a signal before the supervisor
# receives it fails with EINTR, which it never does natively, and dash (SIGCHLD handler
# without SA_RESTART) then says "Pipe call failed" (measured: 5 EINTR in 300 calls under -A).
_rows("pipe", 1, "desc", HELD, errnos=_FDS, kernel="plumbing")
_rows("pipe2", 2, "desc", HELD, errnos=_FDS, kernel="plumbing")
_row("eventfd", 1, "desc", HELD, errnos=_FDS_MEM)
_row("eventfd2", 2, "desc", HELD, errnos=_FDS_MEM)
_row("signalfd", 3, "desc signal", HELD, errnos=_FDS)
_row("signalfd4", 4, "desc signal", HELD, errnos=_FDS)
_row("timerfd_create", 2, "desc", HELD, errnos=_FDS)
_row("timerfd_settime", 4, "desc", HELD)
_row("timerfd_gettime", 2, "desc", HELD)
_row("inotify_init", 0, "desc", HELD, errnos=_FDS)
_row("inotify_init1", 1, "desc", HELD, errnos=_FDS)
_row("inotify_rm_watch", 2, "desc", HELD)
_row("memfd_create", 2, "desc", HELD, StrArg("name", 0), errnos=_FDS)  # an anonymous file of its own
_row("memfd_secret", 1, "desc memory", HELD)
_row("close", 1, "desc", HELD, kernel="plumbing")
_rows("dup", 1, "desc", HELD, kernel="plumbing")
_rows("dup2", 2, "desc", HELD, kernel="plumbing")
_rows("dup3", 3, "desc", HELD, kernel="plumbing")
_row("close_range", 3, "desc", HELD)
# F_SETOWN / F_SETOWN_EX name a process that gets SIGIO: learned, not in the base
_row("fcntl", 3, "desc", OUTSIDE, IntArg("fd", 0, formats.decimal), IntArg("cmd", 1, formats.fcntl_cmd),
     base='cmd neq "F_SETOWN" and cmd neq "F_SETOWN_EX"')
# the terminal, devices, files: learned by request (TIOCSTI types into the terminal) and by
# what the descriptor names (FS_IOC_SETFLAGS changes a file through a read-only descriptor:
# learned on one file it must not reach another; a pseudo-terminal is any /dev/pts/N,
# generalise.py); the base has the requests that only read the descriptor's state
_row("ioctl", 3, "desc", OUTSIDE, FD0, IntArg("request", 1, formats.ioctl_request), learn=("request", "fdname"),
     base=" or ".join(f'request eq "{name}"' for name in ("TCGETS", "TIOCGWINSZ", "FIONREAD", "TIOCGPGRP", "FIOCLEX",
                                                            "FIONCLEX", "FIONBIO", "TCGETS2", "TIOCGPTN")))
_row("fchmod", 2, "desc", OUTSIDE, FD0, _mode(1), errnos=_FATTR)  # changes the file: no write access needed
_row("fchown", 3, "desc", OUTSIDE, FD0, _uid(1), _gid(2), errnos=_FATTR)
_rows("fsetxattr fremovexattr", 5, "desc", OUTSIDE, FD0)
_row("io_setup", 2, "memory", SELF)
_row("io_destroy", 1, "memory", SELF)
_rows("io_submit io_cancel", 3, "desc", HELD)
_row("io_getevents", 5, "desc", HELD)
_row("io_pgetevents", 6, "desc", HELD)
_rows("io_uring_setup", 2, "desc", OUTSIDE, kernel="refused")
_rows("io_uring_enter", 6, "desc", OUTSIDE, kernel="refused")
_rows("io_uring_register", 4, "desc", OUTSIDE, kernel="refused")

# -- network ---------------------------------------------------------------------------------
_SOCK = (IntArg("sockdom", 0, formats.sockdom), IntArg("socktype", 1, formats.socktype))
# the protocol too: a netlink socket learned for NETLINK_ROUTE (getaddrinfo) must not be a
# NETLINK_SOCK_DIAG one (every socket of the machine) or NETLINK_AUDIT
_row("socket", 3, "network", OUTSIDE, *_SOCK, _num("protocol", 2),
     errnos=(EACCES, EAFNOSUPPORT, EMFILE, ENFILE, ENOBUFS, ENOMEM))
_row("socketpair", 4, "network", HELD, *_SOCK, errnos=_FDS)
_row("connect", 3, "network", OUTSIDE, SockaddrArg(1, 2), emulated=True,
     errnos=(ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EACCES, EADDRNOTAVAIL, EINTR))
_row("bind", 3, "network", OUTSIDE, SockaddrArg(1, 2), emulated=True, errnos=(EADDRINUSE, EACCES, EADDRNOTAVAIL))
# a destination address reaches out; none (a connected socket) is a write to a held descriptor
_CONNECTED = 'sockaddr eq "<no address>"'
# (emulated: a send to a destination a rule decided on; without one it is continued)
_row("sendto", 6, "network", OUTSIDE, SockaddrArg(4, 5), errnos=(ENOBUFS, EAGAIN, EINTR, ENOMEM), base=_CONNECTED,
     emulated=True)
_row("sendmsg", 3, "network", OUTSIDE, MsgNameArg(1), errnos=(ENOBUFS, EAGAIN, EINTR, ENOMEM), base=_CONNECTED,
     emulated=True)
_row("sendmmsg", 4, "network", OUTSIDE, MsgNameArg(1, count=2), errnos=(ENOBUFS, EAGAIN, EINTR, ENOMEM),
     base=_CONNECTED, emulated=True)
_row("recvfrom", 6, "network", HELD, errnos=(EAGAIN, EINTR, ENOMEM, ECONNREFUSED))
_row("recvmsg", 3, "network", HELD, errnos=(EAGAIN, EINTR, ENOMEM, ECONNREFUSED))
_row("recvmmsg", 5, "network", HELD, errnos=(EAGAIN, EINTR, ENOMEM, ECONNREFUSED))
_row("listen", 2, "network", HELD, errnos=(EADDRINUSE,))
_row("accept", 3, "network", HELD, errnos=(EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM, EINTR, ECONNABORTED))
_row("accept4", 4, "network", HELD, errnos=(EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM, EINTR, ECONNABORTED))
_row("shutdown", 2, "network", HELD)
_rows("getsockname getpeername", 3, "network", HELD)
_rows("setsockopt getsockopt", 5, "network", HELD)
_rows("getpmsg putpmsg", 5, "network", SELF)  # not implemented: ENOSYS

# -- memory of the process -------------------------------------------------------------------
_row("brk", 1, "memory", SELF, errnos=_MEM, failure="old-break")
_row("mmap", 6, "desc memory", SELF, _prot(2), errnos=_MEM)
_row("mprotect", 3, "memory", SELF, _prot(2), errnos=_MEM)
_row("pkey_mprotect", 4, "memory", SELF, _prot(2))
_row("mremap", 5, "memory", SELF, errnos=_MEM)
_rows("munmap mlock munlock", 2, "memory", SELF)
_row("mlock", 2, "memory", SELF, errnos=_MEM)
_row("madvise", 3, "memory", SELF, errnos=_MEM)
_rows("msync mincore mlock2", 3, "memory", SELF)
_row("mlockall", 1, "memory", SELF)
_row("munlockall", 0, "memory", SELF)
_row("remap_file_pages", 5, "memory", SELF)
_rows("pkey_alloc", 2, "memory", SELF)
_rows("pkey_free", 1, "memory", SELF)
_rows("map_shadow_stack mseal", 3, "memory", SELF)
_row("mbind", 6, "memory", SELF)
_row("set_mempolicy", 3, "memory", SELF)
_row("get_mempolicy", 5, "memory", SELF)
_row("set_mempolicy_home_node", 4, "memory", SELF)
_row("membarrier", 3, "memory", SELF)
_row("migrate_pages", 4, "memory", OUTSIDE, PidArg(0))
_row("move_pages", 6, "memory", OUTSIDE, PidArg(0))
_row("process_madvise", 5, "memory", OUTSIDE, PidArg(0, pidfd=True))
_row("process_mrelease", 2, "memory", OUTSIDE, PidArg(0, pidfd=True))
_rows("process_vm_readv process_vm_writev", 6, "memory", OUTSIDE, PidArg(0))
_row("userfaultfd", 1, "desc", OUTSIDE, _hex("flags", 0))  # can stall systrace's reads of the tracee

# -- the process itself ------------------------------------------------------------------------
for _name in ("getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getpgrp", "sched_yield"):
    _row(_name, 0, "creds pure" if "id" in _name[3:] else "pure", SELF, failure="none", kernel="never-fail")
_rows("exit exit_group", 1, "process", SELF, failure="none", kernel="allowed")
_rows("rt_sigreturn restart_syscall", 0, "signal", SELF, failure="none", kernel="allowed")
_rows("rt_sigaction rt_sigprocmask", 4, "signal", SELF, kernel="plumbing")
_row("fork", 0, "process", SELF, kernel="process")
_row("vfork", 0, "process", SELF, kernel="process")
_row("clone", 5, "process", SELF, _hex("flags", 0), kernel="process")  # namespace flags: decided by policy
_row("clone3", 2, "process", SELF, kernel="refused", faultable=False)
_row("wait4", 4, "process", SELF, errnos=_WAIT)
_row("waitid", 5, "process", SELF, errnos=_WAIT)
_rows("getpgid getsid", 1, "process", SELF, failure="none")
_row("umask", 1, "file", SELF, _mode(0), failure="none")
_row("uname", 1, "pure", SELF, failure="none")
_row("getrlimit", 2, "process", SELF, failure="none")
_rows("set_tid_address", 1, "process", SELF, failure="none")
_rows("set_robust_list arch_prctl", 2, "process", SELF, faultable=False)
_row("rseq", 4, "process", SELF, faultable=False)
_row("futex", 6, "process", SELF, faultable=False)
_rows("futex_wake futex_requeue", 4, "process", SELF)
_rows("futex_wait", 6, "process", SELF)
_rows("futex_waitv", 5, "process", SELF)
_rows("set_thread_area get_thread_area", 1, "process", SELF)
_row("modify_ldt", 3, "process", SELF)
_row("personality", 1, "process", SELF)
_rows("rt_sigpending rt_sigsuspend sigaltstack", 2, "signal", SELF)
_row("rt_sigtimedwait", 4, "signal", SELF)
_row("pause", 0, "signal", SELF, errnos=_WAIT)
_rows("nanosleep", 2, "clock", SELF, errnos=_WAIT)
_row("clock_nanosleep", 4, "clock", SELF, errnos=_WAIT)
_rows("alarm", 1, "clock", SELF)
_rows("getitimer gettimeofday clock_gettime clock_getres", 2, "clock", SELF)
_row("setitimer", 3, "clock", SELF)
_rows("time times sysinfo", 1, "clock", SELF)
_row("getrusage", 2, "process", SELF)
_row("getcpu", 3, "process", SELF)
_row("getrandom", 3, "process", SELF, errnos=(EAGAIN, EINTR))
_rows("getgroups", 2, "creds", SELF)
_rows("getresuid getresgid", 3, "creds", SELF)
_rows("capget", 2, "creds", SELF)
_row("timer_create", 3, "clock", SELF)
_row("timer_settime", 4, "clock", SELF)
_row("timer_gettime", 2, "clock", SELF)
_rows("timer_getoverrun timer_delete", 1, "clock", SELF)
_rows("sched_getscheduler sched_get_priority_max sched_get_priority_min", 1, "process", SELF)
_rows("sched_getparam sched_rr_get_interval getpriority", 2, "process", SELF)
_row("sched_getaffinity", 3, "process", SELF)
_row("sched_getattr", 4, "process", SELF)
_row("ioprio_get", 2, "process", SELF)
_row("setsid", 0, "process", SELF)
_rows("landlock_create_ruleset", 3, "process", SELF)
_rows("landlock_add_rule", 4, "process", SELF)
# always seen: systrace copies the domain for the calls it emulates (domains.py)
_rows("landlock_restrict_self", 2, "process", SELF, kernel="notified", invalidates="landlock")
_row("lsm_get_self_attr", 4, "process", SELF)
_row("lsm_list_modules", 3, "process", SELF)
_row("kcmp", 5, "process", OUTSIDE, PidArg(0), PidArg(1))
_rows("get_robust_list", 3, "process", OUTSIDE, PidArg(0))
_rows("create_module get_kernel_syms query_module nfsservctl afs_syscall tuxcall security vserver lookup_dcookie",
      0, "", SELF)  # not implemented on this kernel: ENOSYS

# -- other processes ------------------------------------------------------------------------------
_KILL0 = PidArg(0, group=True)
# in the base: signals to itself (raise(), abort()) and to its own descendants (a pool
# stopping its workers, a shell its job: on some runs only, so -A may never see it); every
# descendant is inside the run, and no signal leaves the run (Landlock's signal scope)
_TO_SELF = 'pidname eq "<own process>" or pidname eq "<own thread>" or pidname re "^<descendant: "'
_row("kill", 2, "process signal", OUTSIDE, _KILL0, _sig(1), base=_TO_SELF)
_row("tkill", 2, "process signal", OUTSIDE, PidArg(0, thread=True), _sig(1), base=_TO_SELF)
_row("tgkill", 3, "process signal", OUTSIDE, PidArg(0), PidArg(1, thread=True), _sig(2), base=_TO_SELF)
_row("rt_sigqueueinfo", 3, "process signal", OUTSIDE, PidArg(0), _sig(1), base=_TO_SELF)
_row("rt_tgsigqueueinfo", 4, "process signal", OUTSIDE, PidArg(0), PidArg(1, thread=True), _sig(2), base=_TO_SELF)
_row("pidfd_send_signal", 4, "desc process signal", OUTSIDE, PidArg(0, pidfd=True), _sig(1))
_row("pidfd_open", 2, "desc process", OUTSIDE, PidArg(0))
_row("pidfd_getfd", 3, "desc process", OUTSIDE, PidArg(0, pidfd=True))
_row("ptrace", 4, "process", OUTSIDE, IntArg("request", 0, formats.ptrace_request, width=64), PidArg(1))
_row("prlimit64", 4, "process", OUTSIDE, PidArg(0), IntArg("resource", 1, formats.rlimit),
     IntArg("limit", 2, formats.set_or_get, width=64), faultable=False)
_row("setrlimit", 2, "process", SELF, IntArg("resource", 0, formats.rlimit))
_row("setpgid", 2, "process", OUTSIDE, PidArg(0), PidArg(1))
_rows("sched_setparam", 2, "process", OUTSIDE, PidArg(0))
_row("sched_setscheduler", 3, "process", OUTSIDE, PidArg(0), _num("policy", 1))
_row("sched_setaffinity", 3, "process", OUTSIDE, PidArg(0))
_row("sched_setattr", 3, "process", OUTSIDE, PidArg(0))
_row("setpriority", 3, "process", OUTSIDE, _num("which", 0), _num("who", 1))
_row("ioprio_set", 3, "process", OUTSIDE, _num("which", 0), _num("who", 1))
_row("perf_event_open", 5, "desc", OUTSIDE, PidArg(1), _num("cpu", 2))
# a thread's namespaces are cached per thread (kernel/namespaces.py): these always reach
# the supervisor, which reads them again after
_row("unshare", 1, "process", OUTSIDE, _hex("flags", 0), kernel="notified", invalidates="namespaces")
_row("setns", 2, "desc process", OUTSIDE, FD0, _hex("nstype", 1), kernel="notified", invalidates="namespaces")
_row("prctl", 5, "process creds", OUTSIDE, _num("option", 0))
_row("seccomp", 3, "process", OUTSIDE, _num("operation", 0), _hex("flags", 1))
_row("lsm_set_self_attr", 4, "process", OUTSIDE, _num("attr", 0))

# -- credentials -----------------------------------------------------------------------------------
# the credentials are cached per thread (processes.py, for `if user =` and the identity
# of emulated calls): whatever a policy says, these always reach the supervisor, which
# reads them again after
_CREDS = {"kernel": "notified", "invalidates": "credentials"}
_row("setuid", 1, "creds", OUTSIDE, _uid(0), UnameArg(0), **_CREDS)
_row("setgid", 1, "creds", OUTSIDE, _gid(0), **_CREDS)
_row("setreuid", 2, "creds", OUTSIDE, _uid(0), _uid(1), alias="seteuid", **_CREDS)
_row("setregid", 2, "creds", OUTSIDE, _gid(0), _gid(1), alias="setegid", **_CREDS)
_row("setresuid", 3, "creds", OUTSIDE, _uid(0), _uid(1), _uid(2), alias="seteuid", **_CREDS)
_row("setresgid", 3, "creds", OUTSIDE, _gid(0), _gid(1), _gid(2), alias="setegid", **_CREDS)
# ... and so are the rest of the identity an emulated call is made as (kernel/emulate_identity.py)
_row("setfsuid", 1, "creds", OUTSIDE, _uid(0), **_CREDS)
_row("setfsgid", 1, "creds", OUTSIDE, _gid(0), **_CREDS)
_row("setgroups", 2, "creds", OUTSIDE, _num("count", 0), **_CREDS)
_row("capset", 2, "creds", SELF, **_CREDS)  # only the caller's own capabilities, within what it is permitted

# -- the system ------------------------------------------------------------------------------------
_row("settimeofday", 2, "clock", OUTSIDE, IntArg("time", 0, formats.set_or_get, width=64))
_row("clock_settime", 2, "clock", OUTSIDE, _num("clockid", 0))
_row("clock_adjtime", 2, "clock", OUTSIDE, _num("clockid", 0))
_row("adjtimex", 1, "clock", OUTSIDE)  # what it sets is in memory: a rule is on the call
_rows("sethostname setdomainname", 2, "", OUTSIDE, StrArg("name", 0, length=1))
_row("reboot", 4, "", OUTSIDE, _hex("cmd", 2))
_row("syslog", 3, "", OUTSIDE, _num("type", 0))
_row("sysfs", 3, "", OUTSIDE, _num("option", 0))
_row("ustat", 2, "", OUTSIDE, _hex("dev", 0))
_row("_sysctl", 1, "", SELF)  # removed from the kernel: ENOSYS
_row("iopl", 1, "", OUTSIDE, _num("level", 0))
_row("ioperm", 3, "", OUTSIDE, _hex("from", 0), _num("num", 1))
# a rule on the module parameters or kexec_file_load's command line is refused (the kernel
# reads them again: decide/policy.py STRINGS_READ_AGAIN): learned without them
_row("init_module", 3, "", OUTSIDE, _num("size", 1), StrArg("params", 2), learn=("size",))  # (the image's)
_row("finit_module", 3, "desc", OUTSIDE, FD0, StrArg("params", 1), learn=("fdname",))
_row("delete_module", 2, "", OUTSIDE, StrArg("name", 0))
_row("kexec_load", 4, "", OUTSIDE, _hex("flags", 3))
_row("kexec_file_load", 5, "desc", OUTSIDE, FD0, StrArg("cmdline", 3), learn=("fdname",))
_row("bpf", 3, "desc", OUTSIDE, _num("cmd", 0), P(1, struct="bpf_attr"))  # BPF_OBJ_PIN/GET's pathname
_row("fanotify_init", 2, "desc", OUTSIDE, _hex("flags", 0))
_row("sync", 0, "", OUTSIDE)
_row("vhangup", 0, "", OUTSIDE)
# the keyring a key goes to, the key an operation acts on (KEYCTL_READ of a serial): a
# rule learned on one key or keyring does not reach the user's other keys. A rule on
# add_key's or request_key's type or description is refused (the kernel reads them again:
# decide/policy.py STRINGS_READ_AGAIN): learned on the keyring only
# (add_key's keyring is its fifth argument, after the payload and its length)
_rows("add_key", 5, "", OUTSIDE, StrArg("type", 0), StrArg("description", 1), IntArg("keyring", 4, formats.key_serial),
      learn=("keyring",))
_rows("request_key", 4, "", OUTSIDE, StrArg("type", 0), StrArg("description", 1), IntArg("keyring", 3, formats.key_serial),
      learn=("keyring",))
_row("keyctl", 5, "", OUTSIDE, _num("operation", 0), IntArg("key", 1, formats.key_serial))
_row("quotactl_fd", 4, "desc", OUTSIDE, FD0, _hex("cmd", 1))
_row("fsopen", 2, "desc", OUTSIDE, StrArg("fstype", 0))
# fsconfig's value by command: FSCONFIG_SET_STRING's string, FSCONFIG_SET_PATH's and
# SET_PATH_EMPTY's path (relative to aux, a dirfd); SET_BINARY's blob is not translated
_row("fsconfig", 5, "desc", OUTSIDE, FD0, _num("cmd", 1), StrArg("key", 2), StrArg("value", 3, only_for=(1, 0, (1,))),
     P(3, dirfd=4, only_for=(1, 0, (3, 4))))
_row("fsmount", 3, "desc", OUTSIDE, FD0)
_rows("statmount listmount", 4, "", OUTSIDE, _hex("flags", 3))

# -- System V IPC and message queues -----------------------------------------------------------------
_row("shmget", 3, "ipc", OUTSIDE, _hex("key", 0))
_row("shmat", 3, "ipc memory", OUTSIDE, _num("shmid", 0))
_row("shmctl", 3, "ipc", OUTSIDE, _num("shmid", 0), _num("cmd", 1))
_row("shmdt", 1, "ipc memory", SELF)
_row("semget", 3, "ipc", OUTSIDE, _hex("key", 0))
_row("semop", 3, "ipc", OUTSIDE, _num("semid", 0))
_row("semtimedop", 4, "ipc", OUTSIDE, _num("semid", 0))
_row("semctl", 4, "ipc", OUTSIDE, _num("semid", 0), _num("cmd", 2))
_row("msgget", 2, "ipc", OUTSIDE, _hex("key", 0))
_row("msgsnd", 4, "ipc", OUTSIDE, _num("msqid", 0))
_row("msgrcv", 5, "ipc", OUTSIDE, _num("msqid", 0))
_row("msgctl", 3, "ipc", OUTSIDE, _num("msqid", 0), _num("cmd", 1))
_row("mq_open", 4, "desc", OUTSIDE, StrArg("name", 0), _oflags(1))
_row("mq_unlink", 1, "", OUTSIDE, StrArg("name", 0))
_rows("mq_timedsend mq_timedreceive", 5, "desc", HELD)
_rows("mq_notify", 2, "desc", HELD)
_rows("mq_getsetattr", 3, "desc", HELD)
