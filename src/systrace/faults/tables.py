"""Which errors each system call can really return (from its man page), the classes
used to select calls, and the calls that are never failed.

A call with no table here is never failed by -r: an error it cannot return would test
nothing but the program's surprise."""

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

from ..translate import aliases

_OPEN = (ENOENT, EACCES, EMFILE, ENFILE, ENOMEM, ENOSPC, EROFS, ELOOP, ENAMETOOLONG, EDQUOT)
_STAT = (ENOENT, EACCES, ENOMEM, ELOOP, ENAMETOOLONG, ENOTDIR)
_READ = (EIO, EINTR, EAGAIN)
_WRITE = (ENOSPC, EIO, EDQUOT, EINTR)
_REMOVE = (EACCES, EBUSY, EIO, EPERM, EROFS, ENOENT)
_MAKE = (EACCES, EEXIST, ENOSPC, EROFS, EDQUOT, ENOENT, EMLINK)
_RENAME = (EACCES, EBUSY, EXDEV, ENOSPC, EROFS, ENOTEMPTY, EDQUOT)
_FDS = (EMFILE, ENFILE)
_WAIT = (EINTR,)

ERRNOS: dict[str, tuple[int, ...]] = {
    **{name: _OPEN for name in ("open", "openat", "openat2", "creat")},
    **{name: _STAT for name in ("stat", "lstat", "newfstatat", "statx", "readlink", "readlinkat", "statfs")},
    **{name: (ENOENT, EACCES, EROFS, ELOOP) for name in ("access", "faccessat", "faccessat2")},
    "fstat": (EIO, ENOMEM), "fstatfs": (EIO, ENOMEM),
    **{name: _READ for name in ("read", "pread64", "readv", "preadv", "preadv2")},
    **{name: _WRITE for name in ("write", "pwrite64", "writev", "pwritev", "pwritev2")},
    **{name: (ENOMEM,) for name in ("mmap", "mremap", "brk", "mprotect", "mlock", "madvise")},
    **{name: _REMOVE for name in ("unlink", "unlinkat", "rmdir")},
    **{name: _MAKE for name in ("mkdir", "mkdirat", "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat")},
    **{name: _RENAME for name in ("rename", "renameat", "renameat2")},
    **{name: (EACCES, EIO, EPERM, EROFS, ENOENT) for name in ("chmod", "fchmod", "fchmodat", "chown", "fchown",
                                                               "lchown", "fchownat", "utimensat")},
    **{name: (EIO, EFBIG, EINTR, EACCES) for name in ("truncate", "ftruncate")},
    **{name: (EIO, ENOSPC, EDQUOT) for name in ("fsync", "fdatasync", "sync_file_range")},
    "getdents64": (ENOENT,), "getdents": (ENOENT,),
    "chdir": (ENOENT, EACCES, ENOTDIR), "fchdir": (EACCES,), "getcwd": (ENOENT, EACCES),
    "execve": (E2BIG, EACCES, ENOENT, ENOMEM, ETXTBSY), "execveat": (E2BIG, EACCES, ENOENT, ENOMEM, ETXTBSY),
    **{name: _FDS for name in ("pipe", "pipe2", "socketpair", "inotify_init", "inotify_init1", "signalfd",
                               "signalfd4", "timerfd_create", "memfd_create")},
    **{name: (EMFILE, ENFILE, ENOMEM) for name in ("epoll_create", "epoll_create1", "eventfd", "eventfd2")},
    "socket": (EACCES, EAFNOSUPPORT, EMFILE, ENFILE, ENOBUFS, ENOMEM),
    "connect": (ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EACCES, EADDRNOTAVAIL, EINTR),
    "bind": (EADDRINUSE, EACCES, EADDRNOTAVAIL), "listen": (EADDRINUSE,),
    **{name: (EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM, EINTR, ECONNABORTED) for name in ("accept", "accept4")},
    **{name: (ENOBUFS, EAGAIN, EINTR, ENOMEM) for name in ("sendto", "sendmsg", "sendmmsg")},
    **{name: (EAGAIN, EINTR, ENOMEM, ECONNREFUSED) for name in ("recvfrom", "recvmsg", "recvmmsg")},
    **{name: (EINTR, ENOMEM) for name in ("poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait",
                                          "epoll_pwait2")},
    **{name: _WAIT for name in ("nanosleep", "clock_nanosleep", "wait4", "waitid", "pause")},
    "getrandom": (EAGAIN, EINTR),
}

# Calls that cannot fail: programs do not check them, and failing them sends a program
# down paths that do harm (a getpid() of -1 led to kill(-1, SIGABRT) in the original's
# discussion). Besides these, nothing without a table above is ever failed, and the
# calls systrace always leaves to the kernel (README "Always decided") never reach it.
NEVER_FAIL = (
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getpgrp", "getpgid", "getsid",
    "sched_yield", "umask", "exit", "exit_group", "rt_sigreturn", "restart_syscall", "set_tid_address",
    "set_robust_list", "rseq", "arch_prctl", "futex", "close", "dup", "dup2", "dup3", "rt_sigaction",
    "rt_sigprocmask", "clone", "clone3", "fork", "vfork", "uname", "getrlimit", "prlimit64",
)
assert not set(NEVER_FAIL) & set(ERRNOS)

CLASSES: dict[str, tuple[str, ...]] = {
    "file": tuple(sorted(set(aliases.members("fsread")) | set(aliases.members("fswrite")) | {
        "execve", "execveat", "getcwd", "getdents64", "getdents", "fstat", "fstatfs"})),
    "desc": ("read", "pread64", "readv", "preadv", "preadv2", "write", "pwrite64", "writev", "pwritev", "pwritev2",
             "fsync", "fdatasync", "ftruncate", "pipe", "pipe2", "epoll_create1", "eventfd2", "poll", "ppoll",
             "select", "pselect6", "epoll_wait", "epoll_pwait"),
    "network": ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
                "sendmmsg", "recvfrom", "recvmsg", "recvmmsg"),
    "memory": ("mmap", "mremap", "brk", "mprotect", "mlock", "madvise"),
    "process": ("execve", "execveat", "wait4", "waitid", "nanosleep", "clock_nanosleep", "pause"),
}
