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

import sys
from types import FunctionType

try:
    from _collections import _tuplegetter  # type: ignore[import-not-found]  # what namedtuple uses (C)
except ImportError:  # another Python
    from operator import itemgetter  # (only here: importing operator costs start-up time)

    def _tuplegetter(index: int, doc: str) -> property:
        return property(itemgetter(index), doc=doc)

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
    """One class, a tuple subclass with namedtuple's members and the class body's (one
    type() instead of a namedtuple and a subclass of it: start-up builds forty of them)."""
    fields = tuple(cls.__dict__.get("__annotations__", {}))
    defaults = tuple(cls.__dict__[name] for name in fields if name in cls.__dict__)
    namespace = _namedtuple_namespace(cls.__name__, fields, defaults)
    namespace.update((key, value) for key, value in cls.__dict__.items() if key not in _NOT_COPIED and key not in fields)
    namespace.update(__slots__=(), __module__=cls.__module__, __qualname__=cls.__qualname__,
                     __eq__=_eq, __ne__=_ne, __hash__=tuple.__hash__, __bool__=_true)
    if "__post_init__" in namespace:  # validation, as with dataclasses
        new: Any = namespace["__new__"]

        def __new__(subclass: type, *args: object, **kwargs: object) -> tuple:
            self: Any = new(subclass, *args, **kwargs)
            self.__post_init__()
            return self
        namespace["__new__"] = __new__
    return type(cls.__name__, (tuple,), namespace)


def _true(self: tuple) -> bool:
    return True  # an instance is truthy even with no fields (TrueExpr()), as a dataclass was


def _eq(self: tuple, other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)  # type: ignore[arg-type]


def _ne(self: tuple, other: object) -> bool:
    return not _eq(self, other)


# -- namedtuple, without its eval ------------------------------------------------------
# collections.namedtuple compiles a `__new__` from source for every class (eval: about
# half of its 40-80 µs, times the 35 classes a run builds). The same function is made
# here from one compiled template per number of fields, its parameters renamed.
_TEMPLATES: dict[int, FunctionType] = {}
_GLOBALS = {"_tuple_new": tuple.__new__, "__builtins__": {}}


def _new_function(name: str, fields: tuple[str, ...], defaults: tuple[object, ...]) -> FunctionType:
    template = _TEMPLATES.get(len(fields))
    if template is None:
        params = ", ".join(f"_{index}" for index in range(len(fields)))
        template = _TEMPLATES[len(fields)] = eval(  # noqa: S307 - our own fixed source, as namedtuple's
            f"lambda _cls{', ' if params else ''}{params}: _tuple_new(_cls, ({params}{',' if params else ''}))",
            _GLOBALS)
    code = template.__code__.replace(co_varnames=("_cls", *fields), co_name="__new__", co_qualname=f"{name}.__new__")
    function = FunctionType(code, _GLOBALS, "__new__", defaults)
    function.__doc__ = f"Create new instance of {name}({_arg_list(fields)})"
    return function


def _arg_list(fields: tuple[str, ...]) -> str:
    return repr(fields).replace("'", "")[1:-1]  # as namedtuple writes them ("a," for one)


def _namedtuple(name: str, fields: tuple[str, ...], defaults: tuple[object, ...]) -> type:
    """What namedtuple(name, fields, defaults=defaults) builds (its methods, as it defines
    them), for fields that are identifiers not starting with an underscore."""
    return type(name, (tuple,), _namedtuple_namespace(name, fields, defaults))


def _namedtuple_namespace(name: str, fields: tuple[str, ...], defaults: tuple[object, ...]) -> dict[str, object]:
    """The members of _namedtuple's class."""
    for field in fields:
        if not field.isidentifier() or field.startswith("_"):
            raise ValueError(f"record field names must be identifiers not starting with '_': {field!r}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"duplicate record field name in {fields}")
    tuple_new = tuple.__new__
    repr_format = "(" + ", ".join(f"{field}=%r" for field in fields) + ")"

    @classmethod  # type: ignore[misc]
    def _make(cls, iterable):
        result = tuple_new(cls, iterable)
        if len(result) != len(fields):
            raise TypeError(f"Expected {len(fields)} arguments, got {len(result)}")
        return result

    def _replace(self, /, **changes):
        result = self._make(map(changes.pop, fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return result

    def __repr__(self):
        return self.__class__.__name__ + repr_format % self

    def _asdict(self):
        return dict(zip(self._fields, self, strict=True))

    def __getnewargs__(self):
        return tuple(self)

    namespace: dict[str, object] = {
        "__doc__": f"{name}({_arg_list(fields)})", "__slots__": (), "_fields": fields,
        "_field_defaults": dict(zip(fields[len(fields) - len(defaults):], defaults, strict=True)),
        "__new__": _new_function(name, fields, defaults), "_make": _make, "_replace": _replace,
        "__repr__": __repr__, "_asdict": _asdict, "__getnewargs__": __getnewargs__, "__match_args__": fields}
    for index, field in enumerate(fields):
        namespace[field] = _tuplegetter(index, sys.intern(f"Alias for field number {index}"))
    return namespace
