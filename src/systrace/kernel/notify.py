"""The seccomp notification listener: receive, validate, answer, inject fds."""

from __future__ import annotations

import errno
import fcntl
import os

from . import abi


class Notification:
    """One intercepted syscall. `pid` is the id of the calling thread."""

    __slots__ = ("id", "pid", "flags", "nr", "arch", "ip", "args")

    def __init__(self, id: int, pid: int, flags: int, nr: int, arch: int, ip: int, args: tuple[int, ...]):
        self.id = id
        self.pid = pid
        self.flags = flags
        self.nr = nr
        self.arch = arch
        self.ip = ip
        self.args = args

    def __repr__(self) -> str:
        return f"Notification(id={self.id}, pid={self.pid}, nr={self.nr}, args={self.args})"


class Listener:
    """Wraps the listener fd. Methods that answer return False when the notification
    is gone (the thread was killed or its call interrupted): that is not an error."""

    def __init__(self, fd: int):
        self.fd = fd
        # preallocated, mutable: fcntl.ioctl with bytes copies and raises (and clears) a
        # BufferError inside, about 1.2 us per call more
        self._buffer = bytearray(abi.NOTIF.size)
        self._zero = bytes(abi.NOTIF.size)
        self._id = bytearray(abi.ID.size)
        self._response = bytearray(abi.NOTIF_RESP.size)
        self._addfd = bytearray(abi.NOTIF_ADDFD.size)
        self._unpack = abi.NOTIF.unpack
        self._brief = abi.NOTIF_BRIEF.unpack_from
        self._pack_response = abi.NOTIF_RESP.pack_into

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def set_sync_wake_up(self) -> bool:
        """Ask the kernel to wake the tracee on our CPU (cuts a round trip ~5x)."""
        try:  # the flags are the ioctl's argument itself, not a pointer to them
            fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_SET_FLAGS, abi.USER_NOTIF_FD_SYNC_WAKE_UP)
        except OSError:
            return False
        return True

    def recv(self) -> Notification | None:
        if self._receive():
            return self.last()
        return None

    def recv_brief(self) -> tuple[int, int, int] | None:
        """(id, pid, nr) of the next notification, all a call decided by name needs
        (supervisor.answered_by_name): a Notification costs more to make than its answer.
        last() makes it when more is needed. None: its caller went away."""
        buffer = self._buffer
        buffer[:] = self._zero  # (_receive's work, inline: a Python frame less per routed call)
        try:
            fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_RECV, buffer, True)
        except InterruptedError:
            if not self._receive():  # again, as recv does
                return None
        except OSError as error:
            if error.errno == errno.ENOENT:  # the caller went away before we read it
                return None
            raise
        return self._brief(buffer)

    def last(self) -> Notification:
        """The notification received last (by recv_brief), whole."""
        values = self._unpack(self._buffer)  # id, pid, flags, nr, arch, ip, args[6]
        return Notification(values[0], values[1], values[2], values[3], values[4], values[5], values[6:])

    def _receive(self) -> bool:
        buffer = self._buffer
        buffer[:] = self._zero  # the kernel insists on a zeroed buffer
        while True:
            try:
                fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_RECV, buffer, True)
                return True
            except InterruptedError:
                continue
            except OSError as error:
                if error.errno == errno.ENOENT:  # the caller went away before we read it
                    return False
                raise

    def id_valid(self, notif_id: int) -> bool:
        abi.ID.pack_into(self._id, 0, notif_id)
        try:
            fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_ID_VALID, self._id, False)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return False
            raise
        return True

    def _send(self, notif_id: int, val: int, error: int, flags: int) -> bool:
        abi.NOTIF_RESP.pack_into(self._response, 0, notif_id, val, error, flags)
        try:
            fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_SEND, self._response, False)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def allow(self, notif_id: int) -> bool:
        """Let the kernel run the call as the tracee asked (CONTINUE). (_send's work done
        here: this is the answer of most routed calls, a Python frame less.)"""
        self._pack_response(self._response, 0, notif_id, 0, 0, abi.USER_NOTIF_FLAG_CONTINUE)
        try:
            fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_SEND, self._response, False)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def fail(self, notif_id: int, errno_value: int) -> bool:
        if errno_value <= 0:
            raise ValueError(f"errno must be positive, not {errno_value}")
        return self._send(notif_id, 0, -errno_value, 0)

    def succeed(self, notif_id: int, value: int) -> bool:
        """Complete the call without running it, returning `value`."""
        return self._send(notif_id, value, 0, 0)

    def add_fd(self, notif_id: int, srcfd: int, cloexec: bool, send: bool = False) -> int | None:
        """Install srcfd in the tracee and return the tracee's fd number (None if the
        call is gone). With send=True the call is answered with that number atomically;
        callers usually answer with succeed() instead: a plain SEND wakes the tracee
        through SYNC_WAKE_UP, an ADDFD|SEND reply does not (measured ~50 µs per open).
        If the tracee dies in between, the extra fd dies with it."""
        flags = abi.ADDFD_FLAG_SEND if send else 0
        newfd_flags = os.O_CLOEXEC if cloexec else 0
        abi.NOTIF_ADDFD.pack_into(self._addfd, 0, notif_id, flags, srcfd, 0, newfd_flags)
        try:  # with a mutable buffer and mutate_flag, fcntl.ioctl returns the ioctl's result: the fd
            return fcntl.ioctl(self.fd, abi.IOCTL_NOTIF_ADDFD, self._addfd, True)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
