"""sendto, sendmsg and sendmmsg with a destination address, on a tracee's behalf.

A rule deciding on the destination was checked on the address read once from the
tracee. The supervisor sends on the tracee's own socket (pidfd_getfd: the same file
description) with that address: a thread swapping it afterwards changes nothing. The
message (data, ancillary data, flags) is read once, with bounds, and sent as read. A
unix socket's name was resolved like a filename; the send reaches the checked inode
through /proc/self/fd/N of an O_PATH descriptor opened without following symlinks
(kernel/sockets.py, as connect does). Everything is done as the tracee
(kernel/emulate_identity.py).

Ancillary data: SCM_RIGHTS carries the tracee's descriptor numbers, taken with
pidfd_getfd and passed as ours (the same files). SCM_CREDENTIALS is checked as the kernel
checks it, for the tracee (its pid, one of its uids and gids, unless it holds
CAP_SYS_ADMIN/CAP_SETUID/CAP_SETGID), then sent as given; on a unix socket without one,
the tracee's own (tgid, real uid, real gid) are added, which is what the kernel attaches
natively when the receiver asks (SO_PASSCRED). Sending a pid other than systrace's own
needs CAP_SYS_ADMIN: without it an explicit SCM_CREDENTIALS is refused (EACCES) and the
implicit one carries systrace's pid (SECURITY.md).

Never blocking systrace: each message is sent with MSG_DONTWAIT first. When the socket
would block and the tracee's call is a blocking one, the rest is sent by a short-lived
helper process (as the blocking connect is) and the call is answered when it is done."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct

from . import closer, memory, procfs
from .emulate_identity import EmulationError, Identity, set_effective
from .emulate_view import RootFd
from .forking import end_helper, fork_helper, pidfd_of
from .libc import libc, pidfd_getfd, tgkill
from .sockets import AF_UNIX_HEADER, checked_unix_address, keep_only
from .worker import PIDFD_THREAD

SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
SCM_MAX_FD = 253
MSG_DONTWAIT, MSG_NOSIGNAL, MSG_FASTOPEN = 0x40, 0x4000, 0x20000000
CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21
CREDENTIAL_CAPS = 1 << CAP_SETGID | 1 << CAP_SETUID | 1 << CAP_SYS_ADMIN
MAX_DATA = 4 << 20  # bytes of one message read from the tracee (a datagram larger fails: EMSGSIZE)
UIO_MAXIOV = 1024
MSGHDR = struct.Struct("=QI4xQQQQi4x")  # struct msghdr: name, namelen, iov, iovlen, control, controllen, flags
MMSGHDR_SIZE, MSG_LEN_OFFSET = 64, 56  # struct mmsghdr: a msghdr, then unsigned int msg_len
IOVEC = struct.Struct("=QQ")
CMSGHDR = struct.Struct("=Qii")  # cmsg_len (size_t), cmsg_level, cmsg_type
UCRED = struct.Struct("=iII")  # pid, uid, gid
_RESULT = struct.Struct("=iI")  # error, count of lengths that follow (q each)

libc.sendmsg.restype = ctypes.c_ssize_t
libc.sendmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_char_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Message:
    """One message as read once from the tracee: destination (as checked), data,
    ancillary data (the tracee's descriptor numbers still in it) and the call's flags."""

    __slots__ = ("name", "data", "control")

    def __init__(self, name: bytes, data: bytes, control: bytes = b""):
        self.name, self.data, self.control = name, data, control


class TraceeIds:
    """What SCM_CREDENTIALS is checked against: the tracee's tgid (as systrace's pid
    namespace numbers it, and in its own), real/effective/saved ids and capabilities."""

    def __init__(self, tgid: int, status: bytes, caps: int):
        uids, gids = procfs.field(status, b"Uid").split(), procfs.field(status, b"Gid").split()
        nstgid = procfs.field(status, b"NStgid").split()
        if len(uids) != 4 or len(gids) != 4:
            raise EmulationError(errno.EACCES, "cannot read the tracee's credentials")
        self.tgid = tgid
        self.own_namespace_tgid = int(nstgid[-1]) if nstgid else tgid
        self.uids, self.gids = tuple(int(u) for u in uids[:3]), tuple(int(g) for g in gids[:3])
        self.caps = caps


def check_credentials(ucred: bytes, ids: TraceeIds) -> int:
    """0, or the errno the kernel gives the tracee for this struct ucred (scm_check_creds)."""
    pid, uid, gid = UCRED.unpack(ucred)
    if uid == 0xFFFFFFFF or gid == 0xFFFFFFFF:
        return errno.EINVAL
    if not (pid == ids.own_namespace_tgid or ids.caps >> CAP_SYS_ADMIN & 1):
        return errno.EPERM
    if not (uid in ids.uids or ids.caps >> CAP_SETUID & 1) or not (gid in ids.gids or ids.caps >> CAP_SETGID & 1):
        return errno.EPERM
    return 0


def cmsgs(control: bytes) -> list[tuple[int, int, bytes]]:
    """The control messages the kernel walks (for_each_cmsghdr), as (level, type, data).
    Raises OSError(EINVAL) where the kernel would (CMSG_OK)."""
    out, offset = [], 0
    while offset + CMSGHDR.size <= len(control):
        length, level, kind = CMSGHDR.unpack_from(control, offset)
        if length < CMSGHDR.size or length > len(control) - offset:
            raise OSError(errno.EINVAL, "bad control message")
        out.append((level, kind, control[offset + CMSGHDR.size:offset + length]))
        offset += (length + 7) & ~7
    return out


def pack_cmsgs(messages: list[tuple[int, int, bytes]]) -> bytes:
    parts = []
    for level, kind, data in messages:
        block = CMSGHDR.pack(CMSGHDR.size + len(data), level, kind) + data
        parts.append(block + bytes(-len(block) % 8))
    return b"".join(parts)


# -- reading the message once ----------------------------------------------------------
_OPTMEM_MAX: list[int] = []


def _optmem_max() -> int:
    """The most ancillary data the kernel accepts in one call (else ENOBUFS)."""
    if not _OPTMEM_MAX:
        try:
            with open("/proc/sys/net/core/optmem_max", "rb") as f:
                _OPTMEM_MAX.append(int(f.read()))
        except (OSError, ValueError):
            _OPTMEM_MAX.append(20480)
    return _OPTMEM_MAX[0]


def _read(tid: int, address: int, size: int) -> bytes:
    try:
        return memory.read(tid, address, size)
    except OSError:
        raise OSError(errno.EFAULT, "unreadable") from None


def _bounded(length: int, stream: bool) -> int:
    if length <= MAX_DATA:
        return length
    if stream:
        return MAX_DATA  # a stream may take part of it: the call returns a short count
    raise OSError(errno.EMSGSIZE, f"message larger than {MAX_DATA} bytes")


def read_buffer(tid: int, address: int, length: int, stream: bool) -> bytes:
    """sendto's buffer."""
    if length >= 1 << 63:
        raise OSError(errno.EFAULT, "bad length")
    return _read(tid, address, _bounded(length, stream)) if length else b""


