"""Which arguments of which system call are translated, and how (the translator table,
documented in README "Translated arguments")."""

from __future__ import annotations

from collections.abc import Callable

from ..record import record
from . import formats

AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000


@record
class PathArg:
    index: int
    dirfd: int | None = None  # index of the dirfd argument
    follow: bool = True  # follow a final symlink
    flags: int | None = None  # index of an AT_* flags argument
    follow_flag: bool = False  # flags say AT_SYMLINK_FOLLOW (linkat) instead of NOFOLLOW
    nullable: bool = False  # NULL means "the dirfd itself" (utimensat)


@record
class IntArg:
    name: str
    index: int
    format: Callable[[int], str]
    width: int = 32  # the kernel reads an int: only the low 32 bits matter


@record
class SockaddrArg:
    index: int
    length: int


@record
class ArgvArg:
    index: int


@record
class PidArg:
    index: int


@record
class UnameArg:
    index: int


@record
class OpenHowArg:
    index: int
    size: int


ArgSpec = PathArg | IntArg | SockaddrArg | ArgvArg | PidArg | UnameArg | OpenHowArg


def _oflags(index: int) -> IntArg:
    return IntArg("oflags", index, formats.oflags)


def _mode(index: int) -> IntArg:
    return IntArg("mode", index, formats.mode)


def _uid(index: int) -> IntArg:
    return IntArg("uid", index, formats.decimal)


def _gid(index: int) -> IntArg:
    return IntArg("gid", index, formats.decimal)


def _prot(index: int) -> IntArg:
    return IntArg("prot", index, formats.prot)


def _sig(index: int) -> IntArg:
    return IntArg("signame", index, formats.signame)


NOFOLLOW = False
TRANSLATORS: dict[str, tuple[ArgSpec, ...]] = {
    "open": (PathArg(0), _oflags(1), _mode(2)),
    "openat": (PathArg(1, dirfd=0), _oflags(2), _mode(3)),
    "openat2": (PathArg(1, dirfd=0), OpenHowArg(2, 3)),
    "creat": (PathArg(0), _mode(1)),
    "stat": (PathArg(0),),
    "lstat": (PathArg(0, follow=NOFOLLOW),),
    "newfstatat": (PathArg(1, dirfd=0, flags=3),),
    "statx": (PathArg(1, dirfd=0, flags=2),),
    "access": (PathArg(0),),
    "faccessat": (PathArg(1, dirfd=0),),
    "faccessat2": (PathArg(1, dirfd=0, flags=3),),
    "readlink": (PathArg(0, follow=NOFOLLOW),),
    "readlinkat": (PathArg(1, dirfd=0, follow=NOFOLLOW),),
    "getxattr": (PathArg(0),),
    "lgetxattr": (PathArg(0, follow=NOFOLLOW),),
    "listxattr": (PathArg(0),),
    "llistxattr": (PathArg(0, follow=NOFOLLOW),),
    "setxattr": (PathArg(0),),
    "lsetxattr": (PathArg(0, follow=NOFOLLOW),),
    "removexattr": (PathArg(0),),
    "lremovexattr": (PathArg(0, follow=NOFOLLOW),),
    "getxattrat": (PathArg(1, dirfd=0, flags=2),),  # Linux 6.13
    "listxattrat": (PathArg(1, dirfd=0, flags=2),),
    "setxattrat": (PathArg(1, dirfd=0, flags=2),),
    "removexattrat": (PathArg(1, dirfd=0, flags=2),),
    "statfs": (PathArg(0),),
    "chdir": (PathArg(0),),
    "chroot": (PathArg(0),),
    "unlink": (PathArg(0, follow=NOFOLLOW),),
    "unlinkat": (PathArg(1, dirfd=0, follow=NOFOLLOW),),
    "rmdir": (PathArg(0, follow=NOFOLLOW),),
    "mkdir": (PathArg(0, follow=NOFOLLOW), _mode(1)),
    "mkdirat": (PathArg(1, dirfd=0, follow=NOFOLLOW), _mode(2)),
    "rename": (PathArg(0, follow=NOFOLLOW), PathArg(1, follow=NOFOLLOW)),
    "renameat": (PathArg(1, dirfd=0, follow=NOFOLLOW), PathArg(3, dirfd=2, follow=NOFOLLOW)),
    "renameat2": (PathArg(1, dirfd=0, follow=NOFOLLOW), PathArg(3, dirfd=2, follow=NOFOLLOW)),
    "link": (PathArg(0, follow=NOFOLLOW), PathArg(1, follow=NOFOLLOW)),
    "linkat": (PathArg(1, dirfd=0, follow=NOFOLLOW, flags=4, follow_flag=True), PathArg(3, dirfd=2, follow=NOFOLLOW)),
    "symlink": (PathArg(1, follow=NOFOLLOW),),
    "symlinkat": (PathArg(2, dirfd=1, follow=NOFOLLOW),),
    "truncate": (PathArg(0),),
    "chmod": (PathArg(0), _mode(1)),
    "fchmodat": (PathArg(1, dirfd=0), _mode(2)),
    "fchmodat2": (PathArg(1, dirfd=0, flags=3), _mode(2)),
    "chown": (PathArg(0), _uid(1), _gid(2)),
    "lchown": (PathArg(0, follow=NOFOLLOW), _uid(1), _gid(2)),
    "fchownat": (PathArg(1, dirfd=0, flags=4), _uid(2), _gid(3)),
    "mknod": (PathArg(0, follow=NOFOLLOW), _mode(1)),
    "mknodat": (PathArg(1, dirfd=0, follow=NOFOLLOW), _mode(2)),
    "utime": (PathArg(0),),
    "utimes": (PathArg(0),),
    "utimensat": (PathArg(1, dirfd=0, flags=3, nullable=True),),
    "futimesat": (PathArg(1, dirfd=0),),
    "execve": (PathArg(0), ArgvArg(1)),
    "execveat": (PathArg(1, dirfd=0, flags=4), ArgvArg(2)),
    "mmap": (_prot(2),),
    "mprotect": (_prot(2),),
    "pkey_mprotect": (_prot(2),),
    "socket": (IntArg("sockdom", 0, formats.sockdom), IntArg("socktype", 1, formats.socktype)),
    "socketpair": (IntArg("sockdom", 0, formats.sockdom), IntArg("socktype", 1, formats.socktype)),
    "connect": (SockaddrArg(1, 2),),
    "bind": (SockaddrArg(1, 2),),
    "sendto": (SockaddrArg(4, 5),),
    "kill": (PidArg(0), _sig(1)),
    "tkill": (_sig(1),),
    "tgkill": (PidArg(0), _sig(2)),
    "rt_sigqueueinfo": (PidArg(0), _sig(1)),
    "setuid": (_uid(0), UnameArg(0)),
    "setgid": (_gid(0),),
    "setreuid": (_uid(0), _uid(1)),
    "setregid": (_gid(0), _gid(1)),
    "setresuid": (_uid(0), _uid(1), _uid(2)),
    "setresgid": (_gid(0), _gid(1), _gid(2)),
    "setfsuid": (_uid(0),),
    "setfsgid": (_gid(0),),
    "fcntl": (IntArg("fd", 0, formats.decimal), IntArg("cmd", 1, formats.fcntl_cmd)),
    "fchdir": (IntArg("fd", 0, formats.decimal),),
    "fchmod": (_mode(1),),
    "umask": (_mode(0),),
}

