"""What /proc says about a tracee thread."""

from __future__ import annotations

import errno
import os

from ..record import record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable


@record
class Status:
    tgid: int
    ppid: int
    uid: int  # real
    euid: int
    gid: int
    egid: int
    umask: int


def field(status: bytes, name: bytes) -> bytes:
    """The value of `Name:` in a /proc/TID/status text (b"" if absent)."""
    start = status.find(b"\n" + name + b":\t")
    if start < 0:
        return b""
    start += len(name) + 3
    end = status.find(b"\n", start)
    return status[start:] if end < 0 else status[start:end]


def parse_status(data: bytes) -> Status:
    uids = field(data, b"Uid").split()
    gids = field(data, b"Gid").split()
    umask = field(data, b"Umask")
    if len(uids) != 4 or len(gids) != 4:
        raise OSError(f"unexpected /proc status: {data[:200]!r}")
    return Status(
        tgid=int(field(data, b"Tgid")),
        ppid=int(field(data, b"PPid")),
        uid=int(uids[0]),
        euid=int(uids[1]),
        gid=int(gids[0]),
        egid=int(gids[1]),
        umask=int(umask, 8) if umask else 0o022,
    )


def exe(tid: int) -> str:
    return os.readlink(f"/proc/{tid}/exe")


def exe_bytes(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/exe".encode())


def cwd(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/cwd".encode())


def root(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/root".encode())


def directory_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what `path` names as systrace sees it (a tracee's root:
    /proc/TID/root), None when it names nothing."""
    try:
        status = os.stat(os.fsencode(path))
    except OSError:
        return None
    return status.st_dev, status.st_ino


def fd_path(tid: int, fd: int) -> bytes:
    return os.readlink(f"/proc/{tid}/fd/{fd}".encode())


# -- systrace's own descriptors, by number ---------------------------------------------
# Through its /proc/self/fd directory opened once: each readlink or reopen then starts
# there, not at "/" (/proc, then the /proc/self link, then the pid's directory): about
# 3 µs less each on the test machine, twice per emulated open. The directory is the
# descriptor table of the process that opened it, so a forked child (a helper, a
# replica) drops the one it inherited and opens its own at its first use.
_OWN_FDS = [-1]


def _own_fds() -> int:
    fd = _OWN_FDS[0]
    if fd < 0:
        fd = _OWN_FDS[0] = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return fd


def own_link(fd: int) -> bytes:
    """What our descriptor `fd` names: readlink /proc/self/fd/FD."""
    return os.readlink(b"%d" % fd, dir_fd=_own_fds())


def reopen_own(fd: int, flags: int) -> int:
    """open /proc/self/fd/FD with `flags`: the file our descriptor `fd` names, opened anew."""
    return os.open(b"%d" % fd, flags, dir_fd=_own_fds())


def _forget_own_fds() -> None:
    """In a forked child: the inherited directory lists the parent's descriptors."""
    fd, _OWN_FDS[0] = _OWN_FDS[0], -1
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass  # (a child that closed every descriptor already)


os.register_at_fork(after_in_child=_forget_own_fds)


def start_time(pid: int) -> int | None:
    """When the process (or thread) with this number started, in clock ticks since boot
    (field 22 of /proc/PID/stat): with the number, it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def same_processes(pins: dict[int, int | None]) -> bool:
    """Each pid still names the process it named when checked (a pid is reused only once
    its process is reaped, and then it starts at another time)."""
    return all(started is not None and start_time(pid) == started for pid, started in pins.items())


def object_name(link: str) -> str:
    """What a descriptor names, stable from run to run: `pipe:[58731]` -> `pipe:`,
    `socket:[123]` -> `socket:`, `/memfd:NAME (deleted)` -> `memfd:NAME`; anon_inode
    names (`anon_inode:[eventfd]`) carry no number and stay."""
    for kind in ("pipe:[", "socket:["):
        if link.startswith(kind) and link.endswith("]"):
            return kind[:-1]
    if link.startswith("/memfd:") and link.endswith(" (deleted)"):
        return link[1 : -len(" (deleted)")]
    return link


def fd_targets(pid: int) -> list[str]:
    """Where each open fd of a process points (used to prove the listener never leaks)."""
    out = []
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            out.append(os.readlink(f"{base}/{name}"))
        except OSError:
            continue
    return out


def open_for_writing(path: str, dev: int, ino: int) -> bool:
    """Does some process hold the file (`path`, its device and inode) open for writing?
    What makes its execve fail with ETXTBSY. Only the processes systrace may read are
    seen (all as root): a writer it cannot see is not found (False)."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != path:
                    continue
                held = os.stat(f"/proc/{pid}/fd/{fd}")
                with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as handle:
                    flags = int(field(handle.read(), b"flags") or b"0", 8)
            except (OSError, ValueError):
                continue
            if (held.st_dev, held.st_ino) == (dev, ino) and flags & os.O_ACCMODE != os.O_RDONLY:
                return True
    return False


def signal_interrupts(tid: int, tgid: int) -> bool:
    """Would a signal pending now interrupt thread `tid`'s waiting system call natively?
    One sent to the thread (SigPnd) that it does not block; or one sent to the process
    (ShdPnd), when the kernel gives those to this thread: the main thread, or the only
    one (else another thread takes it, and natively this thread's call goes on). A
    signal a process ignores is never queued."""
    try:
        with open(f"/proc/{tid}/status", "rb") as handle:
            status = b"\n" + handle.read()
    except OSError:
        return False
    return interrupting(status, tid == tgid)


def interrupting(status: bytes, takes_process_signals: bool) -> bool:
    """The pure half of signal_interrupts, on a status text that starts with a newline."""
    try:
        private = int(field(status, b"SigPnd"), 16)
        shared = int(field(status, b"ShdPnd"), 16)
        blocked = int(field(status, b"SigBlk"), 16)
        ignored = int(field(status, b"SigIgn"), 16)
        threads = int(field(status, b"Threads") or b"1")
    except ValueError:
        return False
    pending = private | (shared if takes_process_signals or threads == 1 else 0)
    return bool(pending & ~blocked & ~ignored)


class FdLink(bytes):
    """Another process's /proc/PID/fd/N, to be followed as the tracee (the kernel checks
    the caller's ptrace read access there), with `link`: what it named when checked,
    which what it leads to must still be; `inside`: PID is a process of the run (in the
    command's Landlock domain). The domain refuses ptrace access to any other process,
    so following the link of one outside the run fails with EACCES, as it does for a
    call the supervisor continues."""

    link: bytes
    inside: bool

    def __new__(cls, entry: bytes, link: bytes, inside: bool) -> FdLink:
        self = super().__new__(cls, entry)
        self.link, self.inside = link, inside
        return self

    def __reduce__(self) -> tuple:  # pickled to a helper (kernel/offload.py) as it is
        return (FdLink, (bytes(self), self.link, self.inside))

    def follow_as(self, run: Callable[[Callable[[], int]], int], flags: int) -> int:
        """Our descriptor of what the link leads to, opened by `run` (as the tracee),
        checked to be what it named; OSError as the tracee would get it."""
        if not self.inside:
            raise PermissionError(errno.EACCES, "ptrace access outside the command's Landlock domain")
        fd = run(lambda: os.open(self, flags | os.O_CLOEXEC))
        if os.readlink(f"/proc/self/fd/{fd}".encode()) != self.link:
            os.close(fd)
            raise Replaced(f"{bytes(self)!r} no longer names {self.link!r}")
        return fd


class Replaced(Exception):
    """A descriptor no longer names what the policy was shown (the caller refuses the call)."""
