"""PostgreSQL's ranges and multiranges as the database stores them.

The database rewrites a range it is given: ``int4range``, ``int8range`` and
``daterange`` are discrete, stored in their ``[)`` form (``[1,5]`` becomes ``[1,6)``); a
range holding no value becomes ``empty``; a multirange is stored sorted, without empty
ranges, its overlapping and adjacent ranges merged. The log writes a range the
application assigned as the database will read it back, so that the flush's document of
a value and a later one of the same stored value agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.ranges import (
    DATEMULTIRANGE,
    DATERANGE,
    INT4MULTIRANGE,
    INT4RANGE,
    INT8MULTIRANGE,
    INT8RANGE,
    MultiRange,
    Range,
)
from sqlalchemy.types import TypeEngine

__all__ = ["holds_nothing", "is_discrete", "stored_multirange", "stored_range"]

_DISCRETE = (INT4RANGE, INT8RANGE, DATERANGE, INT4MULTIRANGE, INT8MULTIRANGE, DATEMULTIRANGE)
_DAY = dt.timedelta(days=1)


def is_discrete(type_: TypeEngine[Any]) -> bool:
    """Whether a column of ``type_`` holds ranges of integers or dates."""
    return isinstance(type_, _DISCRETE)


def holds_nothing(value: Range[Any]) -> bool:
    """Whether the database stores ``value`` as ``empty``: ``[3,3)`` holds nothing."""
    lower = value.lower
    return value.empty or (lower is not None and lower == value.upper and value.bounds != "[]")


def stored_range(value: Range[Any], *, discrete: bool) -> Range[Any]:
    """``value`` as the database stores it in a column of a discrete or continuous type."""
    if holds_nothing(value):
        return Range(empty=True)
    lower, upper = value.lower, value.upper
    opening = "(" if lower is None else value.bounds[0]
    closing = ")" if upper is None else value.bounds[1]
    if discrete:
        if opening == "(" and lower is not None:
            lower += _step(lower)
        if closing == "]":
            upper += _step(upper)
        opening, closing = "[" if lower is not None else "(", ")"
        if lower is not None and upper is not None and lower >= upper:
            return Range(empty=True)
    # The bounds are two of "([" and ")]": one of the four literals Range takes.
    return Range(lower, upper, bounds=f"{opening}{closing}")  # type: ignore[arg-type]


def stored_multirange(value: Sequence[Range[Any]], *, discrete: bool) -> MultiRange[Any]:
    """``value`` as the database stores it: its ranges sorted and merged. Merged here
    rather than with ``Range.union``, which takes an integer bound of a numeric range
    for a discrete one."""
    ranges = [stored_range(item, discrete=discrete) for item in value]
    merged: list[Range[Any]] = []
    for item in sorted((item for item in ranges if not item.empty), key=_lower_first):
        if merged and _meets(merged[-1], item):
            merged[-1] = _joined(merged[-1], item)
        else:
            merged.append(item)
    return MultiRange(merged)


def _meets(first: Range[Any], then: Range[Any]) -> bool:
    """Whether ``then``, which starts no earlier, overlaps or touches ``first``. A
    discrete range's ``[)`` form touches the next at its upper bound, as ``[1,3]`` and
    ``(3,5)`` do; ``[1,3)`` and ``(3,5)`` leave 3 out."""
    if first.upper is None or then.lower is None:
        return True
    if then.lower != first.upper:
        return bool(then.lower < first.upper)
    return first.bounds[1] == "]" or then.bounds[0] == "["


def _joined(first: Range[Any], then: Range[Any]) -> Range[Any]:
    """The range from ``first``'s lower bound to the later of the two upper bounds. Of
    two equal bounds, ``then``'s, as PostgreSQL's union takes the second (``0`` and
    ``0.000`` are equal numerics, written apart)."""
    same_lower = (then.lower, then.bounds[0]) == (first.lower, first.bounds[0])
    lower = then.lower if same_lower else first.lower
    if first.upper is None or then.upper is None:
        upper, closing = None, ")"
    elif then.upper > first.upper:
        upper, closing = then.upper, then.bounds[1]
    elif then.upper == first.upper:
        closing = "]" if "]" in (first.bounds[1], then.bounds[1]) else ")"
        upper = then.upper if then.bounds[1] == closing else first.upper
    else:
        upper, closing = first.upper, first.bounds[1]
    return Range(lower, upper, bounds=f"{first.bounds[0]}{closing}")  # type: ignore[arg-type]


def _step(bound: Any) -> Any:
    return _DAY if isinstance(bound, dt.date) else 1


def _lower_first(value: Range[Any]) -> tuple[bool, Any, bool]:
    """Unbounded first, then by the lower bound, an inclusive one first."""
    if value.lower is None:
        return (False, 0, False)
    return (True, value.lower, value.bounds[0] == "(")
