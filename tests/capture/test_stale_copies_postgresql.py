"""A session's copy older than the record, in PostgreSQL's own column types: arrays,
network addresses, ranges, hstore, text-search vectors, money, bit strings and times
with a zone are
compared with what is stored too
(tests/capture/test_stale_copies.py has the rule and the other types)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from typing import Any

import pytest
from sqlalchemy import DateTime, Engine, Integer, Numeric, String, Time
from sqlalchemy.dialects.postgresql import (
    ARRAY,
    BIT,
    CIDR,
    DATEMULTIRANGE,
    HSTORE,
    INET,
    INT4RANGE,
    MACADDR,
    MONEY,
    TSTZRANGE,
    TSVECTOR,
    Range,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, log_rows, model_engine, model_fixtures

pytestmark = POSTGRES_ONLY


class Kind(enum.IntEnum):
    HOST = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.HOST, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    tags: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    ports: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    address: Mapped[Any] = mapped_column(INET, nullable=True)
    network: Mapped[Any] = mapped_column(CIDR, nullable=True)
    mac: Mapped[Any] = mapped_column(MACADDR, nullable=True)
    slots: Mapped[Any] = mapped_column(INT4RANGE, nullable=True)
    lease: Mapped[Any] = mapped_column(TSTZRANGE, nullable=True)
    closed: Mapped[Any] = mapped_column(DATEMULTIRANGE, nullable=True)
    words: Mapped[Any] = mapped_column(TSVECTOR, nullable=True)
    fee: Mapped[Any] = mapped_column(MONEY, nullable=True)
    flags: Mapped[Any] = mapped_column(BIT(4), nullable=True)
    labels: Mapped[Any] = mapped_column(HSTORE, nullable=True)
    opens: Mapped[Any] = mapped_column(Time(timezone=True), nullable=True)
    prices: Mapped[Any] = mapped_column(ARRAY(Numeric(10, 2)), nullable=True)
    seen: Mapped[Any] = mapped_column(ARRAY(DateTime(timezone=True)), nullable=True)


_, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def engine(database: Any) -> Engine:
    """The module's tables, once the database has hstore (a contrib extension): made in
    the test's schema, or found where a server given by AUDITKEEPER_TEST_PG_URL has it."""
    with database.engine().begin() as connection:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")
        home = connection.exec_driver_sql(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'hstore'"
        ).scalar_one()
    options = database.connect_args["options"]
    if not options.endswith(f",{home}") and f"={home}" not in options:
        database.connect_args = {**database.connect_args, "options": f"{options},{home}"}
    return model_engine(database, Base.metadata, keeper)


CREATED = {
    "tags": ["web"],
    "ports": [80],
    "address": "10.0.0.1",
    "network": "10.0.0.0/8",
    "mac": "08:00:2b:01:02:03",
    # As assigned, not as stored: the database keeps [1,5] as [1,6).
    "slots": Range(1, 5, bounds="[]"),
    "lease": Range(dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), None),
    "closed": [Range(dt.date(2024, 12, 25), dt.date(2024, 12, 26))],
    "words": "'server' 'web'",
    "fee": "$12.50",
    "flags": "1010",
    "labels": {"rack": "r1", "spare": None},
    "opens": dt.time(9, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    "prices": [decimal.Decimal("9.50"), None],
    "seen": [dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)],
}
# What another transaction stores after the stale session read the host.
OTHER = {
    "tags": ["web", "tls"],
    "ports": [80, 443],
    "address": "10.0.0.2",
    "network": "192.168.0.0/16",
    "mac": "08:00:2b:01:02:04",
    "slots": Range(1, 5),
    "lease": Range(
        dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    ),
    "closed": [Range(dt.date(2024, 12, 25), dt.date(2024, 12, 27))],
    "words": "'proxy' 'web'",
    "fee": "$13.00",
    "flags": "0110",
    "labels": {"rack": "r2", "spare": None},
    "opens": dt.time(9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    "prices": [decimal.Decimal("9.50"), decimal.Decimal("0.00")],
    "seen": [dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), dt.datetime(2024, 2, 1, tzinfo=dt.UTC)],
}


def _rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def _stale_save(sessions: Any, field: str, delete: bool) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Host(id=1, name="alpha", **CREATED))
        session.commit()
    stale = sessions()
    host = stale.get_one(Host, 1)
    with auditkeeper.acting_as(2), sessions() as other:
        setattr(other.get_one(Host, 1), field, OTHER[field])
        other.commit()
    with auditkeeper.acting_as(3):
        if delete:
            stale.delete(host)
        else:
            host.name = "beta"
        stale.commit()
    stale.close()


@pytest.mark.parametrize("delete", [False, True], ids=["update", "delete"])
@pytest.mark.parametrize("field", sorted(OTHER))
def test_a_field_another_transaction_changed_is_logged_as_stored(
    engine: Engine, sessions: Any, field: str, delete: bool
) -> None:
    _stale_save(sessions, field, delete)
    created, by_other, as_seen, as_stored = _rows(engine)
    assert as_seen.context is None and as_seen.previous == created.current
    assert as_stored.context == {"captured_by": "database trigger"}
    assert as_stored.previous == by_other.current
    assert as_stored.previous[field] != as_seen.previous[field]


def test_a_fresh_copy_is_logged_once(engine: Engine, sessions: Any) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Host(id=1, name="alpha", **CREATED))
        session.commit()
    with auditkeeper.acting_as(2), sessions() as session:
        host = session.get_one(Host, 1)
        host.name = "beta"
        session.commit()
        session.delete(host)
        session.commit()
    assert [row.context for row in _rows(engine)] == [None, None, None]


def test_a_value_in_the_applications_own_form_is_no_older_copy(
    engine: Engine, sessions: Any
) -> None:
    """The session's copy keeps the values as the application wrote them, which the
    database stores in its own form: compared as values, they are the same."""
    own_forms = {
        "words": "web server",
        "fee": "12.5",
        "slots": Range(1, 5, bounds="[]"),
        "seen": [dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=1)))],
        "prices": [decimal.Decimal("9.5")],
    }
    with auditkeeper.acting_as(1), sessions() as session:
        host = Host(id=1, name="alpha", **own_forms)
        session.add(host)
        session.commit()
        host.name = "beta"  # the copy still holds the values as assigned
        session.commit()
        session.delete(host)
        session.commit()
    created, updated, deleted = _rows(engine)
    assert created.current["words"] == "web server" and created.current["fee"] == "12.5"
    assert [row.context for row in (created, updated, deleted)] == [None, None, None]