def read_msghdr(tid: int, address: int, name: bytes, stream: bool) -> Message:
    """A struct msghdr's data and ancillary data, in the kernel's order of checks."""
    _, _, iov, iovlen, control, controllen, _ = MSGHDR.unpack(_read(tid, address, MSGHDR.size))
    if iovlen > UIO_MAXIOV:
        raise OSError(errno.EMSGSIZE, "too many iovecs")
    vectors = [IOVEC.unpack_from(_read(tid, iov, IOVEC.size * iovlen), i * IOVEC.size) for i in range(iovlen)] \
        if iovlen else []
    if any(length >= 1 << 63 for _, length in vectors):
        raise OSError(errno.EINVAL, "bad iovec length")
    left = _bounded(sum(length for _, length in vectors), stream)
    chunks = []
    for base, length in vectors:
        take = min(length, left)
        if take:
            chunks.append(_read(tid, base, take))
            left -= take
    if controllen > 0x7FFFFFFF or controllen > _optmem_max():
        raise OSError(errno.ENOBUFS, "control data too large")
    return Message(name, b"".join(chunks), _read(tid, control, controllen) if controllen else b"")


# -- ancillary data: the tracee's descriptors and credentials ---------------------------
def translate_control(message: Message, unix: bool, pidfd: int, ids: TraceeIds, can_send_pids: bool,
                      fds: list[int]) -> bytes:
    """The control data to send for the tracee: SCM_RIGHTS with our descriptors for its
    numbers (appended to `fds`, closed by the caller), SCM_CREDENTIALS checked for it
    (or, on a unix socket, its own added). Raises OSError (the tracee's error) or
    EmulationError."""
    if not message.control and not unix:
        return b""
    parsed = cmsgs(message.control) if message.control else []
    out, passed, credentials = [], 0, False
    for level, kind, data in parsed:
        if unix and level == SOL_SOCKET and kind == SCM_RIGHTS:
            numbers = struct.unpack(f"={len(data) // 4}i", data[:len(data) // 4 * 4])
            passed += len(numbers)
            if passed > SCM_MAX_FD:
                raise OSError(errno.EINVAL, "too many descriptors")
            ours = []
            for number in numbers:
                try:
                    ours.append(pidfd_getfd(pidfd, number))
                except OSError as error:
                    if error.errno == errno.EBADF:
                        raise
                    raise EmulationError(errno.EACCES, f"cannot take the tracee's descriptor {number}: {error}") from None
                fds.append(ours[-1])
            data = struct.pack(f"={len(ours)}i", *ours)
        elif level == SOL_SOCKET and kind == SCM_CREDENTIALS:
            if len(data) != UCRED.size:
                raise OSError(errno.EINVAL, "bad credentials")
            code = check_credentials(data, ids)
            if code:
                raise OSError(code, "credentials the tracee may not send")
            if not unix:
                raise EmulationError(errno.EACCES, "SCM_CREDENTIALS on a socket that is not a unix one")
            if not can_send_pids:
                raise EmulationError(errno.EACCES, "systrace cannot send the tracee's credentials (no CAP_SYS_ADMIN)")
            pid = UCRED.unpack(data)[0]
            if pid == ids.own_namespace_tgid:  # the same process, as systrace's pid namespace numbers it
                data = UCRED.pack(ids.tgid, *UCRED.unpack(data)[1:])
            elif ids.own_namespace_tgid != ids.tgid:  # another process, numbered in the tracee's namespace
                raise EmulationError(errno.EACCES, "SCM_CREDENTIALS naming another process from another pid namespace")
            credentials = True
        out.append((level, kind, data))
    if unix and not credentials and can_send_pids:
        out.append((SOL_SOCKET, SCM_CREDENTIALS, UCRED.pack(ids.tgid, ids.uids[0], ids.gids[0])))
    return pack_cmsgs(out)


# -- sending ---------------------------------------------------------------------------
def send_one(fd: int, message: Message, control: bytes, flags: int) -> int:
    """Bytes sent, or -errno."""
    iov = _Iovec(message.data, len(message.data))
    header = _Msghdr(message.name, len(message.name), ctypes.addressof(iov), 1, control or None, len(control), 0)
    sent = libc.sendmsg(fd, ctypes.byref(header), flags | MSG_NOSIGNAL)
    return sent if sent >= 0 else -(ctypes.get_errno() or errno.EIO)


class Outcome:
    """What the sends did: the length sent of each message in turn, and the error that
    stopped them (0: none)."""

    __slots__ = ("lengths", "error")

    def __init__(self, lengths: list[int] | None = None, error: int = 0):
        self.lengths = lengths if lengths is not None else []
        self.error = error

    def to_bytes(self) -> bytes:
        """As a helper hands it back over its pipe."""
        return _RESULT.pack(self.error, len(self.lengths)) + struct.pack(f"={len(self.lengths)}q", *self.lengths)

    @staticmethod
    def from_bytes(data: bytes) -> Outcome:
        """What a helper wrote (EIO when it died before writing it all)."""
        if len(data) < _RESULT.size:
            return Outcome(error=errno.EIO)
        error, count = _RESULT.unpack_from(data)
        if len(data) < _RESULT.size + 8 * count:
            return Outcome(error=errno.EIO)
        return Outcome(list(struct.unpack_from(f"={count}q", data, _RESULT.size)), error)


def send_messages(fd: int, messages: list[Message], controls: list[bytes], flags: int, start: int = 0,
                  offset: int = 0) -> tuple[Outcome, int, int]:
    """Send messages[start:] (the first from byte `offset`: the rest of a stream message
    sent in part) with `flags`; stop at the first error or short send. Returns the
    outcome and where it stopped (index, offset)."""
    outcome = Outcome()
    for index in range(start, len(messages)):
        message, control = messages[index], controls[index]
        if offset:
            message, control = Message(message.name, message.data[offset:]), b""
        sent = send_one(fd, message, control, flags)
        if sent < 0:
            outcome.error = -sent
            return outcome, index, offset
        outcome.lengths.append(sent)
        if sent < len(message.data):
            return outcome, index, offset + sent
        offset = 0
    return outcome, len(messages), 0


class PendingSend:
    """Blocking sends running in a helper; `fd` becomes readable when they are done,
    `watch` (the calling thread's pidfd) when the caller is gone."""

    def __init__(self, notif_id: int, pid: int, fd: int, before: Outcome, offset: int, watch: int,
                 pidfd: int = -1):
        self.notif_id, self.pid, self.fd, self.watch = notif_id, pid, fd, watch
        self.pidfd = pidfd  # the helper's (forking.py: ended through it, never by pid)
        self.before, self.offset = before, offset  # what the loop sent first; bytes of the message in part

    def fds(self) -> tuple[int, ...]:
        return (self.fd, self.watch) if self.watch >= 0 else (self.fd,)

    def cancel(self) -> None:
        """The caller is gone (or systrace is ending): stop the helper."""
        self._release(kill=True)

    def _release(self, kill: bool = False) -> None:
        os.close(self.fd)
        if self.watch >= 0:
            os.close(self.watch)
            self.watch = -1
        end_helper(self.pid, self.pidfd, kill)
        self.pidfd = -1

    def result(self) -> Outcome:
        try:
            data = os.read(self.fd, _RESULT.size + 8 * UIO_MAXIOV)
        finally:
            self._release()
        return _joined(self.before, self.offset, Outcome.from_bytes(data))


def _joined(before: Outcome, offset: int, after: Outcome) -> Outcome:
    """The loop's sends then the helper's; a message sent in part counts its first part."""
    lengths = list(before.lengths)
    rest = list(after.lengths)
    if offset:  # the last of the loop's lengths was the first part of a message
        lengths[-1] += rest.pop(0) if rest else 0
        if not after.lengths:
            return Outcome(lengths, 0)  # part of it went: the call returns what was sent
    return Outcome(lengths + rest, after.error)


def _helper(notif_id: int, theirs: int, messages: list[Message], controls: list[bytes], flags: int,
            identity: Identity, raise_caps: bool, keep: list[int], before: Outcome, start: int,
            offset: int, tid: int) -> PendingSend:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        watch = os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:
        watch = -1  # the thread is gone already, or an older kernel: the helper ends with systrace
    def helper() -> None:  # become the tracee, send, report, exit; it touches nothing else
        code = 70
        try:
            identity.apply()
            if raise_caps:
                set_effective(identity.caps | CREDENTIAL_CAPS)
            libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL (after the switch, which clears it)
            keep_only(write_end, *keep)  # nothing worth taking: not the listener, not a log
            outcome, _, _ = send_messages(theirs, messages, controls, flags, start, offset)
            os.write(write_end, outcome.to_bytes())
            code = 0
        except EmulationError:
            os.write(write_end, _RESULT.pack(errno.EACCES, 0))
        finally:
            os._exit(code)

    if identity.domain is not None:  # the tracee restricted itself: so does its helper
        pid = identity.domain.fork(helper)
    else:
        pid = fork_helper()
        if pid == 0:
            helper()
    os.close(write_end)
    return PendingSend(notif_id, pid, read_end, before, offset, watch, pidfd_of(pid))


def sigpipe_due(outcome: Outcome, flags: int, kind: int) -> bool:
    """A stream socket's EPIPE sends the calling thread SIGPIPE unless MSG_NOSIGNAL."""
    return outcome.error == errno.EPIPE and not flags & MSG_NOSIGNAL and kind == socket.SOCK_STREAM


class SendCall:
    """One emulated send: `read` takes the messages from the tracee once (as systrace),
    `run` sends them (as the tracee)."""

    def __init__(self, name: str, tid: int, tgid: int, args: tuple[int, ...], names: list[bytes],
                 unix_path: bytes | None, root: str | None, identity: Identity, status: bytes):
        self.name, self.tid, self.tgid, self.args = name, tid, tgid, args
        self.names, self.unix_path, self.root, self.identity = names, unix_path, root, identity
        self.ids = TraceeIds(tgid, status, identity.caps)
        self.flags = args[{"sendto": 3, "sendmsg": 2, "sendmmsg": 3}[name]] & 0xFFFFFFFF
        self.kind = 0
        self.notif_id = 0
        self.preread: list[Message] | None = None  # read by read_first, for a run in a helper

    def read_first(self, pidfd: int) -> Outcome | None:
        """Read the messages from the tracee now, in the loop (where its memory is read
        with a bound), so that a helper running the sends (a unix name on FUSE, whose
        lookup may wait) reads nothing of the tracee. An Outcome when that fails already."""
        try:
            theirs = pidfd_getfd(pidfd, ctypes.c_int(self.args[0] & 0xFFFFFFFF).value)
        except OSError as error:
            return Outcome(error=error.errno or errno.EIO)
        try:
            sock = socket.socket(fileno=theirs)
            stream = sock.type == socket.SOCK_STREAM
            sock.detach()
            self.preread = self._messages(stream)
        except OSError as error:
            return Outcome(error=error.errno or errno.EIO)
        finally:
            closer.close_taken(theirs)  # a socket: its last close may wait (kernel/closer.py)
        return None

    def run(self, pidfd: int, notif_id: int) -> Outcome | PendingSend:
        """What the sends did, or a PendingSend when the rest waits in a helper. Raises
        EmulationError when it cannot be done as the tracee."""
        self.notif_id = notif_id
        try:
            theirs = pidfd_getfd(pidfd, ctypes.c_int(self.args[0] & 0xFFFFFFFF).value)
        except OSError as error:
            return Outcome(error=error.errno or errno.EIO)
        fds = [theirs]
        root_fd: RootFd | None = None
        try:
            try:
                sock = socket.socket(fileno=theirs)
            except OSError as error:
                return Outcome(error=error.errno or errno.EIO)
            family, self.kind = sock.family, sock.type
            sock.detach()
            unix, stream = family == socket.AF_UNIX, self.kind == socket.SOCK_STREAM
            try:
                messages = self._messages(stream)
                can_send_pids = Identity.own()[6] & CREDENTIAL_CAPS == CREDENTIAL_CAPS  # systrace's permitted set
                controls = [translate_control(m, unix, pidfd, self.ids, can_send_pids, fds) for m in messages]
            except OSError as error:
                return Outcome(error=error.errno or errno.EIO)
            raise_caps = unix and can_send_pids
            blocking = not (self.flags & MSG_DONTWAIT or fcntl.fcntl(theirs, fcntl.F_GETFL) & os.O_NONBLOCK)
            if blocking and self.flags & MSG_FASTOPEN:  # a TCP connect first: it waits for the network
                return _helper(notif_id, theirs, messages, controls, self.flags, self.identity, raise_caps, fds,
                               Outcome(), 0, 0, self.tid)
            named = [m for m in messages if m.name[:2] == AF_UNIX_HEADER and len(m.name) > 2 and m.name[2]]
            if named and self.unix_path is None:  # never sent as a string
                return Outcome(error=errno.ENOENT)
            if named:
                root_fd = RootFd(self.tid, self.root)

            def attempt() -> tuple[Outcome, int, int]:
                """As the tracee (in the copy of its own Landlock domain, when it has one)."""
                saved = self.identity.caps  # the effective set the identity leaves (its own when nothing switched)
                try:
                    if named and root_fd is not None:
                        address = checked_unix_address("connect", self.unix_path or b"", root_fd, fds)
                        for message in named:
                            message.name = address
                    if raise_caps:  # the kernel checks the credentials sent against systrace's: checked above
                        set_effective(saved | CREDENTIAL_CAPS)
                    return send_messages(theirs, messages, controls, self.flags | MSG_DONTWAIT)
                finally:
                    if raise_caps:
                        set_effective(saved)

            try:
                outcome, index, offset = self.identity.run(attempt)
            except OSError as error:  # the checked name is gone, or is no socket now
                return Outcome(error=error.errno or errno.EIO)
            if blocking and index < len(messages) and (outcome.error == errno.EAGAIN or offset):
                # the tracee's call waits here: the rest is sent by a helper, as blocking
                return _helper(notif_id, theirs, messages, controls, self.flags, self.identity, raise_caps, fds,
                               Outcome(outcome.lengths), index, offset, self.tid)
            return outcome
        finally:
            for fd in fds:  # (the tracee's socket and SCM_RIGHTS files: their last close may wait)
                closer.close_taken(fd)
            if root_fd is not None:
                root_fd.close()

    def _messages(self, stream: bool) -> list[Message]:
        if self.preread is not None:
            return self.preread
        if self.name == "sendto":
            return [Message(self.names[0], read_buffer(self.tid, self.args[1], self.args[2], stream))]
        count = len(self.names) if self.name == "sendmmsg" else 1
        stride = MMSGHDR_SIZE if self.name == "sendmmsg" else MSGHDR.size
        return [read_msghdr(self.tid, self.args[1] + i * stride, self.names[i], stream) for i in range(count)]

    def answer(self, outcome: Outcome) -> tuple[int, int]:
        """(value, errno) to answer the call with; writes sendmmsg's msg_len fields and
        sends SIGPIPE where the kernel would. Call with the notification still valid."""
        if sigpipe_due(outcome, self.flags, self.kind):
            try:
                tgkill(self.tgid, self.tid, signal.SIGPIPE)
            except OSError:
                pass  # the thread is gone
        if self.name != "sendmmsg":
            return (outcome.lengths[0], 0) if outcome.lengths else (-1, outcome.error or errno.EIO)
        for index, length in enumerate(outcome.lengths):
            try:
                memory.write(self.tid, self.args[1] + index * MMSGHDR_SIZE + MSG_LEN_OFFSET,
                             struct.pack("=I", length & 0xFFFFFFFF))
            except OSError:
                return (index, 0) if index else (-1, errno.EFAULT)
        return (len(outcome.lengths), 0) if outcome.lengths else (-1, outcome.error or errno.EIO)
