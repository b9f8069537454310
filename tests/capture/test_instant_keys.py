"""Records whose primary key holds an instant (a time-partitioned table's ``(sensor,
at)``): every path names the record alike, whatever offset the application gave the
instant in and whatever time zone each connection's session has. PostgreSQL identifies
an instant in UTC; SQLite, which stores no offset, by its wall time."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import pytest
from sqlalchemy import DateTime, Engine, String, event, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import history
from tests._support import Action, installed_sessions, log_rows, model_engine
from tests.conftest import Database


class Kind(enum.IntEnum):
    READING = 1
    ALARM = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
EVERY_ACTION = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}


@auditkeeper.audited(entity_type=Kind.READING, **EVERY_ACTION)
class Reading(Base):
    __tablename__ = "readings"
    sensor: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    value: Mapped[int]


@auditkeeper.audited(entity_type=Kind.ALARM, **EVERY_ACTION)
class Alarm(Base):
    __tablename__ = "alarms"
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    level: Mapped[int]


PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
AT = dt.datetime(2026, 1, 1, 10, 0, 0, 250000, tzinfo=PLUS_TWO)
STORED = {  # the instant as each database identifies it
    "postgresql": '"2026-01-01T08:00:00.250000+00:00"',
    "sqlite": '"2026-01-01T10:00:00.250000"',
}
IN_BERLIN = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
IN_BERLIN_STORED = {"postgresql": "2026-01-01T08:00:00+00:00", "sqlite": "2026-01-01T09:00:00"}


def _in_zone(engine: Engine, zone: str) -> Engine:
    """``engine`` whose PostgreSQL sessions run in ``zone``, as a server configured
    with another ``timezone`` than UTC would have them."""
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def set_zone(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.autocommit = True
            dbapi_connection.execute(f"SET TIME ZONE '{zone}'")
            dbapi_connection.autocommit = False

        engine.dispose()  # connections opened before (create_all's): new ones in ``zone``
    return engine


@pytest.fixture
def engine(database: Database) -> Engine:
    return _in_zone(model_engine(database, Base.metadata, keeper), "Europe/Berlin")


@pytest.fixture
def sessions(engine: Engine) -> Any:
    yield from installed_sessions(engine, keeper)


@pytest.fixture
def other_client(database: Database) -> Engine:
    """A second client, in another time zone."""
    return _in_zone(database.engine(), "Asia/Tokyo")


def test_every_path_names_a_record_with_an_instant_in_its_key_alike(
    sessions: Any, engine: Engine, other_client: Engine
) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        reading = Reading(sensor="s-1", at=AT, value=1)
        session.add(reading)
        session.commit()
        reading.value = 2
        session.commit()
        session.execute(update(Reading).values(value=3))
        session.commit()
    with other_client.begin() as connection:
        connection.execute(text("UPDATE readings SET value = 4"))
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        session.delete(session.get_one(Reading, ("s-1", AT)))
        session.commit()
    if engine.dialect.name == "postgresql":  # the sessions did run in other zones
        for client, zone in ((engine, "Europe/Berlin"), (other_client, "Asia/Tokyo")):
            with client.connect() as connection:
                assert connection.exec_driver_sql("SHOW TIME ZONE").scalar() == zone
    rows = log_rows(engine, keeper)
    expected_key = f'["s-1",{STORED[engine.dialect.name]}]'
    assert [(r.action, r.entity_key) for r in rows] == [
        (Action.CREATE, expected_key),
        (Action.UPDATE, expected_key),
        (Action.UPDATE, expected_key),
        (Action.UPDATE, expected_key),
        (Action.DELETE, expected_key),
    ]


def test_a_lone_instant_key_through_the_flush_and_raw_sql(
    sessions: Any, engine: Engine, other_client: Engine
) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        alarm = Alarm(raised_at=AT, level=1)
        session.add(alarm)
        session.commit()
    with other_client.begin() as connection:
        connection.execute(text("UPDATE alarms SET level = 2"))
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        session.delete(session.get_one(Alarm, AT))
        session.commit()
        # In the session's own zone: PostgreSQL's statement trigger logs the creation.
        session.add(Alarm(raised_at=IN_BERLIN, level=1))
        session.commit()
    rows = log_rows(engine, keeper)
    expected_key = STORED[engine.dialect.name].strip('"')
    assert [(r.action, r.entity_key) for r in rows] == [
        (Action.CREATE, expected_key),
        (Action.UPDATE, expected_key),
        (Action.DELETE, expected_key),
        (Action.CREATE, IN_BERLIN_STORED[engine.dialect.name]),
    ]


def test_the_record_is_found_by_the_instant_in_any_offset(sessions: Any, engine: Engine) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        reading, alarm = Reading(sensor="s-1", at=AT, value=1), Alarm(raised_at=AT, level=1)
        session.add_all([reading, alarm])
        session.commit()
        reading.value = alarm.level = 2
        session.commit()
    asked = [AT]
    if engine.dialect.name == "postgresql":  # SQLite cannot tell the instant from elsewhere
        asked += [AT.astimezone(dt.UTC), AT.astimezone(dt.timezone(dt.timedelta(hours=-5)))]
    factory = sessionmaker(engine)
    for at in asked:
        with factory() as session:
            found = history(session, keeper, "READING", ("s-1", at))
            trail = auditkeeper.trail(session, Alarm, at, keeper=keeper)
        assert [row.action for row in found] == [Action.CREATE, Action.UPDATE], at
        assert [row.event for row in trail] == ["Updated", "Created"], at
