"""A session's copy of a record read before another transaction changed it.

The flush builds its row from the session's copy, so that row says what the session saw.
The database's triggers compare it with what is stored (docs/capture.md, "A copy older
than the record"): where a field differs, the change is logged once more as the database
stored it, marked ``captured_by``, so that the log's last word on the record is the
record. A flush that updates one record in two statements of its own (a
``post_update``) is still logged once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import JSON, DateTime, Engine, ForeignKey, Numeric, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, model_fixtures, sent_statements


class Kind(enum.IntEnum):
    CARD = 1
    NODE = 2
    TICKET = 3


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}
OWNER = uuid.UUID("12345678-1234-5678-1234-567812345678")


@auditkeeper.audited(entity_type=Kind.CARD, **VERBS)
class Card(Base):
    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    status: Mapped[str] = mapped_column(default="open")
    owner: Mapped[uuid.UUID | None]
    due: Mapped[dt.date | None]
    done: Mapped[bool] = mapped_column(default=False)
    points: Mapped[int] = mapped_column(default=0)
    estimate: Mapped[decimal.Decimal | None] = mapped_column(Numeric(6, 2))
    seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@auditkeeper.audited(entity_type=Kind.NODE, **VERBS)
class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))
    # Written by a second UPDATE of the flush's own, after the row's other columns.
    parent: Mapped[Node | None] = relationship(remote_side=[id], post_update=True)


@auditkeeper.audited(entity_type=Kind.TICKET, **VERBS)
class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    status: Mapped[str] = mapped_column(default="open")
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def _rows(engine: Engine, kind: Kind) -> list[Any]:
    with Session(engine) as session:
        query = select(keeper.Entry).where(keeper.Entry.entity_type == kind)
        return list(session.scalars(query.order_by(keeper.Entry.id)))


def _stored(engine: Engine, card_id: int) -> dict[str, Any]:
    """The card as the log writes it, read from its table."""
    with Session(engine) as session:
        card = session.get_one(Card, card_id)
        return {
            "id": card.id,
            "title": card.title,
            "status": card.status,
            "owner": None if card.owner is None else str(card.owner),
            "due": None if card.due is None else card.due.isoformat(),
            "done": card.done,
            "points": card.points,
            "estimate": None if card.estimate is None else str(card.estimate),
            "seen_at": None if card.seen_at is None else card.seen_at.isoformat(),
            "labels": card.labels,
        }


def _new_card(sessions: Any, **values: Any) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Card(id=1, title="Draft", **values))
        session.commit()


# Another transaction's change of a field the stale session leaves alone: values whose
# JSON SQL and Python write alike, and values compared as their types.
OTHER_CHANGES = {
    "status": "blocked",
    "owner": OWNER,
    "due": dt.date(2031, 2, 3),
    "done": True,
    "points": 8,
    "seen_at": dt.datetime(2031, 2, 3, 4, 5, 6),
    "labels": {"tags": ["urgent", 1.5]},
}
# SQLite stores a Numeric as a REAL, and does not compare it: POSTGRESQL_CHANGED below.


def _retitle(session: Session, card: Card) -> None:
    card.title = "Final"


def _save_over(
    sessions: Any,
    field: str,
    value: Any,
    save: Callable[[Session, Card], None] = _retitle,
    **initial: Any,
) -> None:
    """Create the card (with ``initial`` values), read it, let another transaction set
    ``field`` and commit, then ``save`` from the copy read first."""
    _new_card(sessions, **initial)
    stale = sessions()
    card = stale.get_one(Card, 1)  # read now; the other transaction commits after
    with auditkeeper.acting_as(2), sessions() as other:
        setattr(other.get_one(Card, 1), field, value)
        other.commit()
    with auditkeeper.acting_as(3):
        save(stale, card)
        stale.commit()
    stale.close()


def _assert_logged_as_stored(engine: Engine, field: str) -> None:
    created, by_other, as_seen, as_stored = _rows(engine, Kind.CARD)
    stored = _stored(engine, 1)
    assert stored["title"] == "Final" and stored[field] == by_other.current[field]
    assert by_other.current == {**created.current, field: by_other.current[field]}
    # The flush's row: the session's copy, without the other transaction's change.
    assert as_seen.context is None
    assert as_seen.previous == created.current
    assert as_seen.difference == {"title": ["Draft", "Final"]}
    # The database's: the same change, on the record as it was stored.
    assert as_stored.context == {"captured_by": "database trigger"}
    assert as_stored.previous == by_other.current
    assert as_stored.current == stored
    assert as_stored.difference == {"title": ["Draft", "Final"]}
    assert as_stored.user_id == 3 and as_stored.transaction_id == as_seen.transaction_id


# (field, its value when created, the other transaction's): a field changed, and one
# emptied (the stored value is NULL, the session's copy not).
CHANGED = [(field, None, value) for field, value in sorted(OTHER_CHANGES.items())] + [
    (field, OTHER_CHANGES[field], None) for field in ("due", "labels", "owner", "seen_at")
]
POSTGRESQL_CHANGED = [("estimate", None, decimal.Decimal("2.5")), ("estimate", 1, None)]


def _created_with(field: str, value: Any) -> dict[str, Any]:
    return {} if value is None else {field: value}


def _assert_deletion_logged_as_stored(engine: Engine, field: str) -> None:
    created, by_other, as_seen, as_stored = _rows(engine, Kind.CARD)
    assert as_seen.action == as_stored.action == Action.DELETE
    assert as_seen.previous == created.current  # the session's copy
    assert as_stored.previous == by_other.current  # what was deleted
    assert as_stored.previous[field] != as_seen.previous[field]
    assert as_stored.context == {"captured_by": "database trigger"}


def _deletes(session: Session, card: Card) -> None:
    session.delete(card)


# How the stale session saves its copy, and what the log then holds.
SAVES = {
    "update": (_retitle, _assert_logged_as_stored),
    "delete": (_deletes, _assert_deletion_logged_as_stored),
}


def _save_and_check(
    engine: Engine, sessions: Any, save: str, field: str, created: Any, changed: Any
) -> None:
    saving, logged_as_stored = SAVES[save]
    _save_over(sessions, field, changed, saving, **_created_with(field, created))
    logged_as_stored(engine, field)


@pytest.mark.parametrize("save", sorted(SAVES))
@pytest.mark.parametrize(("field", "created", "changed"), CHANGED)
def test_a_field_another_transaction_changed_since_the_read_is_logged_as_stored(
    engine: Engine, sessions: Any, save: str, field: str, created: Any, changed: Any
) -> None:
    _save_and_check(engine, sessions, save, field, created, changed)


@POSTGRES_ONLY
@pytest.mark.parametrize("save", sorted(SAVES))
@pytest.mark.parametrize(("field", "created", "changed"), POSTGRESQL_CHANGED)
def test_a_number_another_transaction_changed_is_compared_as_a_number(
    engine: Engine, sessions: Any, save: str, field: str, created: Any, changed: Any
) -> None:
    _save_and_check(engine, sessions, save, field, created, changed)


def test_a_lost_update_over_an_emptied_field_is_logged_from_null(
    engine: Engine, sessions: Any
) -> None:
    later = uuid.UUID("87654321-4321-8765-4321-876543218765")
    _save_over(sessions, "owner", None, lambda _, card: setattr(card, "owner", later), owner=OWNER)

    rows = _rows(engine, Kind.CARD)
    assert [row.difference for row in rows[1:]] == [
        {"owner": [str(OWNER), None]},
        {"owner": [str(OWNER), str(later)]},
        {"owner": [None, str(later)]},
    ]
    assert rows[-1].context == {"captured_by": "database trigger"}
    assert rows[-1].current == _stored(engine, 1)


def test_a_fresh_copy_is_logged_once(engine: Engine, sessions: Any) -> None:
    _new_card(sessions)
    with auditkeeper.acting_as(2), sessions() as other:
        card = other.get_one(Card, 1)
        for field, value in {**OTHER_CHANGES, "estimate": decimal.Decimal("2.5")}.items():
            setattr(card, field, value)
        other.commit()
    with auditkeeper.acting_as(3), sessions() as session:
        session.get_one(Card, 1).title = "Final"
        session.commit()

    rows = _rows(engine, Kind.CARD)
    assert [row.context for row in rows] == [None, None, None]
    assert rows[2].previous == rows[1].current
    assert rows[-1].current == _stored(engine, 1)


def test_a_lost_update_is_logged_from_the_value_it_overwrote(engine: Engine, sessions: Any) -> None:
    _save_over(sessions, "status", "blocked", lambda _, card: setattr(card, "status", "closed"))

    rows = _rows(engine, Kind.CARD)
    assert [row.difference for row in rows[1:]] == [
        {"status": ["open", "blocked"]},
        {"status": ["open", "closed"]},
        {"status": ["blocked", "closed"]},
    ]
    assert rows[-1].context == {"captured_by": "database trigger"}
    assert rows[-1].current == _stored(engine, 1)


def test_a_record_updated_in_two_statements_of_one_flush_is_logged_once_by_it(
    engine: Engine, sessions: Any, statements: list[str]
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add_all([Node(id=1, name="root"), Node(id=2, name="leaf")])
        session.commit()
    statements.clear()
    with auditkeeper.acting_as(2), sessions() as session:
        root, leaf = session.get_one(Node, 1), session.get_one(Node, 2)
        leaf.name = "branch"  # the row's UPDATE
        leaf.parent = root  # then the post_update of parent_id, in the same flush
        session.commit()

    updates = [s for s in statements if "UPDATE nodes SET" in s]
    assert len(updates) == 2, updates
    *_, row = _rows(engine, Kind.NODE)
    assert row.context is None  # the flush's, and no second one from the triggers
    assert row.difference == {"name": ["leaf", "branch"], "parent_id": [None, 1]}
    assert row.current == {"id": 2, "name": "branch", "parent_id": 1}


def test_a_version_counter_refuses_the_stale_copy_and_logs_nothing_of_it(
    engine: Engine, sessions: Any
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(Ticket(id=1, title="Draft"))
        session.commit()
    stale = sessions()
    ticket = stale.get_one(Ticket, 1)
    with auditkeeper.acting_as(2), sessions() as other:
        other.get_one(Ticket, 1).status = "blocked"
        other.commit()
    with auditkeeper.acting_as(3):
        ticket.title = "Final"
        with pytest.raises(StaleDataError):
            stale.commit()
    stale.close()

    rows = _rows(engine, Kind.TICKET)
    assert [row.user_id for row in rows] == [1, 2]
    assert rows[-1].current["status"] == "blocked"
