"""Immutable value classes declared like frozen dataclasses, built on namedtuple.

Why not dataclasses: importing them and decorating this package's classes cost about 30 ms
of start-up (measured: `import dataclasses` 14 ms, 38 classes 18 ms), most of the budget
for `systrace -a true`. A namedtuple class costs about 40 µs to build and is as fast to
instantiate as a tuple.

    @record
    class Point:
        x: int
        y: int = 0

gives a tuple subclass with fields x and y, a default for y, keyword construction,
`_replace(...)`, equality that also compares the class (unlike plain tuples), truth
like any object, `__post_init__` validation, and immutability. Methods and properties written in the class body are kept.
"""

from __future__ import annotations

from collections import namedtuple

_NOT_COPIED = frozenset(("__dict__", "__weakref__", "__annotations__", "__module__", "__qualname__"))


TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # what type checkers see: a frozen dataclass
    from typing import Any, TypeVar, dataclass_transform

    _Class = TypeVar("_Class", bound=type)
    _Value = TypeVar("_Value")

    @dataclass_transform(frozen_default=True)
    def record(cls: _Class) -> _Class: ...

    def replace(instance: _Value, **changes: Any) -> _Value: ...
else:
    def record(cls):
        return _record(cls)

    def replace(instance, **changes):
        """A copy with some fields changed (namedtuple's _replace)."""
        return instance._replace(**changes)


def _record(cls: type) -> type:
    fields = list(cls.__dict__.get("__annotations__", {}))
    defaults = [cls.__dict__[name] for name in fields if name in cls.__dict__]
    base = namedtuple(cls.__name__, fields, defaults=defaults)  # type: ignore[misc]  # built at run time
    namespace = {key: value for key, value in cls.__dict__.items() if key not in _NOT_COPIED and key not in fields}
    namespace.update(__slots__=(), __module__=cls.__module__, __qualname__=cls.__qualname__,
                     __eq__=_eq, __ne__=_ne, __hash__=base.__hash__, __bool__=_true)
    if "__post_init__" in namespace:  # validation, as with dataclasses
        def __new__(subclass: type, *args: object, **kwargs: object) -> tuple:
            self: Any = base.__new__(subclass, *args, **kwargs)
            self.__post_init__()
            return self
        namespace["__new__"] = __new__
    return type(cls.__name__, (base,), namespace)


def _true(self: tuple) -> bool:
    return True  # an instance is truthy even with no fields (TrueExpr()), as a dataclass was


def _eq(self: tuple, other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)  # type: ignore[arg-type]


def _ne(self: tuple, other: object) -> bool:
    return not _eq(self, other)
