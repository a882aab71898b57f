"""Reading a tracee's memory with process_vm_readv (never a cached /proc/PID/mem fd:
after exec it reads dead memory, and for a vfork child it reads the parent).

A page mapped from a FUSE file faults in through its server, which may be the tracee
and may never answer: process_vm_readv (or writev) would then wait forever, and the
supervisor's one thread with it. While no such file system exists anywhere on the
machine (mounts.ServedAnywhere: one fstat) memory is read here directly. Otherwise
every access is made by a reader thread and waited for at most READ_BOUND: one that
takes longer is abandoned (the thread stays in the kernel until the server answers or
dies) and fails with EFAULT, so the call is decided as on unreadable memory (refused
where a rule reads it). A thread and not a check of /proc/PID/maps: another thread of
the tracee could map a FUSE file over the address between such a check and the read."""

from __future__ import annotations

import ctypes
import errno
import os

from .forking import fork_helper, kill_helper
from .libc import libc
from .mounts import ServedAnywhere

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

PAGE = os.sysconf("SC_PAGE_SIZE")
PATH_MAX = 4096


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MemoryError_(OSError):
    """The tracee's memory could not be read at that address."""


READ_BOUND = 0.05  # seconds an access to tracee memory may take while FUSE exists
MAX_ABANDONED = 8  # readers left waiting on a server; beyond, accesses fail at once
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
READER_NAME = b"systrace-memory"  # its comm (15 bytes at most)
_SERVED = ServedAnywhere()
_LENGTH = 8


def new_call() -> None:
    """The supervisor's loop starts on another notification (or turn): whether a served
    file system exists is looked at again at the call's first question, and that answer
    holds for the call (kernel/mounts.py ServedAnywhere)."""
    _SERVED.expire()


class _Reader:
    """A forked process that makes the accesses for the supervisor, one at a time, and
    hands back their outcome over a socket. A process, not a thread: once its request has
    reached the server, a thread waiting on FUSE cannot be killed, and would keep all of
    systrace from exiting. It closes everything but its socket (never the listener), dies
    with systrace, and is killed when it takes longer than READ_BOUND (it then ends when
    the server answers or goes)."""

    def __init__(self) -> None:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        pid = fork_helper()  # a pid no continued call of the tracee still names
        if pid == 0:
            code = 70
            try:
                libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # SIGKILL
                name = ctypes.create_string_buffer(READER_NAME)
                libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)  # told apart from the other helpers
                keep = theirs.fileno()
                os.closerange(0, keep)
                os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
                _serve(keep)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self.sock = pid, ours
        try:
            self.pidfd = os.pidfd_open(pid)  # readable once it has ended
        except OSError:
            self.pidfd = -1
        self.abandoned = False

    def run(self, name: str, args: tuple[object, ...]) -> object:
        import pickle
        import select

        request = pickle.dumps((name, args))
        try:
            self.sock.sendall(len(request).to_bytes(_LENGTH, "little") + request)
            reply = b""
            size = -1
            while size < 0 or len(reply) < size:
                waiting = select.poll()  # (not select(): a descriptor may be numbered past 1023)
                waiting.register(self.sock, select.POLLIN)
                if not waiting.poll(READ_BOUND * 1000):
                    raise TimeoutError
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise MemoryError_(errno.EIO, "the memory reader died")
                reply += chunk
                if size < 0 and len(reply) >= _LENGTH:
                    size, reply = int.from_bytes(reply[:_LENGTH], "little"), reply[_LENGTH:]
        except TimeoutError:
            self.abandon()
            raise MemoryError_(errno.EFAULT, f"tracee memory took longer than {READ_BOUND} s to reach "
                                             "(mapped from a file system a process serves?)") from None
        except OSError as error:
            self.abandon()
            raise MemoryError_(errno.EIO, f"the memory reader failed: {error}") from None
        ok, value = pickle.loads(reply)  # our own child's: trusted
        if not ok:
            code, text = value
            raise MemoryError_(code, text)
        return value

    def abandon(self) -> None:
        self.abandoned = True
        if self.pidfd >= 0:  # (closed: it ended, and its pid may be anyone's now)
            kill_helper(self.pidfd)  # it ends as soon as the server lets it (reaped with the others)
        self.sock.close()

    def alive(self) -> bool:
        if self.pidfd < 0:
            return False
        import select

        exited = select.poll()  # (not select(): a descriptor may be numbered past 1023)
        exited.register(self.pidfd, select.POLLIN)
        if exited.poll(0):
            os.close(self.pidfd)
            self.pidfd = -1
            return False
        return True


_OPERATIONS: dict[str, Callable[..., object]] = {}


