"""PostgreSQL's ranges and multiranges in the log: the text PostgreSQL writes for them,
the same whether the flush wrote it from the value the application assigned or a
trigger from the stored value (``model.ranges``, ``model.values``, ``model.sql_values``)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Connection, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import MultiRange, Range
from sqlalchemy.types import TypeEngine

from auditkeeper.capture.plan import json_converter
from auditkeeper.model.sql_values import json_expression, same_value_expression
from auditkeeper.model.values import dumps, to_json_value


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Range(1, 5, bounds="[]"), "[1,5]"),
        (Range(None, 5), "(,5)"),  # an unbounded side is open
        (Range(1, None, bounds="[]"), "[1,)"),
        (Range(None, None), "(,)"),
        (Range(3, 3), "empty"),
        (Range(3, 3, bounds="(]"), "empty"),
        (Range(3, 3, bounds="[]"), "[3,3]"),
        (Range(empty=True), "empty"),
        (Range(decimal.Decimal("1.50"), 2.5), "[1.50,2.5)"),
        (Range(dt.date(2024, 1, 1), dt.date(2024, 2, 1)), "[2024-01-01,2024-02-01)"),
        (
            Range(dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), None),
            "[2024-01-01T09:00:00+00:00,)",
        ),
        (Range("a b", 'c"\\d'), '["a b","c""\\\\d")'),  # quoted as PostgreSQL quotes
        (Range("", "x"), '["",x)'),
        (MultiRange([Range(1, 3), Range(5, 8)]), "{[1,3),[5,8)}"),
        (MultiRange(), "{}"),
    ],
)
def test_a_range_is_written_as_postgresql_writes_it(value: Any, written: str) -> None:
    assert to_json_value(value) == written
    assert dumps({"during": value}) == dumps({"during": written})


@pytest.mark.parametrize(
    ("type_", "value", "written"),
    [
        (postgresql.INT4RANGE(), Range(1, 5, bounds="[]"), "[1,6)"),
        (postgresql.INT4RANGE(), Range(1, 5, bounds="()"), "[2,5)"),
        (postgresql.INT4RANGE(), Range(1, 2, bounds="()"), "empty"),
        (postgresql.INT8RANGE(), Range(None, 2**40, bounds="[]"), f"(,{2**40 + 1})"),
        (
            postgresql.DATERANGE(),
            Range(dt.date(2024, 1, 1), dt.date(2024, 1, 31), bounds="[]"),
            "[2024-01-01,2024-02-01)",
        ),
        (postgresql.NUMRANGE(), Range(1, 5, bounds="[]"), "[1,5]"),  # not discrete
        (
            postgresql.INT4MULTIRANGE(),
            [Range(5, 8), Range(1, 3, bounds="[]"), Range(2, 2)],
            "{[1,4),[5,8)}",
        ),
        (postgresql.NUMMULTIRANGE(), (Range(1, 3), Range(3, 4, bounds="[]")), "{[1,4]}"),
        (  # an integer bound in a numeric range is no discrete one
            postgresql.NUMMULTIRANGE(),
            [Range(decimal.Decimal("0.000"), decimal.Decimal("0.001")), Range(-1, 0, bounds="(]")],
            "{(-1,0.001)}",
        ),
        (  # of two equal bounds written apart, PostgreSQL keeps the later range's
            postgresql.NUMMULTIRANGE(),
            [Range(decimal.Decimal("0.000"), 1), Range(0, decimal.Decimal("1.0"))],
            "{[0,1.0)}",
        ),
        (
            postgresql.NUMMULTIRANGE(),
            [Range(0, decimal.Decimal("1.0")), Range(decimal.Decimal("0.000"), 1)],
            "{[0.000,1)}",
        ),
    ],
)
def test_a_column_writes_an_assigned_range_as_it_stores_it(
    type_: TypeEngine[Any], value: Any, written: str
) -> None:
    """The discrete types' ``[)`` form, and a multirange sorted and merged."""
    assert json_converter(type_)(value) == written


