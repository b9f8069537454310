"""A created or deleted record's ``difference`` lists its fields that are not null, and
the capture triggers find the null ones from the row's columns where only SQL NULL reads
as null: a JSON column's JSON null and an enum member whose value is None are asked of
the document. Raw SQL's rows say what the flush's would."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, Enum, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import auditkeeper
from auditkeeper.capture.document import build_row
from tests._support import model_fixtures


class Action(enum.IntEnum):
    CREATE = 1
    DELETE = 2


class Kind(enum.IntEnum):
    THING = 1


class Level(enum.Enum):
    LOW = "low"
    UNSET = None


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(entity_type=Kind.THING, create=Action.CREATE, delete=Action.DELETE)
class Thing(Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None]
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)  # None is stored as JSON null
    level: Mapped[Level | None] = mapped_column(Enum(Level), nullable=True)


engine, sessions = model_fixtures(Base.metadata, keeper)


CASES = [
    {"label": None, "doc": None, "level": None},
    {"label": "x", "doc": {"a": None}, "level": Level.UNSET},
    {"label": "", "doc": [None], "level": Level.LOW},
    {"doc": 0},
]


@pytest.mark.parametrize("values", CASES, ids=range(len(CASES)))
def test_raw_sql_logs_the_fields_set_as_the_flush_would(
    engine: Engine, sessions, values: dict[str, Any]
):
    with sessions() as s:
        s.add(Thing(id=1, **values))
        s.commit()
    with engine.begin() as connection:  # raw SQL: the capture triggers log both
        connection.execute(text("INSERT INTO things SELECT 2, label, doc, level FROM things"))
        connection.execute(text("DELETE FROM things WHERE id = 2"))
    with Session(engine) as s:
        created, deleted = s.scalars(
            select(keeper.Entry).where(keeper.Entry.number_identifier == 2)
        ).all()
    plan = keeper._recorder.plan_for(Thing.__mapper__)
    assert plan is not None
    given = {"label": None, "doc": None, "level": None} | values | {"id": 2}
    for row, verb in ((created, "create"), (deleted, "delete")):
        expected = build_row(plan, verb, given, given, (2,), dialect=engine.dialect.name)
        assert expected is not None
        assert row.changed_objects == expected["changed_objects"]
        assert row.context == {"captured_by": "database trigger"}
