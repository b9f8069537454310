"""The optimised value conversions give exactly what the written rules give.

The capture path converts each value with its column's ``json_converter`` (resolved once
per column) and ``to_json_value`` (exact-type dispatch). Both are checked here against
``tests/model/_reference.py``, the rules as first written (``coerce`` then
``to_json_value``, two chains of ``isinstance`` tests): the same value, of the same type
at every depth, in the same key order, or the same error, for every column type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Unicode,
    Uuid,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from auditkeeper import CaptureError
from auditkeeper.capture.plan import coerce, json_converter
from auditkeeper.model.values import to_json_value
from tests.model import _reference as reference


class Status(enum.Enum):
    OPEN = "open"
    THREE = 3


class Colour(str, enum.Enum):  # noqa: UP042 - the mixin form is the point
    RED = "red"


class Level(enum.IntEnum):
    ZERO = 0
    ONE = 1
    TWO = 2


class Html(str):
    pass


class Ratio(float):
    pass


class Count(int):
    pass


class Moment(dt.datetime):
    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "moment " + super().isoformat(sep, timespec)


class Trimmed(TypeDecorator[str]):
    impl = String
    cache_ok = True


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


COLUMN_TYPES: list[TypeEngine[Any]] = [
    Boolean(),
    Integer(),
    BigInteger(),
    BigInteger().with_variant(Integer(), "sqlite"),
    SmallInteger(),
    Float(),
    Double(),
    Numeric(),
    Numeric(12, 2),
    Numeric(10, 0),
    Numeric(40, 30),
    Numeric(asdecimal=False),
    String(),
    String(20),
    Text(),
    Unicode(),
    Enum(Status),
    Enum("a", "b", name="letters"),
    DateTime(),
    DateTime(timezone=True),
    Date(),
    Time(),
    Uuid(),
    Uuid(as_uuid=False),
    postgresql.UUID(),
    LargeBinary(),
    JSON(),
    JSON().with_variant(postgresql.JSONB(), "postgresql"),
    postgresql.JSONB(),
    Interval(),
    Trimmed(),
]

zone = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
numeric_text = st.one_of(
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(str),
    st.sampled_from(["", " 1", "1_000", "0x10", "1e3", "-0", "nan", "True", "10.00"]),
)
temporal_text = st.one_of(
    st.datetimes(timezones=st.none() | zone).map(dt.datetime.isoformat),
    st.dates().map(dt.date.isoformat),
    st.times().map(dt.time.isoformat),
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex.upper()),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=3),
    st.integers(),
    st.integers(min_value=2**60, max_value=2**80),
    st.floats(),
    st.floats(min_value=1e15, max_value=1e20).map(math.floor).map(float),
    st.decimals(),
    st.decimals(places=40),
    st.sampled_from([decimal.Decimal("sNaN"), decimal.Decimal("-0.00"), decimal.Decimal("1E+3")]),
    st.text(max_size=20),
    numeric_text,
    temporal_text,
    st.datetimes(timezones=st.none() | zone),
    st.dates(),
    st.times(timezones=st.none() | zone),
    st.uuids(),
    st.binary(max_size=10),
    st.binary(max_size=10).map(bytearray),
    st.binary(max_size=10).map(memoryview),
    st.timedeltas(),
    st.sampled_from([*Status, *Colour, *Level]),
    st.text(max_size=5).map(Html),
    st.floats().map(Ratio),
    st.integers().map(Count),
    st.datetimes().map(lambda d: Moment(d.year, d.month, d.day, d.hour)),
    st.sampled_from([_Opaque(), complex(1, 2), object]),
)
keys = st.one_of(
    st.text(max_size=4),
    st.integers(min_value=-3, max_value=3),
    st.booleans(),
    st.none(),
    st.sampled_from([*Status, *Colour, Level.ONE]),
    st.dates(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(st.integers() | st.text(max_size=3), max_size=4),
        st.sets(st.integers() | st.text(max_size=3), max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)


def outcome(convert: Any, *arguments: Any) -> Any:
    """The result, or the error's type and text."""
    try:
        return convert(*arguments)
    except CaptureError as error:
        return ("raised", type(error), str(error))


def assert_same(got: Any, expected: Any) -> None:
    """Equal and of the same type at every depth, dict keys in the same order; NaNs and
    Decimals compared by their repr (so 1.0 and 1.00 differ)."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(got[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for item, wanted in zip(got, expected, strict=True):
            assert_same(item, wanted)
    elif isinstance(expected, float | decimal.Decimal):
        assert repr(got) == repr(expected)
    else:
        assert got == expected


@settings(max_examples=600, deadline=None)
@given(value=values)
@example(value=float("nan"))
@example(value=-(2**63))
@example(value=1e16)
@example(value={1: "a", "1": "b"})
@example(value=dt.timedelta(days=10**6, microseconds=1))
def test_to_json_value_follows_the_reference(value: Any) -> None:
    assert_same(outcome(to_json_value, value), outcome(reference.to_json_value, value))


@pytest.mark.parametrize("column_type", COLUMN_TYPES, ids=repr)
@settings(max_examples=300, deadline=None)
@given(value=values)
@example(value=True)
@example(value=0)
@example(value=1)
@example(value=2)
@example(value="10.5")
@example(value=decimal.Decimal("10.5"))
@example(value=decimal.Decimal("1234567890.123456789012345678901234567890"))
@example(value=10.5)
@example(value=1e16)
@example(value="2024-02-29T23:59:59+05:30")
@example(value="12345678-1234-5678-1234-567812345678")
@example(value=Level.ONE)
@example(value=Colour.RED)
def test_column_converters_follow_the_reference(column_type: TypeEngine[Any], value: Any) -> None:
    expected = outcome(lambda v: reference.to_json_value(reference.coerce(v, column_type)), value)
    assert_same(outcome(json_converter(column_type), value), expected)
    assert_same(outcome(coerce, value, column_type), outcome(reference.coerce, value, column_type))
