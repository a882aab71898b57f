"""The part of ctypes systrace uses, made from `_ctypes` (start-up time, issue 16: `import
ctypes` costs about 16 M instructions, `_ctypes` 1.3 M of them; the rest is the package's
own fifty-odd classes, each type systrace does not use built at every start).

    from . import plain_ctypes as ctypes   # ctypes.c_int, ctypes.Structure, ctypes.CDLL...

Each type is defined as ctypes defines it (the same `_type_` code on `_ctypes`' base
classes), Structure and Array are `_ctypes`' own (ctypes re-exports them), and CDLL,
memmove and create_string_buffer do what ctypes' do (tests/test_plain_ctypes.py). Type
checkers see ctypes."""

from __future__ import annotations

__all__ = ["CDLL", "Array", "Structure", "addressof", "byref", "c_char", "c_char_p", "c_int", "c_long", "c_size_t",
           "c_ssize_t", "c_uint", "c_uint32", "c_ulong", "c_ushort", "c_void_p", "create_string_buffer", "get_errno",
           "memmove", "sizeof"]

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ctypes import (
        CDLL,
        Array,
        Structure,
        addressof,
        byref,
        c_char,
        c_char_p,
        c_int,
        c_long,
        c_size_t,
        c_ssize_t,
        c_uint,
        c_uint32,
        c_ulong,
        c_ushort,
        c_void_p,
        create_string_buffer,
        get_errno,
        memmove,
        sizeof,
    )
else:
    from _ctypes import (
        FUNCFLAG_CDECL,
        FUNCFLAG_USE_ERRNO,
        RTLD_LOCAL,
        Array,
        CFuncPtr,
        Structure,
        _memmove_addr,
        _SimpleCData,
        addressof,
        byref,
        dlopen,
        get_errno,
        sizeof,
    )

    class c_int(_SimpleCData):
        _type_ = "i"

    class c_uint(_SimpleCData):
        _type_ = "I"

    class c_long(_SimpleCData):
        _type_ = "l"

    class c_ulong(_SimpleCData):
        _type_ = "L"

    class c_ushort(_SimpleCData):
        _type_ = "H"

    class c_void_p(_SimpleCData):
        _type_ = "P"

    class c_char_p(_SimpleCData):
        _type_ = "z"

    class c_char(_SimpleCData):
        _type_ = "c"

    # as ctypes picks them on a 64-bit Linux (LP64: long is the size of a pointer, int 4 bytes)
    c_size_t, c_ssize_t, c_uint32 = c_ulong, c_long, c_uint
    if sizeof(c_ulong) != sizeof(c_void_p) or sizeof(c_uint) != 4:
        raise ImportError("systrace.kernel.plain_ctypes: not an LP64 platform")

    class _Memmove(CFuncPtr):  # what CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_size_t) makes
        _argtypes_ = (c_void_p, c_void_p, c_size_t)
        _restype_ = c_void_p
        _flags_ = FUNCFLAG_CDECL

    memmove = _Memmove(_memmove_addr)

    def create_string_buffer(init, size=None):
        """A mutable buffer of `init` bytes (zeroed), or holding the bytes `init` and a NUL."""
        if isinstance(init, bytes):
            if size is None:
                size = len(init) + 1
            buffer = (c_char * size)()
            buffer.value = init
            return buffer
        if isinstance(init, int):
            return (c_char * init)()
        raise TypeError(init)

    class CDLL:
        """A shared library's functions, each returning a C int unless its restype says
        otherwise, the C errno kept for get_errno() when `use_errno`."""

        def __init__(self, name, use_errno=False):
            self._name = name
            self._handle = dlopen(name, RTLD_LOCAL)

            class _FuncPtr(CFuncPtr):
                _flags_ = FUNCFLAG_CDECL | (FUNCFLAG_USE_ERRNO if use_errno else 0)
                _restype_ = c_int

            self._FuncPtr = _FuncPtr

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            function = self._FuncPtr((name, self))
            function.__name__ = name
            setattr(self, name, function)
            return function