def _ranges(bound: st.SearchStrategy[Any]) -> st.SearchStrategy[Range[Any]]:
    edges = st.tuples(bound | st.none(), bound | st.none()).map(
        lambda pair: pair if None in pair or pair[0] <= pair[1] else pair[::-1]
    )
    shapes = st.sampled_from(["[)", "(]", "[]", "()"])
    return st.one_of(
        st.builds(lambda e, b: Range(e[0], e[1], bounds=b), edges, shapes),
        st.just(Range(empty=True)),
    )


_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=3, max_value=10**9).filter(
    lambda number: not (number.is_zero() and number.is_signed())  # PostgreSQL has no -0
)
_DATETIMES = st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 30))
BOUNDS: dict[str, tuple[type[TypeEngine[Any]], type[TypeEngine[Any]], st.SearchStrategy[Any]]] = {
    "int4": (postgresql.INT4RANGE, postgresql.INT4MULTIRANGE, st.integers(-100, 100)),
    "int8": (postgresql.INT8RANGE, postgresql.INT8MULTIRANGE, st.integers(-(2**62), 2**62)),
    "num": (
        postgresql.NUMRANGE,
        postgresql.NUMMULTIRANGE,
        _DECIMALS | st.integers(-9, 9) | st.decimals(-2, 2, places=1),  # the last ones meet
    ),
    "date": (
        postgresql.DATERANGE,
        postgresql.DATEMULTIRANGE,
        st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 30)),
    ),
    "ts": (postgresql.TSRANGE, postgresql.TSMULTIRANGE, _DATETIMES),
    "tstz": (
        postgresql.TSTZRANGE,
        postgresql.TSTZMULTIRANGE,
        _DATETIMES.map(lambda moment: moment.replace(tzinfo=dt.UTC)),
    ),
}


def _as_stored(connection: Connection, type_: TypeEngine[Any], value: Any) -> Any:
    """The database's JSON for ``value`` once stored in a column of ``type_``, given as
    the text the Python rules write for the value as assigned."""
    name = type_.compile(dialect=postgresql.dialect())
    expression = json_expression("stored", Column("stored", type_))
    query = f"SELECT {expression} FROM (SELECT CAST(:given AS {name}) AS stored) AS given"
    return connection.execute(text(query), {"given": to_json_value(value)}).scalar_one()


@pytest.mark.parametrize("kind", sorted(BOUNDS))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_flush_and_the_triggers_write_a_range_alike(
    utc_connection: Connection, kind: str, data: st.DataObject
) -> None:
    single, multiple, bound = BOUNDS[kind]
    value = data.draw(_ranges(bound), label="range")
    assert json_converter(single())(value) == _as_stored(utc_connection, single(), value)
    values = data.draw(st.lists(_ranges(bound), max_size=4), label="multirange")
    assert json_converter(multiple())(values) == _as_stored(
        utc_connection, multiple(), MultiRange(values)
    )


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2024, 1, 1, 9, 30, 0, 5, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
def test_timestamps_in_a_range_keep_their_microseconds(
    utc_connection: Connection, moment: dt.datetime
) -> None:
    value = Range(moment, None)
    written = json_converter(postgresql.TSTZRANGE())(value)
    assert written == f"[{moment.isoformat()},)"
    assert written == _as_stored(utc_connection, postgresql.TSTZRANGE(), value)


@pytest.mark.parametrize(
    ("written", "stored", "same"),
    [
        ("[2024-01-01T09:00:00+05:30,)", "[2024-01-01 03:30:00+00,)", True),
        ("[2024-01-01T09:00:00+05:30,)", "[2024-01-01 03:31:00+00,)", False),
        # Python's offsets reach 23:59, PostgreSQL reads up to 15:59: not compared,
        # rather than failing the application's commit (asyncpg sends such a value).
        ("[2024-01-01T09:00:00+18:00,)", "[2000-01-01 00:00:00+00,)", True),
        ("empty", "empty", True),
    ],
)
def test_a_timestamp_range_is_compared_as_an_instant(
    utc_connection: Connection, written: str, stored: str, same: bool
) -> None:
    condition = same_value_expression(
        "CAST(:written AS jsonb)", "CAST(:stored AS tstzrange)", Column("c", postgresql.TSTZRANGE())
    )
    query = text(f"SELECT {condition}")
    parameters = {"written": dumps(written), "stored": stored}
    assert utc_connection.execute(query, parameters).scalar_one() is same
