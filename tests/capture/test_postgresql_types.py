"""A class with PostgreSQL's own column types (ranges, multiranges, its INTERVAL, arrays
of decimals, enums, timestamps and floats, times with a zone, OIDs) is audited through every
write path, each writing a value as the database stores it and as the others write it
(docs/values.md)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from typing import Any

from sqlalchemy import Engine, String, Time, delete, text, update
from sqlalchemy import Enum as EnumType
from sqlalchemy.dialects.postgresql import (
    ARRAY,
    DATERANGE,
    DOUBLE_PRECISION,
    INT4MULTIRANGE,
    INT8RANGE,
    INTERVAL,
    NUMERIC,
    NUMRANGE,
    OID,
    TIMESTAMP,
    TSRANGE,
    TSTZMULTIRANGE,
    Range,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, log_rows, model_fixtures

pytestmark = POSTGRES_ONLY


class Kind(enum.IntEnum):
    BOOKING = 1


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark blue"


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.BOOKING, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Booking(Base):
    __tablename__ = "bookings"
    id: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str] = mapped_column(String, default="")
    seats: Mapped[Any] = mapped_column(INT8RANGE, nullable=True)
    nights: Mapped[Any] = mapped_column(DATERANGE, nullable=True)
    price: Mapped[Any] = mapped_column(NUMRANGE, nullable=True)
    local: Mapped[Any] = mapped_column(TSRANGE, nullable=True)
    open_hours: Mapped[Any] = mapped_column(TSTZMULTIRANGE, nullable=True)
    floors: Mapped[Any] = mapped_column(INT4MULTIRANGE, nullable=True)
    stay: Mapped[Any] = mapped_column(INTERVAL, nullable=True)
    prices: Mapped[Any] = mapped_column(ARRAY(NUMERIC(10, 2)), nullable=True)
    colors: Mapped[Any] = mapped_column(ARRAY(EnumType(Color)), nullable=True)
    arrivals: Mapped[Any] = mapped_column(ARRAY(TIMESTAMP(timezone=True)), nullable=True)
    ratios: Mapped[Any] = mapped_column(ARRAY(DOUBLE_PRECISION), nullable=True)
    check_in: Mapped[Any] = mapped_column(Time(timezone=True), nullable=True)
    owner_oid: Mapped[Any] = mapped_column(OID, nullable=True)


engine, sessions = model_fixtures(Base.metadata, keeper)

UTC = dt.UTC
ASSIGNED = {
    "seats": Range(1, 4, bounds="[]"),
    "nights": Range(dt.date(2024, 7, 1), dt.date(2024, 7, 7), bounds="[]"),
    "price": Range(decimal.Decimal("99.50"), None),
    "local": Range(dt.datetime(2024, 7, 1, 15, 0, 0, 250), dt.datetime(2024, 7, 7, 11)),
    "open_hours": [
        Range(dt.datetime(2024, 7, 2, 9, tzinfo=UTC), dt.datetime(2024, 7, 2, 17, tzinfo=UTC)),
        Range(dt.datetime(2024, 7, 1, 9, tzinfo=UTC), dt.datetime(2024, 7, 1, 17, tzinfo=UTC)),
    ],
    "floors": [Range(3, 5), Range(1, 2, bounds="[]")],
    "stay": dt.timedelta(days=6, hours=20),
    "prices": [decimal.Decimal("99.5"), None, decimal.Decimal("120")],
    "colors": [Color.DARK_BLUE, Color.RED],
    "arrivals": [dt.datetime(2024, 7, 1, 15, 0, 0, 250, tzinfo=UTC)],
    "ratios": [0.5, float("nan"), float("-inf")],
    "check_in": dt.time(15, 0, 0, 250, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    "owner_oid": 4_000_000_000,
}
STORED = {
    "id": 1,
    "note": "",
    "seats": "[1,5)",
    "nights": "[2024-07-01,2024-07-08)",
    "price": "[99.50,)",
    "local": "[2024-07-01T15:00:00.000250,2024-07-07T11:00:00)",
    "open_hours": "{[2024-07-01T09:00:00+00:00,2024-07-01T17:00:00+00:00),"
    "[2024-07-02T09:00:00+00:00,2024-07-02T17:00:00+00:00)}",
    "floors": "{[1,5)}",
    "stay": 590400.0,
    "prices": ["99.50", None, "120.00"],
    "colors": ["dark blue", "red"],
    "arrivals": ["2024-07-01T15:00:00.000250+00:00"],
    "ratios": [0.5, "nan", "-inf"],
    "check_in": "15:00:00.000250-03:30",
    "owner_oid": 4_000_000_000,  # a number, as Python reads it
}


def _rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def test_the_flush_writes_values_as_stored_and_reads_them_back(
    engine: Engine, sessions: Any
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Booking(id=1, **ASSIGNED))
        session.commit()
    with auditkeeper.acting_as(1), sessions() as session:
        booking = session.get_one(Booking, 1)
        booking.seats = Range(2, 3)
        session.commit()
        session.delete(booking)
        session.commit()
    created, updated, deleted = _rows(engine)
    assert created.current == STORED
    assert updated.previous == STORED
    assert updated.difference == {"seats": ["[1,5)", "[2,3)"]}
    assert deleted.previous == {**STORED, "seats": "[2,3)"}
    assert [row.context for row in (created, updated, deleted)] == [None, None, None]


def test_bulk_statements_and_raw_sql_write_values_as_the_flush_does(
    engine: Engine, sessions: Any
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Booking(id=1, **ASSIGNED))
        session.commit()
        session.execute(update(Booking).values(note="bulk"))
        session.commit()
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL TIME ZONE 'UTC'"))
        connection.execute(text("UPDATE bookings SET note = 'raw'"))
    with auditkeeper.acting_as(1), sessions() as session:
        session.execute(delete(Booking))
        session.commit()
    created, bulk, raw, deleted = _rows(engine)
    assert bulk.previous == created.current
    assert raw.previous == {**STORED, "note": "bulk"}
    assert deleted.previous == {**STORED, "note": "raw"}
    assert bulk.context == {"captured_by": "database statement trigger"}
    assert raw.context == {"captured_by": "database trigger"}
