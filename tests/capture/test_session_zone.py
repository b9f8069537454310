"""A datetime that PostgreSQL stores otherwise than the application gave it: a naive
one in a ``timestamptz`` column is read in the session's time zone (``default=
datetime.utcnow`` in many applications), an aware one in a ``timestamp`` column is kept
as its wall time there. The flush logs both as stored, as the triggers and a reload do."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Date, DateTime, Engine, String, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from auditkeeper.capture import document
from tests._support import POSTGRES_ONLY, Action, installed_sessions, log_rows, model_engine
from tests.conftest import Database


class Kind(enum.IntEnum):
    MEETING = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.MEETING, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Meeting(Base):
    __tablename__ = "meetings"
    id: Mapped[int] = mapped_column(primary_key=True)
    starts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    wall: Mapped[dt.datetime] = mapped_column(DateTime())
    day: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(40))


BERLIN = ZoneInfo("Europe/Berlin")
NAIVE = dt.datetime(2026, 1, 15, 10, 0)
AWARE = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)  # the 16th in Berlin
STORED = {"starts": "2026-01-15T10:00:00+01:00", "wall": "2026-01-15T11:00:00", "day": "2026-01-16"}


@pytest.fixture
def engine(database: Database) -> Engine:
    engine = model_engine(database, Base.metadata, keeper)
    if engine.dialect.name != "postgresql":
        return engine

    @event.listens_for(engine, "connect")
    def in_berlin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SET TIME ZONE 'Europe/Berlin'")
        dbapi_connection.autocommit = False

    engine.dispose()  # the connections create_all opened: new ones start in Berlin
    return engine


@pytest.fixture
def sessions(engine: Engine) -> Any:
    yield from installed_sessions(engine, keeper)


@POSTGRES_ONLY  # SQLite stores no time zone: values are logged as given there
def test_datetimes_are_logged_as_the_session_stores_them(sessions: Any, engine: Engine) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        meeting = Meeting(id=1, starts=NAIVE, wall=AWARE, day=LATE, note="plan")
        session.add(meeting)
        session.commit()
        session.expire(meeting)
        meeting.starts, meeting.wall, meeting.day = NAIVE, AWARE, LATE  # the same: no change
        session.commit()
        session.execute(text("UPDATE meetings SET note = 'agenda'"))
        session.commit()
        session.expire(meeting)
        meeting.starts = NAIVE + dt.timedelta(hours=1)
        session.commit()
    created, raw, moved = log_rows(engine, keeper)
    assert {k: created.current[k] for k in STORED} == STORED
    assert {k: raw.previous[k] for k in STORED} == STORED  # the trigger reads them alike
    assert moved.difference == {
        "starts": ["2026-01-15T10:00:00+01:00", "2026-01-15T11:00:00+01:00"]
    }


@POSTGRES_ONLY
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Europe/Dublin"])
def test_wall_times_around_daylight_saving_changes_are_read_as_postgresql_reads_them(
    database: Database, zone: str
) -> None:
    walls = [
        day.replace(hour=0) + dt.timedelta(minutes=30 * n)
        for day in (dt.datetime(2026, 3, 8), dt.datetime(2026, 3, 29), dt.datetime(2026, 10, 25))
        for n in range(10)
    ] + [dt.datetime(2026, 11, 1, 1, 30), dt.datetime(2026, 11, 1, 1, 0)]
    with database.engine().connect() as connection:
        connection.exec_driver_sql(f"SET TIME ZONE '{zone}'")
        for wall in walls:
            stored = connection.exec_driver_sql(
                "SELECT %(wall)s::timestamp::timestamptz", {"wall": wall}
            ).scalar_one()
            read = document._read_in(wall, ZoneInfo(zone))
            assert read.isoformat() == stored.astimezone(ZoneInfo(zone)).isoformat(), wall


def test_a_datetime_given_to_a_date_column_is_logged_as_its_date(
    sessions: Any, engine: Engine
) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        meeting = Meeting(id=1, starts=AWARE, wall=NAIVE, day=NAIVE, note="plan")
        session.add(meeting)
        session.commit()
        session.expire(meeting)
        meeting.day = NAIVE.replace(hour=18)  # the same day: no change
        session.commit()
        meeting.day = NAIVE + dt.timedelta(days=1)
        session.commit()
    created, moved = log_rows(engine, keeper)  # the creation once: as the database stored it
    assert created.current["day"] == "2026-01-15"
    assert moved.difference == {"day": ["2026-01-15", "2026-01-16"]}
