"""A partitioned audited table on PostgreSQL: its row trigger is cloned onto each
partition, and a statement that names a partition fires none of the parent's statement
triggers; so the parent has none, and every row reaches the row trigger, whichever
table a statement names and whatever it carries."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import auditkeeper
from auditkeeper.capture.triggers import announcement
from tests._support import POSTGRES_ONLY, Action, installed_sessions, model_engine


class Kind(enum.IntEnum):
    READING = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.READING, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = {"postgresql_partition_by": "RANGE (id)"}
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


@pytest.fixture
def engine(database) -> Engine:
    engine = model_engine(database, Base.metadata, keeper)
    with engine.begin() as connection:
        for low in (0, 100):
            connection.exec_driver_sql(
                f"CREATE TABLE readings_{low} PARTITION OF readings "
                f"FOR VALUES FROM ({low}) TO ({low + 100})"
            )
    return engine


@pytest.fixture
def sessions(engine: Engine):
    yield from installed_sessions(engine, keeper)


def logged(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id))
        return [(r.number_identifier, r.action, (r.context or {}).get("captured_by")) for r in rows]


@POSTGRES_ONLY
def test_every_row_of_a_partitioned_table_is_logged_whichever_table_is_named(
    engine: Engine, sessions
):
    assert keeper.check(engine) == []
    with sessions() as session:
        session.add_all([Reading(id=1, value=1), Reading(id=101, value=1)])
        session.commit()
    with sessions() as session:  # a bulk statement through the parent
        session.execute(update(Reading).values(value=2))
        session.commit()
    token = announcement(Reading.__table__, postgresql.dialect())
    with engine.begin() as connection:  # a partition named, with the parent's announcement
        connection.execute(text(f"{token} UPDATE readings_0 SET value = 3"))
        connection.execute(text(f"{token} INSERT INTO readings_100 VALUES (102, 1)"))
    assert logged(engine) == [
        (1, Action.CREATE, None),
        (101, Action.CREATE, None),
        (1, Action.UPDATE, "database trigger"),
        (101, Action.UPDATE, "database trigger"),
        (1, Action.UPDATE, "database trigger"),
        (102, Action.CREATE, "database trigger"),
    ]


@POSTGRES_ONLY
def test_a_bulk_insert_into_a_partitioned_table_is_logged_without_statement_triggers(
    engine: Engine, sessions
):
    """No statement trigger to announce it to: the rows come back through RETURNING and
    the session logs them, each checked at commit."""
    with sessions() as session:
        session.execute(insert(Reading), [{"id": 5, "value": 1}, {"id": 105, "value": 1}])
        session.commit()
    assert logged(engine) == [(5, Action.CREATE, None), (105, Action.CREATE, None)]


@POSTGRES_ONLY
def test_partitioning_the_table_does_not_declare_is_reported(database):
    class Plain(DeclarativeBase):
        pass

    plain_keeper = auditkeeper.Auditkeeper(Plain.metadata, actions=Action, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.READING, create=Action.CREATE)
    class Undeclared(Plain):
        __tablename__ = "undeclared"
        id: Mapped[int] = mapped_column(primary_key=True)

    engine = database.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE undeclared (id INTEGER PRIMARY KEY) PARTITION BY RANGE (id)"
        )
    plain_keeper.create_all(engine)
    problems = plain_keeper.check(engine)
    assert [p.kind for p in problems] == ["undeclared-partitioning"]
    assert "postgresql_partition_by" in problems[0].message
