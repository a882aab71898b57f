"""Reading a tracee's memory with process_vm_readv (never a cached /proc/PID/mem fd:
after exec it reads dead memory, and for a vfork child it reads the parent)."""

from __future__ import annotations

import ctypes
import os

from .libc import libc

PAGE = os.sysconf("SC_PAGE_SIZE")
PATH_MAX = 4096


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MemoryError_(OSError):
    """The tracee's memory could not be read at that address."""


def read(pid: int, address: int, size: int) -> bytes:
    """Read exactly `size` bytes or raise MemoryError_."""
    data = _read_upto(pid, address, size)
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


def read_cstring(pid: int, address: int, limit: int = PATH_MAX) -> bytes:
    """A NUL-terminated string of at most `limit` bytes (without the NUL). Raises
    MemoryError_ if unreadable or unterminated within the limit."""
    if address == 0:
        raise MemoryError_(14, "NULL pointer")
    got = _read_within_page(pid, address)  # most strings end in their first page
    first = _PAGE_BUFFER.value  # up to the first NUL (without copying the rest of the page)
    if len(first) < got and len(first) <= limit:
        return first
    collected = b""
    position = address
    while len(collected) < limit:
        chunk = min(limit - len(collected) + 1, (position // PAGE + 1) * PAGE - position)
        data = _read_upto(pid, position, chunk)
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
    """A NULL-terminated array of pointers (argv, envp)."""
    pointers: list[int] = []
    while len(pointers) < limit:
        word = int.from_bytes(read(pid, address + 8 * len(pointers), 8), "little")
        if word == 0:
            return pointers
        pointers.append(word)
    raise MemoryError_(7, f"pointer array at {address:#x} longer than {limit}")


libc.process_vm_writev.restype = ctypes.c_ssize_t


def write(pid: int, address: int, data: bytes) -> None:
    """Write `data` at `address` in the tracee (an emulated call's results) or raise
    MemoryError_. One remote iovec per page, like reads."""
    if not data:
        return
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
