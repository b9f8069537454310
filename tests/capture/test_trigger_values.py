"""The capture triggers write a value as the flush writes it: intervals as seconds (the
generic ``Interval`` is a ``TypeDecorator``, stored as a datetime after the epoch where
the database has no interval type) and whole floats as floats."""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Any

import pytest
from sqlalchemy import Engine, Float, Interval, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import Action, log_rows, model_fixtures


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
    id: Mapped[int] = mapped_column(primary_key=True)
    took: Mapped[Any] = mapped_column(Interval, nullable=True)
    value: Mapped[Any] = mapped_column(Float, nullable=True)


engine, sessions = model_fixtures(Base.metadata, keeper)

READINGS = [
    (dt.timedelta(days=1, seconds=5, microseconds=7), 0.1),
    (dt.timedelta(seconds=-1, microseconds=500000), 1e16),
    (dt.timedelta(0), 1e300),
    (dt.timedelta(hours=3), float("-inf")),
    (None, 2.0),  # (not NaN: SQLite stores it as NULL, docs/raw-sql.md)
    (dt.timedelta(microseconds=1), -1.5e17),
]


@pytest.mark.parametrize(("took", "value"), READINGS)
def test_the_triggers_write_intervals_and_floats_as_the_flush(
    engine: Engine, sessions: Any, took: Any, value: float
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Reading(id=1, took=took, value=value))
        session.commit()
    with engine.begin() as connection:  # a copy by raw SQL: the trigger's row
        connection.execute(
            text("INSERT INTO readings (id, took, value) SELECT 2, took, value FROM readings")
        )
    by_flush, by_trigger = log_rows(engine, keeper)
    assert by_trigger.context == {"captured_by": "database trigger"}
    assert {**by_trigger.current, "id": 1} == by_flush.current
    for document in (by_flush.current, by_trigger.current):
        assert type(document["took"]) is (float if took is not None else type(None))
        assert type(document["value"]) is (float if math.isfinite(value) else str)
