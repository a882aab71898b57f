"""connect/bind on a tracee's behalf, with the address that was checked, as the tracee.

The supervisor takes the tracee's socket (pidfd_getfd: the same file description) and
calls connect or bind itself with its own copy of the address: a thread swapping the
address in the tracee's memory after the check changes nothing. It acts with the
tracee's identity (kernel/emulate_identity.py: its ids, groups, capabilities, umask), so
a port below 1024 or a socket in a directory the tracee may not search is refused as it
would be natively. A unix socket's path was resolved like a filename (the tracee's cwd
and root); the call reaches the checked inode: connect goes through /proc/self/fd/N of an
O_PATH descriptor of the socket opened without following symlinks, bind creates the name
in the checked parent directory (/proc/self/fd/DIR/NAME). Abstract names stay names.

bind and connect on a non-blocking socket are done at once (a connect bounded by a timer:
the tracee may make the socket blocking meanwhile); a blocking connect, which may wait
for the network, is done in a short-lived helper process so the supervisor keeps serving
meanwhile."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import stat
import struct

from . import closer
from .emulate import openat2
from .emulate_identity import EmulationError, Identity
from .emulate_view import RootFd, open_directory, split
from .forking import end_helper, fork_helper, pidfd_of
from .libc import libc, pidfd_getfd

libc.connect.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.bind.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AF_UNIX_HEADER = (1).to_bytes(2, "little")
SUN_PATH_MAX = 108


def _call(name: str, fd: int, address: bytes) -> int:
    """0, or the errno of connect/bind."""
    function = libc.connect if name == "connect" else libc.bind
    if function(fd, address, len(address)) == 0:
        return 0
    return ctypes.get_errno() or errno.EIO


CONNECT_BOUND = 0.05  # seconds a connect of a non-blocking socket may take in systrace's loop


def _bounded_connect(fd: int, address: bytes) -> int:
    """connect a socket that was non-blocking when checked. The tracee shares its file
    description and may clear O_NONBLOCK between our check and our connect: an interval
    timer interrupts a connect that then waits (EINTR). A TCP connect interrupted goes on
    in the kernel, and a blocking connect called again waits for it; a unix socket's is
    simply made again."""
    previous = signal.signal(signal.SIGALRM, _interrupted)  # no SA_RESTART: connect returns EINTR
    signal.setitimer(signal.ITIMER_REAL, CONNECT_BOUND)
    try:
        return _call("connect", fd, address)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _interrupted(number: int, frame: object) -> None:
    pass


class Pending:
    """A blocking connect running in a helper; `fd` becomes readable when it is done."""

    def __init__(self, notif_id: int, pid: int, fd: int, tid: int = 0, pidfd: int = -1):
        self.notif_id, self.pid, self.fd, self.tid = notif_id, pid, fd, tid
        self.pidfd = pidfd  # the helper's (forking.py: ended through it, never by pid)

    def cancel(self) -> None:
        """Abandon the connect (the caller was interrupted): end the helper."""
        end_helper(self.pid, self.pidfd, kill=True)
        self.pidfd = -1
        os.close(self.fd)

    def result(self) -> int:
        data = os.read(self.fd, 4)
        os.close(self.fd)
        end_helper(self.pid, self.pidfd, kill=False)
        self.pidfd = -1
        return struct.unpack("=i", data)[0] if len(data) == 4 else errno.EIO


def checked_unix_address(name: str, checked: bytes, root: RootFd, fds: list[int]) -> bytes:
    """An address naming the checked socket inode (connect) or the checked parent
    directory (bind), through this process's descriptors. Raises OSError/EmulationError."""
    parent, final = split(checked)
    directory = open_directory(root, parent)
    fds.append(directory)
    if name == "bind":
        path = f"/proc/self/fd/{directory}/".encode() + final
    else:
        fd = openat2(directory, final, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0, root.resolve_flags())
        fds.append(fd)
        mode = os.fstat(fd).st_mode
        if stat.S_ISLNK(mode):  # a symlink put there since the check: follow nothing
            raise OSError(errno.ELOOP, "symbolic link")
        if not stat.S_ISSOCK(mode):
            raise OSError(errno.ECONNREFUSED, "not a socket")
        path = f"/proc/self/fd/{fd}".encode()
    if len(path) >= SUN_PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, "name too long for a socket address")
    return AF_UNIX_HEADER + path + b"\0"


def keep_only(*fds: int) -> None:
    """Close every descriptor but `fds`. The helper, like systrace, is outside the
    command's Landlock domain (no ptrace, pidfd_getfd or signal reaches it); holding
    nothing but the tracee's own socket (and the descriptors that name a checked unix
    address), it has nothing to give away either."""
    low = 0
    for fd in sorted(fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def socket_call(name: str, pidfd: int, sockfd: int, address: bytes, notif_id: int, identity: Identity,
                unix_path: bytes | None = None, tid: int = 0, root: str | None = None) -> int | Pending:
    """The call's result now (0 or an errno), or a Pending blocking connect. Raises
    EmulationError when it cannot be done as the tracee."""
    try:
        theirs = pidfd_getfd(pidfd, sockfd)
    except OSError as error:
        return error.errno or errno.EIO
    fds = [theirs]
    root_fd: RootFd | None = None
    try:
        if address[:2] == AF_UNIX_HEADER and len(address) > 2 and address[2] != 0:
            if unix_path is None:
                return errno.ENOENT  # the check could not resolve it
            root_fd = RootFd(tid, root)
            identity.apply(creating=name == "bind")  # search permission, and the new socket's owner and mode
            try:
                address = checked_unix_address(name, unix_path, root_fd, fds)
            except OSError as error:
                return error.errno or errno.EIO
            finally:
                identity.undo()
        if name == "bind":
            return identity.run(lambda: _call(name, theirs, address), creating=True)
        if identity.domain is None and fcntl.fcntl(theirs, fcntl.F_GETFL) & os.O_NONBLOCK:
            # (in a Landlock domain's thread no timer can interrupt it: a helper does it)
            identity.apply()
            try:
                result = _bounded_connect(theirs, address)
            finally:
                identity.undo()
            if result != errno.EINTR:
                return result
            # another thread made the socket blocking after our check: the rest waits in a helper
        read_end, write_end = os.pipe2(os.O_CLOEXEC)

        def helper() -> None:  # become the tracee, connect, report, exit; it touches nothing else
            code = 70
            try:
                identity.apply()
                libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL (after the switch, which clears it)
                keep_only(write_end, *fds)  # nothing worth taking: not the listener, not a log
                os.write(write_end, struct.pack("=i", _call(name, theirs, address)))
                code = 0
            except EmulationError:
                os.write(write_end, struct.pack("=i", errno.EACCES))
            finally:
                os._exit(code)

        if identity.domain is not None:
            pid = identity.domain.fork(helper)  # the helper keeps the domain
        else:
            pid = fork_helper()
            if pid == 0:
                helper()
        os.close(write_end)
        return Pending(notif_id, pid, read_end, tid, pidfd_of(pid))
    finally:
        for fd in fds:  # (the tracee's socket among them: its last close may wait, kernel/closer.py)
            closer.close_taken(fd)
        if root_fd is not None:
            root_fd.close()
