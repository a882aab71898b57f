"""The namedtuple-based value classes that replace frozen dataclasses (pure logic)."""

from __future__ import annotations

import pytest

from systrace.record import record


@record
class Point:
    x: int
    y: int = 0

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@record
class Other:
    x: int
    y: int = 0


@record
class Empty:
    pass


@record
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


def test_fields_defaults_keywords_and_methods() -> None:
    p = Point(3)
    assert (p.x, p.y) == (3, 0)
    assert Point(y=2, x=1) == Point(1, 2)
    assert p.norm1() == 3
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"


def test_equality_compares_the_class_too() -> None:
    assert Point(1, 2) != Other(1, 2)
    assert not Point(1, 2) == (1, 2)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert {Point(1, 2): "a"}[Point(1, 2)] == "a"


def test_immutable_and_replace() -> None:
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    assert p._replace(y=7) == Point(1, 7)
    assert p == Point(1, 2)


def test_an_instance_without_fields_is_truthy() -> None:
    assert Empty()
    assert Empty() == Empty()
    assert Empty() != Point(0)


def test_post_init_validates() -> None:
    assert Checked(1).value == 1
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


@pytest.mark.parametrize(("fields", "defaults"), [((), ()), (("a",), ()), (("a", "b"), (2,)),
                                                  (("x", "y", "z", "w"), (None, [], 0)), (("name", "cls"), ("n", "c"))])
def test_the_base_class_is_what_namedtuple_builds(fields: tuple[str, ...], defaults: tuple) -> None:
    """record.py builds its classes without namedtuple's eval (start-up time): what they
    do must be namedtuple's, field by field."""
    import pickle
    from collections import namedtuple

    from systrace.record import _namedtuple

    ours, theirs = _namedtuple("T", fields, defaults), namedtuple("T", fields, defaults=defaults)
    values = tuple(range(len(fields)))
    for attribute in ("_fields", "_field_defaults", "__match_args__", "__doc__"):
        assert getattr(ours, attribute) == getattr(theirs, attribute)
    assert ours.__new__.__defaults__ == theirs.__new__.__defaults__ and ours.__new__.__doc__ == theirs.__new__.__doc__
    for made in (lambda cls: cls(*values), lambda cls: cls(**dict(zip(fields, values, strict=True))),
                 lambda cls: cls._make(values)):
        one, other = made(ours), made(theirs)
        assert tuple(one) == tuple(other) and repr(one) == repr(other) and one._asdict() == other._asdict()
        assert [getattr(one, field) for field in fields] == [getattr(other, field) for field in fields]
        if fields:
            assert tuple(one._replace(**{fields[0]: "new"})) == tuple(other._replace(**{fields[0]: "new"}))
        with pytest.raises(ValueError, match="unexpected field names"):
            one._replace(nonexistent=1)
    with pytest.raises(TypeError):
        ours(*values, "one too many")
    if len(fields) > len(defaults):
        with pytest.raises(TypeError):
            ours()
    assert pickle.loads(pickle.dumps(Point(4, 5))) == Point(4, 5)  # (a FUSE helper's result is pickled)
    with pytest.raises(AttributeError):
        ours(*values).__dict__  # noqa: B018 - no instance dict: slots


def test_field_names_are_checked() -> None:
    from systrace.record import _namedtuple

    for fields in (("_private",), ("not an identifier",), ("a", "a")):
        with pytest.raises(ValueError):
            _namedtuple("T", fields, ())
