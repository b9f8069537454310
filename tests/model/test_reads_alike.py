"""``sql_values.reads_alike``: which assigned values the database writes back in the
same JSON as the Python rules, so that a statement trigger may log them for the flush
(capture/inserts.py). A wrong "yes" would change what the log says; these are the
values that must be refused."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
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
    Uuid,
)

from auditkeeper.model.sql_values import reads_alike

UTC = dt.UTC
PARIS_WINTER = dt.timezone(dt.timedelta(hours=1))


class Color(enum.Enum):
    RED = "red"


class Upper(TypeDecorator[str]):
    impl = String
    cache_ok = True


@pytest.mark.parametrize(
    "type_", [Upper(), Enum(Color), CHAR(3), Float(), Time(), LargeBinary()], ids=repr
)
def test_types_whose_value_alone_cannot_tell_are_never_left_to_the_trigger(type_: Any):
    assert reads_alike(Column("c", type_)) is None


CASES = [
    (Integer(), 7, True),
    (Integer(), True, False),  # a bool is an int to Python, not to the database
    (BigInteger(), 2**63, False),
    (Boolean(), True, True),
    (Boolean(), 1, False),
    (String(), "text */ with a comment's end", True),
    (String(), 5, False),
    (Uuid(), uuid.UUID(int=1), True),
    (Uuid(), "00000000-0000-0000-0000-000000000001", False),
    (Uuid(as_uuid=False), "00000000-0000-0000-0000-000000000001", True),
    (Uuid(as_uuid=False), "00000000000000000000000000000001", False),
    (Uuid(as_uuid=False), "not a uuid", False),
    (Date(), dt.date(2024, 1, 1), True),
    (Date(), dt.datetime(2024, 1, 1), False),  # stored as its date
    (DateTime(), dt.datetime(2024, 1, 1, 8), True),
    (DateTime(), dt.datetime(2024, 1, 1, 8, tzinfo=UTC), False),
    (DateTime(timezone=True), dt.datetime(2024, 1, 1, 8, tzinfo=UTC), True),
    (DateTime(timezone=True), dt.datetime(2024, 1, 1, 8, tzinfo=PARIS_WINTER), False),
    (DateTime(timezone=True), dt.datetime(2024, 1, 1, 8), False),  # naive
    (
        DateTime(timezone=True),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=30))),
        False,  # the database writes whole minutes of offset
    ),
    (Numeric(12, 2), decimal.Decimal("12.50"), True),
    (Numeric(12, 2), decimal.Decimal("12.5"), False),  # stored as 12.50
    (Numeric(12, 2), decimal.Decimal("0.125"), False),  # rounded
    (Numeric(12, 2), decimal.Decimal("-0.00"), False),  # no negative zero in SQL
    (Numeric(12, 2), decimal.Decimal("NaN"), False),
    (Numeric(12, 2), 12.5, False),
    (Numeric(), decimal.Decimal("1.500"), True),
    (Numeric(), decimal.Decimal("1E+2"), False),
    (Numeric(asdecimal=False), 1.5, None),
    (JSON(), {"a": [1, 2.5, None, True, "x"]}, True),
    (JSON(), {"big": 1e16}, False),  # Python writes it positional
    (JSON(), {"n": 2**60}, False),
    (JSON(), {1: "key that is not text"}, False),
    (JSON(), {"t": (1, 2)}, False),
    (JSON(), float("nan"), False),
    (JSON(), [{"deep": [[1.5]]}, [], {}], True),
    (JSON(), [[[{"a": [2**53]}]]], False),  # found however deep it is
    (JSON(), [{"k": {1: "x"}}], False),
    (JSON(), {"k": ["a\x00b"]}, False),  # jsonb cannot hold U+0000
    (JSON(), [{"a\x00": 1}], False),
    (
        DateTime(timezone=True),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        False,  # whole minutes, another zone's
    ),
]


def nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


def test_json_deeper_than_the_flush_encodes_is_left_to_the_flush():
    test = reads_alike(Column("c", JSON()))
    assert test is not None
    assert test(nested(60), UTC) is True
    assert test(nested(70), UTC) is False


@pytest.mark.parametrize(("type_", "value", "alike"), CASES, ids=range(len(CASES)))
def test_a_value_reads_alike_only_where_both_sides_write_the_same(
    type_: Any, value: Any, alike: bool | None
):
    test = reads_alike(Column("c", type_))
    if alike is None:
        assert test is None
        return
    assert test is not None
    assert test(value, UTC) is alike
    assert test(None, UTC) is True  # NULL is null on both sides


def test_an_aware_datetime_reads_alike_in_its_own_zone_only():
    test = reads_alike(Column("c", DateTime(timezone=True)))
    assert test is not None
    winter = dt.datetime(2024, 1, 1, 8, tzinfo=PARIS_WINTER)
    assert test(winter, PARIS_WINTER) is True
    assert test(winter, UTC) is False
    assert test(winter, None) is False  # the session's zone unknown
