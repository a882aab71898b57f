"""Reading tracee memory (kernel/memory.py) against the real kernel: strings within a
page, across pages, up to unmapped memory, over the limit; exact reads; pointer arrays.
The tracee here is this process itself (process_vm_readv allows it)."""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

import pytest

from systrace.kernel.libc import libc
from systrace.kernel.memory import PAGE, MemoryError_, read, read_cstring, read_pointer_array

ME = os.getpid()


@pytest.fixture
def pages():
    """Two readable pages followed by an inaccessible one; yields (mapping, address)."""
    mapping = mmap.mmap(-1, 3 * PAGE)
    anchor = ctypes.c_char.from_buffer(mapping)
    address = ctypes.addressof(anchor)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(address + 2 * PAGE, PAGE, 0) == 0  # PROT_NONE
    yield mapping, address
    libc.mprotect(address + 2 * PAGE, PAGE, mmap.PROT_READ | mmap.PROT_WRITE)
    del anchor
    mapping.close()


def test_string_within_a_page(pages) -> None:
    mapping, address = pages
    mapping[100:106] = b"hello\0"
    assert read_cstring(ME, address + 100) == b"hello"
    mapping[200:201] = b"\0"
    assert read_cstring(ME, address + 200) == b""


def test_string_across_a_page_boundary(pages) -> None:
    mapping, address = pages
    mapping[PAGE - 3 : PAGE + 3] = b"hello\0"
    assert read_cstring(ME, address + PAGE - 3) == b"hello"


def test_a_string_across_a_page_boundary_reads_its_first_page_once(pages, monkeypatch) -> None:
    """Two reads (the first page's part, then the next page's), not three: the first
    page's part is not read again; the limit counts both parts."""
    from systrace.kernel import memory

    mapping, address = pages
    mapping[PAGE - 3 : PAGE + 3] = b"hello\0"
    reads: list[int] = []
    monkeypatch.setattr(memory._SERVED, "present", lambda: False)  # (a FUSE mount elsewhere: reads go to a reader)
    real = memory._OPERATIONS["read"]
    monkeypatch.setitem(memory._OPERATIONS, "read", lambda *args: reads.append(args[1]) or real(*args))
    assert read_cstring(ME, address + PAGE - 3) == b"hello"
    assert reads == [address + PAGE]  # (the first read is the preallocated one of the first page)
    assert read_cstring(ME, address + PAGE - 3, limit=5) == b"hello"
    with pytest.raises(MemoryError_, match="longer than 4"):
        read_cstring(ME, address + PAGE - 3, limit=4)
    with pytest.raises(MemoryError_, match="longer than 2"):
        read_cstring(ME, address + PAGE - 3, limit=2)  # (too long within the first page already)


def test_string_ending_exactly_at_the_end_of_a_page(pages) -> None:
    mapping, address = pages
    mapping[PAGE - 6 : PAGE] = b"hello\0"
    assert read_cstring(ME, address + PAGE - 6) == b"hello"


def test_string_running_into_unmapped_memory(pages) -> None:
    mapping, address = pages
    mapping[PAGE : 2 * PAGE] = b"x" * PAGE  # no NUL before the PROT_NONE page
    with pytest.raises(MemoryError_):
        read_cstring(ME, address + PAGE + 10)


def test_string_longer_than_the_limit(pages) -> None:
    mapping, address = pages
    mapping[0:101] = b"y" * 100 + b"\0"
    assert read_cstring(ME, address, limit=100) == b"y" * 100
    with pytest.raises(MemoryError_, match="longer than 50"):
        read_cstring(ME, address, limit=50)


def test_stale_bytes_of_an_earlier_read_are_never_returned(pages) -> None:
    mapping, address = pages
    mapping[0:11] = b"long-string"  # no NUL: runs on into zeroes, which end it
    mapping[11:12] = b"\0"
    assert read_cstring(ME, address) == b"long-string"
    mapping[PAGE - 2 : PAGE + 1] = b"ab\0"
    assert read_cstring(ME, address + PAGE - 2) == b"ab"  # not "ab" + leftovers of the first read


def test_null_and_unmapped_addresses(pages) -> None:
    _, address = pages
    with pytest.raises(MemoryError_):
        read_cstring(ME, 0)
    with pytest.raises(MemoryError_):
        read_cstring(ME, address + 2 * PAGE)
    with pytest.raises(MemoryError_):
        read(ME, address + 2 * PAGE - 4, 8)  # half of it unreadable


def test_exact_reads_and_pointer_arrays(pages) -> None:
    mapping, address = pages
    mapping[PAGE - 8 : PAGE + 8] = b"ABCDEFGHIJKLMNOP"
    assert read(ME, address + PAGE - 8, 16) == b"ABCDEFGHIJKLMNOP"
    mapping[0:24] = struct.pack("<3Q", 0x1111, 0x2222, 0)
    assert read_pointer_array(ME, address) == [0x1111, 0x2222]


def test_pointer_arrays_are_read_a_page_at_a_time_up_to_their_null(pages) -> None:
    """read_pointer_array reads many pointers at once, but never past the page its NULL
    is in: an array ending at the last word before unmapped memory reads whole, one
    crossing into the next page reads on, one running into unmapped memory fails."""
    mapping, address = pages
    last = 2 * PAGE - 8  # the NULL in the last word before the inaccessible page
    mapping[last - 16:last + 8] = struct.pack("<3Q", 0xA1, 0xA2, 0)
    assert read_pointer_array(ME, address + last - 16) == [0xA1, 0xA2]
    many = list(range(1, 300))  # more than one read's worth, across the first page's end
    start = PAGE - 8 * 100
    mapping[start:start + 8 * 300] = struct.pack(f"<{len(many)}Q", *many) + b"\0" * 8
    assert read_pointer_array(ME, address + start) == many
    mapping[2 * PAGE - 16:2 * PAGE] = struct.pack("<2Q", 0xB1, 0xB2)  # no NULL before unmapped memory
    with pytest.raises(MemoryError_):
        read_pointer_array(ME, address + 2 * PAGE - 16)
    mapping[0:32] = struct.pack("<4Q", 1, 2, 3, 0)
    with pytest.raises(MemoryError_):
        read_pointer_array(ME, address, limit=3)  # as long as the limit, with no NULL within it
    assert read_pointer_array(ME, address, limit=4) == [1, 2, 3]
