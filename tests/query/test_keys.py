"""Records whose keys are not integers: UUID, string and composite keys."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import InvalidFilterError, LogFilter, as_of, history, read_page
from tests.conftest import Database


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2


class Kind(enum.IntEnum):
    TICKET = 1
    SEAT = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(entity_type=Kind.TICKET, create=Action.CREATE, update=Action.UPDATE)
class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str]


@auditkeeper.audited(entity_type=Kind.SEAT, create=Action.CREATE, update=Action.UPDATE)
class Seat(Base):
    __tablename__ = "seats"
    row: Mapped[str] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str | None]


TICKET = uuid.UUID("9a2a5c47-e5a4-4d3c-9f3b-6a4cf1e1d1a5")


@pytest.fixture
def sessions(database: Database, engine: Engine) -> Any:
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    installation = keeper.install(factory)
    with factory() as session:
        ticket = Ticket(id=TICKET, title="Printer on fire")
        seats = [Seat(row="a,b", number=1), Seat(row="a", number=11)]
        session.add_all([ticket, Ticket(title="Other"), *seats])
        session.commit()
        ticket.title = "Printer fixed"
        seats[0].holder = "Jane"
        session.commit()
    yield factory
    installation.uninstall()


@pytest.mark.parametrize("key", [TICKET, str(TICKET), str(TICKET).upper()])
def test_a_uuid_key_given_as_a_uuid_or_text(sessions: Any, key: Any) -> None:
    with sessions() as session:
        rows = history(session, keeper, "ticket", key)
        state = as_of(session, keeper, Kind.TICKET, key)
    assert [r.difference["title"][1] for r in rows] == ["Printer on fire", "Printer fixed"]
    assert rows[0].entity_key == str(TICKET)
    assert state.fields == {"id": str(TICKET), "title": "Printer fixed"}


def test_composite_keys_are_unambiguous(sessions: Any) -> None:
    with sessions() as session:
        first = history(session, keeper, "SEAT", ("a,b", 1))
        other = history(session, keeper, "SEAT", ("a", "11"))  # "11" as the column stores it
        ids = [
            e.id
            for e in read_page(session, keeper, LogFilter(entity_type="SEAT", record=("a", 11)))
        ]
    assert [e.entity_key for e in first] == ['["a,b",1]', '["a,b",1]']
    assert [e.entity_key for e in other] == ['["a",11]']
    assert ids == [other[0].id]


def test_a_composite_key_as_the_json_array_the_log_writes(sessions: Any) -> None:
    with sessions() as session:
        by_text = history(session, keeper, "SEAT", '["a,b", 1]')
        by_tuple = history(session, keeper, "SEAT", ("a,b", 1))
        other = read_page(session, keeper, LogFilter(entity_type="SEAT", record='["a","11"]'))
    assert [e.id for e in by_text] == [e.id for e in by_tuple] and len(by_text) == 2
    assert [e.entity_key for e in other] == ['["a",11]']


@pytest.mark.parametrize("key", ["a", '["a"]', '["a", 1, 2]', '{"row": "a"}', "[1,"])
def test_a_key_of_the_wrong_shape_is_refused(sessions: Any, key: str) -> None:
    with sessions() as session, pytest.raises(InvalidFilterError, match="key of 2 parts"):
        history(session, keeper, "SEAT", key)


def test_unknown_records_are_not_created(sessions: Any, engine: Engine) -> None:
    with Session(engine) as session:
        assert not as_of(session, keeper, "TICKET", uuid.uuid4()).exists
