"""kernel/plain_ctypes.py: the part of ctypes systrace uses, made from _ctypes (start-up
time). Each name must behave as ctypes' own: the same C types, layouts, calls and errno."""

from __future__ import annotations

import ctypes as real
import errno
import os

import pytest

from systrace.kernel import plain_ctypes as plain

SIMPLE = ["c_char", "c_char_p", "c_int", "c_long", "c_size_t", "c_ssize_t", "c_uint", "c_uint32", "c_ulong", "c_ushort",
          "c_void_p"]


@pytest.mark.parametrize("name", SIMPLE)
def test_each_type_is_ctypes_type(name: str) -> None:
    ours, theirs = getattr(plain, name), getattr(real, name)
    assert ours._type_ == theirs._type_
    assert plain.sizeof(ours) == real.sizeof(theirs)
    assert real.alignment(ours) == real.alignment(theirs)


def test_every_name_is_there() -> None:
    assert sorted(plain.__all__) == sorted(name for name in plain.__all__ if hasattr(plain, name))
    for name in ("Structure", "Array", "addressof", "byref", "get_errno", "sizeof"):
        assert getattr(plain, name) is getattr(real, name)  # _ctypes' own, which ctypes re-exports


def test_a_structure_has_ctypes_layout() -> None:
    fields = [("a", "c_int"), ("b", "c_ulong"), ("c", "c_ushort"), ("d", "c_void_p"), ("e", "c_uint32"), ("f", "c_char_p")]

    class Ours(plain.Structure):
        _fields_ = [(field, getattr(plain, kind)) for field, kind in fields]

    class Theirs(real.Structure):
        _fields_ = [(field, getattr(real, kind)) for field, kind in fields]

    assert plain.sizeof(Ours) == real.sizeof(Theirs)
    assert [getattr(Ours, field).offset for field, _ in fields] == [getattr(Theirs, field).offset for field, _ in fields]
    value = Ours(a=-3, b=2**63 + 5, c=65535, d=0x1000, e=2**32 - 1, f=b"name")
    assert (value.a, value.b, value.c, value.d, value.e, value.f) == (-3, 2**63 + 5, 65535, 0x1000, 2**32 - 1, b"name")
    # the same bytes (but the last field's pointer, to two copies of the name)
    end = Ours.f.offset
    assert bytes(value)[:end] == bytes(Theirs(a=-3, b=2**63 + 5, c=65535, d=0x1000, e=2**32 - 1, f=b"name"))[:end]


def test_a_library_call_returns_and_keeps_errno() -> None:
    libc = plain.CDLL(None, use_errno=True)
    assert libc.getpid() == os.getpid()
    assert libc.getpid is libc.getpid  # looked up once
    assert libc.close(-1) == -1
    assert plain.get_errno() == errno.EBADF
    libc.syscall.restype = plain.c_long
    assert libc.syscall(39) == os.getpid()  # SYS_getpid
    libc.strlen.argtypes = [plain.c_char_p]
    libc.strlen.restype = plain.c_size_t
    assert libc.strlen(b"seven!!") == 7
    with pytest.raises(AttributeError):
        libc.no_such_function_in_libc  # noqa: B018
    with pytest.raises(AttributeError):
        libc.__wrapped__  # noqa: B018  (a dunder is never looked up in the library)


def test_without_errno_the_c_errno_is_not_kept() -> None:
    libc = plain.CDLL(None)
    real.set_errno(0)  # (_ctypes' own errno slot, which plain.get_errno reads)
    assert libc.close(-1) == -1
    assert plain.get_errno() == 0  # as ctypes.CDLL(None) without use_errno


def test_buffers_and_memmove() -> None:
    assert plain.create_string_buffer(b"ab").raw == b"ab\0"
    assert plain.create_string_buffer(b"ab", 5).raw == b"ab\0\0\0"
    assert plain.create_string_buffer(4).raw == bytes(4)
    assert plain.create_string_buffer(b"ab").raw == real.create_string_buffer(b"ab").raw
    with pytest.raises(TypeError):
        plain.create_string_buffer("text")  # type: ignore[arg-type]
    source, target = plain.create_string_buffer(b"payload"), plain.create_string_buffer(8)
    assert plain.memmove(target, source, 8) == plain.addressof(target)
    assert target.raw == b"payload\0"
