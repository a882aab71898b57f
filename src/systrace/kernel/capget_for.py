"""capget(2) made by systrace for a tracee (SECURITY.md "The pid audit"). The pid it
reads is in the tracee's memory, where the filter cannot see it, and a check followed
by a continued call would race another thread rewriting it: so systrace reads the
header once, answers ESRCH when its pid names systrace or a helper (as for a pid no
process has), else makes the same call itself for that pid (no permission is checked:
any process may read another's sets) and writes back what the kernel would have."""

from __future__ import annotations

import ctypes
import errno
import struct

from . import memory
from .libc import libc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

SYS_capget = 125
VERSION_1 = 0x19980330  # one 32-bit word per set; versions 2 and 3: two
HEADER = struct.Struct("=Ii")
DATA_SIZE = 12


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def capget_for(tid: int, args: tuple[int, ...], names_us: Callable[[int], bool]) -> int:
    """The result of thread `tid`'s capget(header, data): 0 or -errno."""
    header_address, data_address = args[0], args[1]
    try:
        version, pid = HEADER.unpack(memory.read(tid, header_address, HEADER.size))
    except OSError:
        return -errno.EFAULT
    if pid > 0 and names_us(pid):
        return -errno.ESRCH
    header = _Header(version, tid if pid == 0 else pid)  # pid 0: the caller itself
    data = (ctypes.c_uint32 * 6)()
    result = libc.syscall(SYS_capget, ctypes.byref(header), data if data_address else None)
    code = ctypes.get_errno() if result < 0 else 0
    try:
        if header.version != version:  # an unknown version: the kernel writes the one it prefers
            memory.write(tid, header_address, struct.pack("=I", header.version))
        if code == 0 and data_address:
            size = DATA_SIZE if version == VERSION_1 else 2 * DATA_SIZE
            memory.write(tid, data_address, bytes(data)[:size])
    except OSError:
        return -errno.EFAULT
    return -code if code else 0
