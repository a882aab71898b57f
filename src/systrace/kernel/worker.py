"""Emulated opens that could block systrace, and the helper processes that do them.

One thread serves every process, so it must never make a call the tracee can block.
An open blocks on a FIFO with no partner (a reader waits for a writer, a writer for a
reader), on some devices (a serial line waiting for carrier) and on a FUSE file (its
daemon may be the tracee). So before opening, the checked path is opened O_PATH (that
never opens the file itself) and what it names is looked at:

- a regular file, a directory, a socket: reopened at once through the O_PATH descriptor
  (the same inode: nothing can be swapped in between); a regular file O_NONBLOCK, the
  flag cleared after: an open that breaks another process's lease would wait (a helper
  does it);
- a FIFO: O_RDWR never waits, nor does an open the tracee made O_NONBLOCK; O_WRONLY is
  tried O_NONBLOCK (it succeeds when a reader exists, and the flag is cleared after);
  anything else would wait: a helper does it;
- a character or block device: opened O_NONBLOCK, the flag cleared after when the tracee
  did not ask for it (the open then never waits for carrier; SECURITY.md);
- a file on FUSE, or a file created in a FUSE directory: a helper does it.

A helper is a forked process that closes the listener, dies with systrace
(PR_SET_PDEATHSIG), does the open with the tracee's credentials and passes the
descriptor back over a socket pair; systrace installs it (ADDFD) and answers. If the
calling thread goes away meanwhile (its pidfd says so) the helper is killed.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl  # (a builtin module: nothing to load)
import os
import stat
import struct

from . import opener_devices
from .emulate import open_for, still_at
from .emulate_identity import EmulationError, Identity, tracee_identity
from .forking import end_helper, fork_helper, pidfd_of
from .libc import libc
from .plain_signal import signal
from .procfs import reopen_own, same_processes

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from .landlock_domain import Domain

FUSE_SUPER_MAGIC = 0x65735546
PIDFD_THREAD = os.O_EXCL  # pidfd_open: a pidfd for one thread (Linux 6.9)
PR_SET_PDEATHSIG = 1
O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_STATFS = ctypes.create_string_buffer(120)  # struct statfs; f_type is its first word
_F_TYPE = ctypes.c_long.from_buffer(_STATFS)  # read in place (.raw would copy all 120 bytes per open)
_ERROR = struct.Struct("=ci")  # kind (b"E" emulation refused, b"O" the open's own error), errno
# (no argtypes for fstatfs: an int and a buffer convert as they are, 0.7 µs less per call than
# through declared types, once per emulated open)


def _on_fuse(fd: int) -> bool:
    """Is `fd`'s file on FUSE? A failed fstatfs counts as yes: only a file server fails it
    (one that answers STATFS with ENOSYS), and a helper, which may wait, then does the open."""
    if libc.fstatfs(fd, _STATFS) < 0:
        return True
    return _F_TYPE.value == FUSE_SUPER_MAGIC


class Deferred:
    """An open a helper is doing. `fd` becomes readable with its result; `watch` (the
    calling thread's pidfd) when the caller is gone."""

    def __init__(self, notif_id: int, pid: int, sock: socket.socket, watch: int, pidfd: int = -1):
        self.notif_id, self.pid, self.sock, self.watch = notif_id, pid, sock, watch
        self.pidfd = pidfd  # the helper's (forking.py: ended through it, never by pid)
        self.fd = sock.fileno()

    def fds(self) -> tuple[int, ...]:
        return (self.fd, self.watch) if self.watch >= 0 else (self.fd,)

    def result(self) -> int:
        """Our descriptor for the opened file. Raises EmulationError or OSError."""
        import socket  # imported by _defer already

        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 512, 1)
        except OSError as error:
            raise EmulationError(errno.EIO, f"the open helper failed: {error.strerror}") from None
        finally:
            self._release(kill=False)
        if fds:
            return fds[0]
        if len(data) < _ERROR.size:
            raise EmulationError(errno.EIO, "the open helper died")
        kind, code = _ERROR.unpack_from(data)
        if kind == b"E":
            raise EmulationError(code, data[_ERROR.size:].decode("utf-8", "replace"))
        raise OSError(code, os.strerror(code))

    def cancel(self) -> None:
        """The caller is gone (or systrace is ending): stop the helper."""
        self._release(kill=True)

    def _release(self, kill: bool) -> None:
        end_helper(self.pid, self.pidfd, kill)
        self.pidfd = -1
        self.sock.close()
        if self.watch >= 0:
            os.close(self.watch)
            self.watch = -1