def _serve(fd: int) -> None:
    """The reader's loop: (name, args) in, (True, value) or (False, (errno, text)) out."""
    import pickle

    while True:
        header = _receive(fd, _LENGTH)
        if header is None:
            return
        request = _receive(fd, int.from_bytes(header, "little"))
        if request is None:
            return
        name, args = pickle.loads(request)
        try:
            outcome: tuple[bool, object] = (True, _OPERATIONS[name](*args))
        except OSError as error:
            outcome = (False, (error.errno or errno.EIO, str(error)))
        data = pickle.dumps(outcome)
        view = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
        while view:
            view = view[os.write(fd, view):]


def _receive(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


_readers: dict[int, _Reader] = {}  # by supervisor process: a forked one (a replica) makes its own
_abandoned: list[_Reader] = []


def reader_pids() -> list[int]:
    """The memory readers this process started that may be alive (protected as helpers)."""
    readers = [*_abandoned, *_readers.values()]
    return [reader.pid for reader in readers if reader.pidfd >= 0]


def _guarded(name: str, *args: object) -> object:
    """The access `name`, made here, or by the reader with a bound while a file system a
    process serves exists anywhere."""
    if not _SERVED.present():
        return _OPERATIONS[name](*args)
    supervisor = os.getpid()
    reader = _readers.get(supervisor)
    if reader is None or reader.abandoned:
        _abandoned[:] = [old for old in _abandoned if old.alive()]
        if reader is not None:
            _abandoned.append(reader)
            del _readers[supervisor]
        if len(_abandoned) >= MAX_ABANDONED:
            raise MemoryError_(errno.EFAULT, f"{len(_abandoned)} accesses to tracee memory still wait on a server")
        reader = _readers[supervisor] = _Reader()
    return reader.run(name, args)


def fuse_present() -> bool:
    """Does a FUSE file system exist anywhere (a file's metadata may then wait on its
    server: kernel/emulate_fstat.py)?"""
    return _SERVED.present()


def read(pid: int, address: int, size: int) -> bytes:
    """Read exactly `size` bytes or raise MemoryError_."""
    data: bytes = _guarded("read", pid, address, size)  # type: ignore[assignment]
    if len(data) != size:
        raise MemoryError_(14, f"cannot read {size} bytes at {address:#x} in {pid}")
    return data


def _read_upto(pid: int, address: int, size: int) -> bytes:
    """Read up to `size` bytes, stopping at the first unreadable page. One remote iovec
    per page, because the kernel never splits an iovec on a partial read."""
    if size <= 0:
        return b""
    if address == 0:
        raise MemoryError_(14, "NULL pointer")
    buffer = ctypes.create_string_buffer(size)
    remotes = []
    position = address
    end = address + size
    while position < end:
        chunk = min(end, (position // PAGE + 1) * PAGE) - position
        remotes.append((position, chunk))
        position += chunk
    local = _Iovec(ctypes.addressof(buffer), size)
    remote = (_Iovec * len(remotes))(*(_Iovec(base, length) for base, length in remotes))
    got = libc.process_vm_readv(pid, ctypes.byref(local), 1, remote, len(remotes), 0)
    if got < 0:
        code = ctypes.get_errno()
        raise MemoryError_(code, f"process_vm_readv({pid}, {address:#x}): {os.strerror(code)}")
    return buffer.raw[:got]


_PAGE_BUFFER = ctypes.create_string_buffer(PAGE + 1)  # the supervisor is single-threaded
_LOCAL = _Iovec(ctypes.addressof(_PAGE_BUFFER), PAGE)
_REMOTE = _Iovec(0, 0)


def _read_within_page(pid: int, address: int) -> int:
    """From address to the end of its page into _PAGE_BUFFER, in one call with
    preallocated iovecs, followed by a NUL; returns how many bytes were read."""
    size = PAGE - address % PAGE
    _LOCAL.len = size
    _REMOTE.base = address
    _REMOTE.len = size
    got = libc.process_vm_readv(pid, ctypes.byref(_LOCAL), 1, ctypes.byref(_REMOTE), 1, 0)
    if got < 0:
        code = ctypes.get_errno()
        raise MemoryError_(code, f"process_vm_readv({pid}, {address:#x}): {os.strerror(code)}")
    _PAGE_BUFFER[got] = b"\0"  # so .value stops within what was read
    return got


def _guarded_within_page(pid: int, address: int) -> int:
    """_read_within_page, or the same through a reader thread (into a buffer of its own:
    an abandoned thread may write into it long after)."""
    if not _SERVED.present():
        return _read_within_page(pid, address)
    data: bytes = _guarded("read", pid, address, PAGE - address % PAGE)  # type: ignore[assignment]
    ctypes.memmove(_PAGE_BUFFER, data, len(data))
    _PAGE_BUFFER[len(data)] = b"\0"
    return len(data)


def read_cstring(pid: int, address: int, limit: int = PATH_MAX) -> bytes:
    """A NUL-terminated string of at most `limit` bytes (without the NUL). Raises
    MemoryError_ if unreadable or unterminated within the limit."""
    if address == 0:
        raise MemoryError_(14, "NULL pointer")
    got = _guarded_within_page(pid, address)  # most strings end in their first page
    first = _PAGE_BUFFER.value  # up to the first NUL (without copying the rest of the page)
    if len(first) < got and len(first) <= limit:
        return first
    # no NUL up to the page's end (or too long already): go on from there, the first
    # page's part not read again (a string on the stack across a page boundary)
    collected = first
    position = address + got
    while len(collected) < limit:
        chunk = min(limit - len(collected) + 1, (position // PAGE + 1) * PAGE - position)
        data: bytes = _guarded("read", pid, position, chunk)  # type: ignore[assignment]
        if not data:
            raise MemoryError_(14, f"cannot read string at {position:#x} in {pid}")
        nul = data.find(b"\0")
        if nul >= 0:
            return collected + data[:nul]
        collected += data
        position += len(data)
        if len(data) < chunk:
            raise MemoryError_(14, f"string at {address:#x} runs into unmapped memory")
    raise MemoryError_(36, f"string at {address:#x} longer than {limit} bytes")


def read_pointer_array(pid: int, address: int, limit: int = 4096) -> list[int]:
    """A NULL-terminated array of pointers (argv, envp): read up to the end of a page at
    a time (an exec's argv in one read, not one per pointer), never past the page the
    NULL is in, so an array that ends just before unmapped memory reads as natively."""
    pointers: list[int] = []
    position = address
    while len(pointers) < limit:
        words = min(_POINTERS_AT_ONCE, ((position // PAGE + 1) * PAGE - position) // 8, limit - len(pointers)) or 1
        data = read(pid, position, 8 * words)
        for index in range(0, len(data), 8):
            word = int.from_bytes(data[index:index + 8], "little")
            if word == 0:
                return pointers
            pointers.append(word)
        position += len(data)
    raise MemoryError_(7, f"pointer array at {address:#x} longer than {limit}")


_POINTERS_AT_ONCE = 64  # an exec's argv, most often


libc.process_vm_writev.restype = ctypes.c_ssize_t


def write(pid: int, address: int, data: bytes) -> None:
    """Write `data` at `address` in the tracee (an emulated call's results) or raise
    MemoryError_. One remote iovec per page, like reads; bounded like them."""
    if not data:
        return
    if address and address // PAGE == (address + len(data) - 1) // PAGE and len(data) <= PAGE \
            and not _SERVED.present():  # (a struct stat: within one page, preallocated iovecs)
        ctypes.memmove(_WRITE_BUFFER, data, len(data))
        _WRITE_LOCAL.len = _WRITE_REMOTE.len = len(data)
        _WRITE_REMOTE.base = address
        got = libc.process_vm_writev(pid, ctypes.byref(_WRITE_LOCAL), 1, ctypes.byref(_WRITE_REMOTE), 1, 0)
        if got != len(data):
            code = ctypes.get_errno() if got < 0 else 14
            raise MemoryError_(code, f"process_vm_writev({pid}, {address:#x}): {os.strerror(code)}")
        return
    _guarded("write", pid, address, data)


_WRITE_BUFFER = ctypes.create_string_buffer(PAGE)  # the supervisor is single-threaded
_WRITE_LOCAL = _Iovec(ctypes.addressof(_WRITE_BUFFER), 0)
_WRITE_REMOTE = _Iovec(0, 0)


def _write(pid: int, address: int, data: bytes) -> None:
    if address == 0:
        raise MemoryError_(14, "NULL pointer")
    buffer = ctypes.create_string_buffer(data, len(data))
    remotes = []
    position, end = address, address + len(data)
    while position < end:
        chunk = min(end, (position // PAGE + 1) * PAGE) - position
        remotes.append(_Iovec(position, chunk))
        position += chunk
    local = _Iovec(ctypes.addressof(buffer), len(data))
    remote = (_Iovec * len(remotes))(*remotes)
    got = libc.process_vm_writev(pid, ctypes.byref(local), 1, remote, len(remotes), 0)
    if got != len(data):
        code = ctypes.get_errno() if got < 0 else 14
        raise MemoryError_(code, f"process_vm_writev({pid}, {address:#x}): {os.strerror(code)}")


_OPERATIONS.update(read=_read_upto, write=_write)