# How many arguments each system call takes, for `args: N` in question lines of calls
# without translators (those listed here; others print 6, the register count).
ARG_COUNTS: dict[str, int] = {
    **{name: 0 for name in ("getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "sched_yield",
                            "fork", "vfork", "pause", "sync", "setsid", "getpgrp", "inotify_init", "munlockall",
                            "vhangup", "rt_sigreturn", "restart_syscall")},
    **{name: 1 for name in ("close", "brk", "dup", "exit", "exit_group", "alarm", "set_tid_address", "uname",
                            "pipe", "getpgid", "getsid", "fsync", "fdatasync", "epoll_create", "epoll_create1",
                            "times", "sysinfo", "personality", "io_destroy", "timer_delete", "timer_getoverrun",
                            "eventfd", "inotify_init1", "syncfs", "unshare", "setfsuid", "setfsgid")},
    **{name: 2 for name in ("munmap", "dup2", "pipe2", "fstat", "listen", "shutdown", "getcwd", "flock", "ftruncate",
                            "gettimeofday", "settimeofday", "clock_gettime", "clock_getres", "clock_settime",
                            "getrlimit", "setrlimit", "getrusage", "nanosleep", "sigaltstack", "set_robust_list",
                            "arch_prctl", "getgroups", "setgroups", "setpgid", "rseq", "capget", "capset",
                            "eventfd2", "getitimer", "timerfd_create", "memfd_create", "membarrier", "fstatfs",
                            "sched_getparam", "sched_setparam", "mlock", "munlock", "pidfd_open", "setns")},
    **{name: 3 for name in ("read", "write", "lseek", "readv", "writev", "ioctl", "dup3", "getdents", "getdents64",
                            "accept", "getsockname", "getpeername", "madvise", "mincore", "msync", "poll",
                            "getrandom", "sched_getaffinity", "sched_setaffinity", "setitimer", "getresuid",
                            "getresgid", "getcpu", "mlock2", "shmget", "shmat", "shmctl", "msgget", "semget",
                            "semop", "sendmsg", "recvmsg", "inotify_add_watch", "inotify_rm_watch", "rt_sigqueueinfo", "sched_setscheduler",
                            "ioprio_set", "ioprio_get", "signalfd", "futimesat", "io_setup", "process_madvise")},
    **{name: 4 for name in ("pread64", "pwrite64", "rt_sigaction", "rt_sigprocmask", "accept4", "wait4",
                            "epoll_ctl", "epoll_wait", "sendfile", "socketpair", "mremap", "signalfd4", "fallocate",
                            "timerfd_settime", "tee", "rt_sigtimedwait", "clock_nanosleep", "prlimit64", "fadvise64",
                            "sync_file_range", "timer_settime", "splice", "vmsplice", "pidfd_send_signal",
                            "sendmmsg", "semtimedop", "pidfd_getfd", "landlock_add_rule")},
    **{name: 5 for name in ("select", "prctl", "mount", "setsockopt", "getsockopt", "waitid", "pselect6", "ppoll",
                            "epoll_pwait", "kcmp", "process_vm_readv", "process_vm_writev", "copy_file_range",
                            "recvmmsg", "preadv", "pwritev", "clone")},
    **{name: 6 for name in ("recvfrom", "mmap", "futex", "epoll_pwait2", "preadv2", "pwritev2", "io_uring_enter")},
}
