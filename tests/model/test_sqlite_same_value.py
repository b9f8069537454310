"""``sql_values.sqlite_same_value``: whether a flush row's value and the value SQLite's
triggers read back are the same stored value. A wrong "no" logs a flush's change twice;
a wrong "yes" lets a session's out-of-date copy pass for the record."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Time,
    TypeDecorator,
)

from auditkeeper.model.sql_values import sqlite_same_value


class Shouting(TypeDecorator[str]):
    impl = String
    cache_ok = True


@pytest.mark.parametrize(
    "type_",
    [Numeric(10, 2), Float(), Enum("a", "b"), Time(), LargeBinary(), Shouting()],
    ids=lambda t: type(t).__name__,
)
def test_types_sqlite_cannot_tell_are_not_compared(type_) -> None:
    assert sqlite_same_value(Column("c", type_)) is None


@pytest.mark.parametrize(
    ("type_", "flushed", "stored", "same"),
    [
        (String(), "Acme", "Acme", True),
        (String(), "Acme", "acme", False),
        (Integer(), 3, 3, True),
        (Integer(), 3, 4, False),
        (Boolean(), True, True, True),
        (Boolean(), True, False, False),
        (Date(), "2031-02-03", "2031-02-03", True),
        (JSON(), {"a": [1, 1.5]}, {"a": [1.0, 1.5]}, True),
        (JSON(), {"a": [1, 2]}, {"a": [2, 1]}, False),
        (JSON(), {"a": 1}, {"a": 1, "b": 2}, False),
        (JSON(), [True], [1], False),
        # SQLite's json() keeps 15 significant digits of a float, and floats what a
        # 64-bit integer cannot hold.
        (JSON(), 100000000000000.5, 100000000000001.0, True),
        (JSON(), 2**64 - 1, 1.84467440737096e19, True),
        (JSON(), 0.1, 0.2, False),
        (JSON(), 1, 1.0000001, False),
        (JSON(), 2**62, 2**62 + 1, False),
        (JSON(), "1.5", 1.5, False),
        (DateTime(), "2031-02-03T04:05:06", "2031-02-03T04:05:06", True),
        (DateTime(), "2031-02-03T04:05:06", "2031-02-03T04:05:07", False),
        # An aware value assigned, stored without its offset.
        (DateTime(timezone=True), "2031-02-03T04:05:06+02:00", "2031-02-03T04:05:06", True),
        (DateTime(timezone=True), "2031-02-03T04:05:06+02:00", "2031-02-03T02:05:06", False),
        (DateTime(), "not a date", "not a date", True),
    ],
)
def test_values_are_compared_as_sqlite_stores_them(type_, flushed, stored, same) -> None:
    test = sqlite_same_value(Column("c", type_))
    assert test is not None
    assert test(flushed, stored) is same


@given(st.datetimes(timezones=st.timezones()))
def test_an_aware_datetime_is_the_wall_time_sqlite_kept(value: dt.datetime) -> None:
    test = sqlite_same_value(Column("c", DateTime(timezone=True)))
    assert test is not None
    assert test(value.isoformat(), value.replace(tzinfo=None).isoformat())
    later = value + dt.timedelta(microseconds=1)
    assert not test(later.isoformat(), value.replace(tzinfo=None).isoformat())
