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