def open_without_blocking(notif_id: int, tid: int, tgid: int, checked_path: bytes, flags: int, mode: int,
                          status: bytes, root: str | None, listener_fd: int, link: bytes | None = None,
                          pins: dict[int, int | None] | None = None, on_fuse: bool | Callable[[], bool] = False,
                          domain: Domain | None = None, resolved: int = -1) -> int | Deferred:
    """Our descriptor for what the tracee asked to open, or a Deferred open when opening
    it could wait; in the copy of the tracee's own Landlock `domain` when it has one.
    `link`: what the tracee's descriptor named, when the path reopens one
    (emulate.open_for); `pins`: the pids the path named by relation, which must still
    name the same processes once opened (else ENOENT, as if the process had exited);
    `on_fuse`: the path crosses a FUSE mount, where even looking it up may wait (or a
    function that tells, asked only when the path is looked up again);
    `resolved`: the O_PATH descriptor translation opened the path with (as systrace,
    below "/", no symlink on the way, after its own FUSE check; the caller closes it),
    the probe itself when the tracee's identity is systrace's and it is still at the
    checked path: nothing is looked up by name then (the probe's own file system is
    checked by _open_probed), so the mount table is not read again.
    Raises EmulationError (fail closed) or OSError (the tracee's error)."""
    creates = flags & os.O_CREAT and flags & os.O_EXCL or flags & O_TMPFILE == O_TMPFILE
    credentials: Identity | None = None
    if resolved >= 0 and root == "/" and link is None and not pins and not flags & os.O_PATH and not creates:
        credentials = tracee_identity(status, tid)  # parsed once: the probe's and the open's
        if credentials.same_as_own() and still_at(resolved, checked_path):  # the lookup it would repeat, done
            return _open_probed(notif_id, tid, resolved, flags, credentials, listener_fd, domain)
    if not isinstance(on_fuse, bool):
        on_fuse = on_fuse()
    if on_fuse:
        return _defer(notif_id, tid, listener_fd,
                      lambda: _pinned(open_for(tid, tgid, checked_path, flags, mode, status, root, link, domain), pins),
                      domain)
    if flags & os.O_PATH:  # opens nothing
        return _pinned(open_for(tid, tgid, checked_path, flags, mode, status, root, link, domain), pins)
    if creates:  # a new file: only its directory can be on FUSE
        if _parent_on_fuse(tid, tgid, checked_path, status, root):
            return _defer(notif_id, tid, listener_fd,
                          lambda: open_for(tid, tgid, checked_path, flags, mode, status, root, domain=domain), domain)
        return open_for(tid, tgid, checked_path, flags, mode, status, root, domain=domain)
    if credentials is None:
        credentials = tracee_identity(status, tid)  # parsed once: the probe's and the open's
    try:  # O_PATH: Landlock does not check it, systrace's own thread does it
        # (another process's descriptor is reached in the tracee's domain: Landlock scopes ptrace)
        probe = _pinned(open_for(tid, tgid, checked_path, os.O_PATH | (flags & os.O_NOFOLLOW), 0, status, root, link,
                                 domain if link is not None else None, identity=credentials), pins)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
        return _create(notif_id, tid, tgid, checked_path, flags, mode, status, root, listener_fd, domain)
    try:
        return _open_probed(notif_id, tid, probe, flags, credentials, listener_fd, domain)
    finally:
        os.close(probe)


def _pinned(fd: int, pins: dict[int, int | None] | None) -> int:
    """`fd`, opened while each pinned pid still named its process (checked after the open:
    a process alive then held its pid all along)."""
    if pins and not same_processes(pins):
        os.close(fd)
        raise OSError(errno.ENOENT, "the process exited while it was checked")
    return fd


def _open_probed(notif_id: int, tid: int, probe: int, flags: int, credentials: Identity, listener_fd: int,
                 domain: Domain | None) -> int | Deferred:
    probed = os.fstat(probe)
    kind = stat.S_IFMT(probed.st_mode)
    asked_nonblocking = bool(flags & os.O_NONBLOCK)
    credentials.domain = domain
    if _on_fuse(probe):
        return _defer(notif_id, tid, listener_fd, lambda: _reopen(probe, flags, credentials), domain)
    if kind == stat.S_IFIFO and not asked_nonblocking and flags & os.O_ACCMODE != os.O_RDWR:
        if flags & os.O_ACCMODE == os.O_RDONLY:  # waits for a writer
            return _defer(notif_id, tid, listener_fd, lambda: _reopen(probe, flags, credentials), domain)
        try:  # a writer: at once if a reader is there (else ENXIO)
            return _blocking_again(_reopen(probe, flags | os.O_NONBLOCK, credentials), flags)
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
        return _defer(notif_id, tid, listener_fd, lambda: _reopen(probe, flags, credentials), domain)
    if kind == stat.S_IFCHR:
        opener_devices.check_opener(tid, probed.st_rdev)
        # a terminal opened by systrace, a session leader without one, would become *its*
        # controlling terminal (the tracee's pty master could then signal systrace's group)
        flags |= os.O_NOCTTY
    if kind in (stat.S_IFCHR, stat.S_IFBLK) and not asked_nonblocking:
        return _blocking_again(_reopen(probe, flags | os.O_NONBLOCK, credentials), flags)
    if kind == stat.S_IFREG and not asked_nonblocking:
        # a lease another process holds (fcntl F_SETLEASE) makes an open wait until it is
        # given up, up to /proc/sys/fs/lease-break-time (45 s): O_NONBLOCK gives EAGAIN
        # instead, before anything is truncated, and a helper does the open that waits
        try:
            return _blocking_again(_reopen(probe, flags | os.O_NONBLOCK, credentials), flags)
        except BlockingIOError:
            return _defer(notif_id, tid, listener_fd, lambda: _reopen(probe, flags, credentials), domain)
    return _reopen(probe, flags, credentials)


