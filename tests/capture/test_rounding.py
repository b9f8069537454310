"""Values a column rounds: the flush writes them rounded as PostgreSQL rounds them, so
that its row says what the database stored (a Numeric's scale, a TIMESTAMP(p)'s
digits, a TIME(p)'s, a REAL's four bytes), with PostgreSQL's own casts as the oracle."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Numeric
from sqlalchemy.dialects import postgresql

from auditkeeper.capture import document
from auditkeeper.capture.plan import coerce
from tests._support import POSTGRES_ONLY
from tests.conftest import Database

EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
ties = st.integers(min_value=-(10**9), max_value=10**9).map(
    lambda n: decimal.Decimal(n).scaleb(-3) + decimal.Decimal("0.0005")
)


@pytest.fixture
def connection(database: Database) -> Any:
    """One connection for all of a test's examples, in UTC."""
    with database.engine().connect() as connection:
        connection.exec_driver_sql("SET TIME ZONE 'UTC'")
        yield connection


@POSTGRES_ONLY
@EXAMPLES
@given(
    value=st.one_of(ties, st.decimals(min_value=-(10**9), max_value=10**9, places=6)),
    scale=st.integers(min_value=0, max_value=4),
)
def test_a_numeric_is_rounded_to_its_scale_as_postgresql_rounds_it(
    connection: Connection, value: decimal.Decimal, scale: int
) -> None:
    stored = connection.exec_driver_sql(
        f"SELECT %(value)s::numeric(20, {scale})", {"value": value}
    ).scalar_one()
    assert str(coerce(value, Numeric(20, scale))) == str(stored)


@POSTGRES_ONLY
@EXAMPLES
@given(
    value=st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.none()
    ),
    zone=st.none() | offsets,
    precision=st.integers(min_value=0, max_value=5),
)
def test_a_timestamp_is_rounded_to_its_precision_as_postgresql_rounds_it(
    connection: Connection, value: dt.datetime, zone: dt.tzinfo | None, precision: int
) -> None:
    given_value = value if zone is None else value.replace(tzinfo=zone)
    cast = "timestamp" if zone is None else "timestamptz"
    stored = connection.exec_driver_sql(
        f"SELECT %(value)s::{cast}({precision})", {"value": given_value}
    ).scalar_one()
    column = postgresql.TIMESTAMP(timezone=zone is not None, precision=precision)
    assert coerce(given_value, column) == stored


@POSTGRES_ONLY
@EXAMPLES
# PostgreSQL refuses a value a REAL cannot hold (past 3.4e38, or a nonzero one under
# 1.2e-38): the application's write fails; nothing is logged.
@given(
    value=st.one_of(
        st.floats(min_value=-3e38, max_value=3e38).filter(
            lambda value: value == 0 or abs(value) >= 1.2e-38
        ),
        # Integers past 2**24, half of them halfway between two REALs.
        st.integers(min_value=2**24, max_value=2**31).map(float),
    )
)
@example(value=33821310.0)  # halfway: PostgreSQL writes the REAL it keeps, 33821312
@example(value=16777217.0)
def test_a_real_is_written_as_postgresql_reads_its_four_bytes_back(
    connection: Connection, value: float
) -> None:
    stored = connection.exec_driver_sql("SELECT %(value)s::real", {"value": value}).scalar_one()
    assert document._as_float4(value) == stored


@POSTGRES_ONLY
@EXAMPLES
@given(value=st.times(), precision=st.integers(min_value=0, max_value=5))
def test_a_time_is_rounded_to_its_precision_as_postgresql_rounds_it(
    connection: Connection, value: dt.time, precision: int
) -> None:
    rounded = coerce(value, postgresql.TIME(precision=precision))
    if value >= dt.time(23, 59, 59) and rounded == value:  # 24:00:00: kept as given
        return
    stored = connection.exec_driver_sql(
        f"SELECT %(value)s::time({precision})", {"value": value}
    ).scalar_one()
    assert rounded == stored
