"""connect/bind on a tracee's behalf, with the address that was checked.

The supervisor takes the tracee's socket (pidfd_getfd: the same file description) and
calls connect or bind itself with its own copy of the address: a thread swapping the
address in the tracee's memory after the check changes nothing. bind and connect on a
non-blocking socket are done at once; a blocking connect, which may wait for the network,
is done in a short-lived helper process so the supervisor keeps serving meanwhile."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

from .libc import libc, pidfd_getfd

libc.connect.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.bind.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]


def _call(name: str, fd: int, address: bytes) -> int:
    """0, or the errno of connect/bind."""
    function = libc.connect if name == "connect" else libc.bind
    if function(fd, address, len(address)) == 0:
        return 0
    return ctypes.get_errno() or errno.EIO


class Pending:
    """A blocking connect running in a helper; `fd` becomes readable when it is done."""

    def __init__(self, notif_id: int, pid: int, fd: int):
        self.notif_id, self.pid, self.fd = notif_id, pid, fd

    def result(self) -> int:
        data = os.read(self.fd, 4)
        os.close(self.fd)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass  # already reaped by the supervisor's loop
        return struct.unpack("=i", data)[0] if len(data) == 4 else errno.EIO


def socket_call(name: str, pidfd: int, sockfd: int, address: bytes, notif_id: int) -> int | Pending:
    """The call's result now (0 or an errno), or a Pending blocking connect."""
    try:
        theirs = pidfd_getfd(pidfd, sockfd)
    except OSError as error:
        return errno.EBADF if error.errno == errno.EBADF else error.errno
    try:
        if name == "bind" or fcntl.fcntl(theirs, fcntl.F_GETFL) & os.O_NONBLOCK:
            return _call(name, theirs, address)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # helper: connect, report, exit; it touches nothing else
            code = 70
            try:
                libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: never outlive systrace
                os.write(write_end, struct.pack("=i", _call(name, theirs, address)))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return Pending(notif_id, pid, read_end)
    finally:
        os.close(theirs)