def _create(notif_id: int, tid: int, tgid: int, checked_path: bytes, flags: int, mode: int, status: bytes,
            root: str | None, listener_fd: int, domain: Domain | None) -> int | Deferred:
    """O_CREAT of a name that did not exist when probed. Opened O_NONBLOCK: if the tracee
    made a FIFO there meanwhile, this open cannot wait for its partner."""
    def full_open() -> int:
        return open_for(tid, tgid, checked_path, flags, mode, status, root, domain=domain)

    if _parent_on_fuse(tid, tgid, checked_path, status, root):
        return _defer(notif_id, tid, listener_fd, full_open, domain)
    fd = open_for(tid, tgid, checked_path, flags | os.O_NONBLOCK, mode, status, root, domain=domain)
    if flags & os.O_NONBLOCK:
        return fd
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return _blocking_again(fd, flags)
    os.close(fd)  # something else appeared under that name: open it as asked, in a helper
    return _defer(notif_id, tid, listener_fd, full_open, domain)


def _parent_on_fuse(tid: int, tgid: int, checked_path: bytes, status: bytes, root: str | None) -> bool:
    parent = checked_path.rsplit(b"/", 1)[0] or b"/"
    try:
        directory = open_for(tid, tgid, parent, os.O_PATH | os.O_DIRECTORY, 0, status, root)
    except (OSError, EmulationError):
        return False  # the open itself will fail the way it should
    try:
        return _on_fuse(directory)
    finally:
        os.close(directory)


def _reopen(probe: int, flags: int, credentials: Identity) -> int:
    """Open the inode our O_PATH descriptor names, with `flags` and the tracee's credentials
    (the permission check of an open happens now). O_NOFOLLOW was applied by the probe,
    O_CREAT/O_EXCL have nothing left to do."""
    reopen_flags = (flags & ~(os.O_NOFOLLOW | os.O_CREAT | os.O_EXCL)) | os.O_CLOEXEC
    if credentials.domain is None and credentials.same_as_own():  # run() would switch nothing (nor the umask)
        return reopen_own(probe, reopen_flags)
    return credentials.run(lambda: reopen_own(probe, reopen_flags))


def _blocking_again(fd: int, flags: int) -> int:
    """Clear the O_NONBLOCK systrace added to an open with the tracee's `flags` (it did not
    ask for it). F_SETFL changes only O_APPEND, O_NONBLOCK, O_DIRECT, O_NOATIME and
    FASYNC, and the open set each of them as `flags` asked (or failed): `flags` less
    O_NONBLOCK is what F_GETFL would give less O_NONBLOCK, without the F_GETFL."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except OSError:
        os.close(fd)
        raise
    return fd


def _thread_pidfd(tid: int) -> int:
    try:
        return os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:
        return -1  # the thread is gone already, or an older kernel: the helper is ended with systrace


def _defer(notif_id: int, tid: int, listener_fd: int, job: Callable[[], int], domain: Domain | None = None) -> Deferred:
    """Run `job` in a helper (forked inside the tracee's Landlock `domain` when it has one)."""
    import socket  # here, before the fork (start-up time: only opens that may wait need it)

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    watch = _thread_pidfd(tid)

    def helper() -> None:  # open, pass the result back, exit; it touches nothing else
        code = 70
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlive systrace
            os.close(listener_fd)  # a helper never holds the listener
            ours.close()
            try:
                fd = job()
            except EmulationError as error:
                theirs.send(_ERROR.pack(b"E", error.errno) + str(error).encode("utf-8", "replace")[:400])
            except OSError as error:
                theirs.send(_ERROR.pack(b"O", error.errno or errno.EIO))
            else:
                socket.send_fds(theirs, [b"F"], [fd])
            code = 0
        finally:
            os._exit(code)

    if domain is not None:
        pid = domain.fork(helper)
    else:
        pid = fork_helper()
        if pid == 0:
            helper()
    theirs.close()
    return Deferred(notif_id, pid, ours, watch, pidfd_of(pid))
