"""On PostgreSQL, a flush that only deletes records of one audited table sends their keys
in one announced DELETE, and the table's statement trigger logs them: the rows the
flush would write, once each, and every other case is left to the flush."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import auditkeeper
from auditkeeper.capture.document import build_row
from auditkeeper.capture.triggers import announcement
from auditkeeper.capture.triggers.common import FLUSH_ROWS
from tests._support import POSTGRES_ONLY, log_rows, model_fixtures, sent_statements
from tests.capture.test_flushed_inserts import VALUES as ANY_VALUES


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3


class Kind(enum.IntEnum):
    SAMPLE = 1
    TEXT_KEYED = 2
    NODE = 3
    SEALED = 4
    ODD = 5
    BRANCH = 6
    LEAF = 7


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}


@auditkeeper.audited(entity_type=Kind.SAMPLE, **VERBS)
class Sample(Base):
    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None]
    count: Mapped[int | None] = mapped_column(BigInteger)
    flag: Mapped[bool | None]
    key: Mapped[uuid.UUID | None]
    day: Mapped[dt.date | None]
    moment: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    naive: Mapped[dt.datetime | None] = mapped_column(DateTime)
    amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(12, 2))
    free: Mapped[decimal.Decimal | None] = mapped_column(Numeric)
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)
    password: Mapped[str | None]  # redacted by name


@auditkeeper.audited(entity_type=Kind.TEXT_KEYED, **VERBS)
class Coded(Base):
    """A text key, in a table and column whose names need quoting and hold ``%``."""

    __tablename__ = "co'ded %s"
    code: Mapped[str] = mapped_column('co"de %(x)s', String(40), primary_key=True)
    label: Mapped[str | None]


@auditkeeper.audited(entity_type=Kind.NODE, **VERBS)
class Node(Base):
    """A tree in one table: the flush deletes its rows in the order their links need."""

    __tablename__ = "nodes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str]
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("nodes.id"))
    parent: Mapped[Node | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Node]] = relationship(back_populates="parent")


class Sealed(TypeDecorator[str]):
    """A value stored otherwise than the application reads it."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value[::-1]

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value[::-1]


@auditkeeper.audited(entity_type=Kind.BRANCH, **VERBS)
class Branch(Base):
    """A tree whose database deletes a branch's children with it."""

    __tablename__ = "branches"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))


@auditkeeper.audited(entity_type=Kind.LEAF, **VERBS)
class Leaf(Base):
    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))


@auditkeeper.audited(entity_type=Kind.SEALED, **VERBS)
class Letter(Base):
    __tablename__ = "letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Sealed)


@auditkeeper.audited(entity_type=Kind.ODD, **VERBS)
class Counted(Base):
    """A version counter: SQLAlchemy deletes its rows one by one, with the counter."""

    __tablename__ = "counted"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def sent(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def set_based(sent: list[str], table: Any = Sample.__table__) -> list[str]:
    """The flush's DELETEs that the statement trigger logged."""
    start = f"{announcement(table, postgresql.dialect())} {FLUSH_ROWS} DELETE"
    return [s for s in sent if s.startswith(start)]


def client_log_writes(sent: list[str]) -> int:
    return sum(1 for s in sent if s.startswith("INSERT INTO audit_log"))


def rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def deletions(engine: Engine) -> list[Any]:
    return [r for r in rows(engine) if r.action == Action.DELETE]


def seed(sessions: Any, *objects: Any) -> None:
    with sessions() as s:
        s.add_all(objects)
        s.commit()


def delete_all(sessions: Any, *models: Any) -> None:
    """Delete every record of ``models`` in one flush."""
    with sessions() as s:
        loaded = [obj for model in models for obj in s.query(model).all()]  # before autoflush
        for obj in loaded:
            s.delete(obj)
        s.commit()


UTC = dt.UTC
VALUES = [
    {"label": "plain", "count": 2**62, "flag": True, "amount": decimal.Decimal("12.5")},
    {"label": "ünïcödé \U0001f600 'quotes' \"double\" */ %s", "count": -1, "flag": False},
    {"key": uuid.UUID("12345678-1234-5678-1234-567812345678"), "day": dt.date(1999, 12, 31)},
    {"moment": dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.timezone.min)},
    {"naive": dt.datetime(2024, 1, 1, 8, 30), "free": decimal.Decimal("1234567890.000123")},
    {"amount": decimal.Decimal("-0.01"), "free": decimal.Decimal("1E+2")},
    {"doc": {"a": [1, 2.5, None, True], "b": {"c": "d"}, "big": 1e16}, "password": "hunter2"},
    {"doc": "just text"},
    {},
]


@POSTGRES_ONLY
def test_the_statement_trigger_writes_the_rows_the_flush_would(engine: Engine, sessions, sent):
    """Each deleted record's document is the one the flush builds from a fresh copy of
    it (the values as stored: ``12.5`` in a ``Numeric(12, 2)`` reads ``12.50``)."""
    seed(sessions, *(Sample(id=number, **values) for number, values in enumerate(VALUES, 1)))
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    context = {"request_id": "r-1"}
    sent.clear()
    with auditkeeper.acting_as(5, email="ann@example.com", context=context), sessions() as s:
        samples = s.query(Sample).order_by(Sample.id).all()
        expected = {
            sample.id: build_row(
                plan,
                "delete",
                {c.key: getattr(sample, c.key) for c in plan.columns},
                {},
                (sample.id,),
                dialect="postgresql",
                zone=UTC,
            )
            for sample in samples
        }
        for sample in samples:
            s.delete(sample)
        s.commit()
    assert len(set_based(sent)) == 1 and client_log_writes(sent) == 0
    logged = deletions(engine)
    assert sorted(r.number_identifier for r in logged) == list(range(1, len(VALUES) + 1))
    for row in logged:
        built = expected[row.number_identifier]
        assert built is not None
        assert row.changed_objects == built["changed_objects"], row.number_identifier
        assert (row.entity_type, row.user_id, row.user_email) == (Kind.SAMPLE, 5, "ann@example.com")
        assert row.context == context  # the flush's row: unmarked
    assert logged[0].previous["amount"] == "12.50"
    assert logged[6].previous["password"] == "[redacted]"
    assert len({(r.created_at, r.transaction_id) for r in logged}) == 1


@POSTGRES_ONLY
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(ANY_VALUES, min_size=2, max_size=3))
def test_any_stored_values_are_logged_as_the_flush_would_log_them(
    engine: Engine, sessions, values: list[dict[str, Any]]
):
    """Whatever the application assigned, the deletion logs the record as stored: the
    document the flush builds from a fresh copy."""
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    first = len(rows(engine)) + 1  # each example's own records
    numbers = range(first, first + len(values))
    seed(sessions, *(Sample(id=n, **given) for n, given in zip(numbers, values, strict=True)))
    with sessions() as s:
        fresh = s.query(Sample).order_by(Sample.id).all()
        zone = s.connection().connection.driver_connection.info.timezone
        expected = [
            build_row(
                plan,
                "delete",
                {c.key: getattr(sample, c.key) for c in plan.columns},
                {},
                (sample.id,),
                dialect="postgresql",
                zone=zone,
            )
            for sample in fresh
        ]
        for sample in fresh:
            s.delete(sample)
        s.commit()
    logged = sorted(deletions(engine), key=lambda r: r.number_identifier)[-len(values) :]
    assert [r.number_identifier for r in logged] == list(numbers)
    assert [r.changed_objects for r in logged] == [e and e["changed_objects"] for e in expected]
    assert all(r.context is None for r in logged)  # the statement trigger's, as the flush's


@POSTGRES_ONLY
def test_the_rows_take_the_flush_time(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1), Sample(id=2), Sample(id=3))
    with sessions() as s:
        first, second, third = s.query(Sample).order_by(Sample.id).all()
        first.label = "changed"
        s.flush()
        s.delete(second)
        s.delete(third)
        s.commit()
    assert len(set_based(sent)) == 1
    *_, update, first, second = rows(engine)
    assert update.action == Action.UPDATE
    assert (first.number_identifier, second.number_identifier) == (2, 3)
    assert update.transaction_id == first.transaction_id == second.transaction_id
    assert update.created_at < first.created_at == second.created_at


@POSTGRES_ONLY
def test_the_stored_record_is_logged_even_from_a_stale_copy(engine: Engine, sessions, sent):
    """Another transaction changed the records after this session read them: the log
    says what was deleted, not the session's older copy."""
    seed(sessions, Sample(id=1, label="old"), Sample(id=2, label="old"))
    with sessions() as s:
        stale = s.query(Sample).order_by(Sample.id).all()
        with engine.begin() as other:  # the session's copy is older now
            other.execute(text("UPDATE samples SET label = 'new'"))
        for sample in stale:
            s.delete(sample)
        s.commit()
    assert len(set_based(sent)) == 1
    assert [r.previous["label"] for r in deletions(engine)] == ["new", "new"]


@POSTGRES_ONLY
def test_a_record_already_gone_is_counted_as_sqlalchemy_counts_it(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1), Sample(id=2), Sample(id=3))
    with sessions() as s:
        loaded = s.query(Sample).order_by(Sample.id).all()
        with engine.begin() as other:  # not the session's copy: its record is gone
            other.execute(text("DELETE FROM samples WHERE id = 2"))
        for sample in loaded:
            s.delete(sample)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s.commit()
    assert len(set_based(sent)) == 1
    assert any("expected to delete 3 row(s); 2 were matched" in str(w.message) for w in caught)
    # The other transaction's deletion (raw SQL, logged by the row trigger), then this one's.
    marks = [(r.context or {}).get("captured_by") for r in deletions(engine)]
    logged = list(zip([r.number_identifier for r in deletions(engine)], marks, strict=True))
    assert logged == [(2, "database trigger"), (1, None), (3, None)]


@POSTGRES_ONLY
def test_text_keys_and_names_that_need_quoting(engine: Engine, sessions, sent):
    codes = ["a", "b'%s", 'c"%(x)s', "d\\"]
    seed(sessions, *(Coded(code=code, label=code) for code in codes))
    delete_all(sessions, Coded)
    assert len(set_based(sent, Coded.__table__)) == 1 and client_log_writes(sent) == 0
    logged = deletions(engine)
    assert sorted(r.entity_key for r in logged) == sorted(codes)
    assert all(r.previous["label"] == r.entity_key for r in logged)


@POSTGRES_ONLY
def test_a_tree_deleted_in_one_flush_is_logged_once_per_record(engine: Engine, sessions, sent):
    """Its rows may leave in several statements, each announced."""
    with sessions() as s:
        root = Node(name="root")
        middle = Node(name="middle", parent=root)
        Node(name="leaf", parent=middle)
        Node(name="other leaf", parent=root)
        s.add(root)
        s.commit()
    delete_all(sessions, Node)
    assert set_based(sent, Node.__table__) and client_log_writes(sent) == 0
    logged = deletions(engine)
    assert sorted(r.previous["name"] for r in logged) == ["leaf", "middle", "other leaf", "root"]
    assert len({r.entity_key for r in logged}) == 4


@POSTGRES_ONLY
def test_the_database_cascades_are_logged_once_each(engine: Engine, sessions, sent):
    with sessions() as s:
        s.add_all([Branch(id=1), Branch(id=2), Branch(id=3, parent_id=1), Branch(id=4)])
        s.add_all([Leaf(id=1, branch_id=1), Leaf(id=2, branch_id=3), Leaf(id=3, branch_id=4)])
        s.commit()
    with sessions() as s, auditkeeper.acting_as(9):
        for branch in s.query(Branch).filter(Branch.id.in_([1, 2])).all():
            s.delete(branch)
        s.commit()
    assert len(set_based(sent, Branch.__table__)) == 1
    logged = [
        (r.entity_type, r.number_identifier, (r.context or {}).get("captured_by"), r.user_id)
        for r in deletions(engine)
    ]
    assert sorted(logged) == [
        (Kind.BRANCH, 1, None, 9),
        (Kind.BRANCH, 2, None, 9),
        (Kind.BRANCH, 3, None, 9),  # the tree's own cascade: the statement's row
        (Kind.LEAF, 1, "database trigger", 9),
        (Kind.LEAF, 2, "database trigger", 9),
    ]


@POSTGRES_ONLY
def test_a_flush_that_also_changes_records_logs_its_deletions_itself(
    engine: Engine, sessions, sent
):
    """Its rows keep the flush's order: the update, then the deletions."""
    seed(sessions, Sample(id=1), Sample(id=2), Sample(id=3))
    sent.clear()
    with sessions() as s:
        first, second, third = s.query(Sample).order_by(Sample.id).all()
        first.label = "changed"
        s.delete(second)
        s.delete(third)
        s.commit()
    assert not set_based(sent) and client_log_writes(sent) == 1
    assert [(r.action, r.number_identifier, r.context) for r in rows(engine)[3:]] == [
        (Action.UPDATE, 1, None),
        (Action.DELETE, 2, None),
        (Action.DELETE, 3, None),
    ]


@POSTGRES_ONLY
def test_deletions_of_two_tables_are_left_to_the_flush(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1), Sample(id=2), Coded(code="a"), Coded(code="b"))
    delete_all(sessions, Sample, Coded)
    assert not set_based(sent) and not set_based(sent, Coded.__table__)
    assert len(deletions(engine)) == 4 and all(r.context is None for r in deletions(engine))


@POSTGRES_ONLY
def test_a_value_stored_otherwise_leaves_the_deletions_to_the_flush(engine: Engine, sessions, sent):
    """The trigger would log the stored form; the flush logs the application's."""
    seed(sessions, Letter(id=1, body="hello"), Letter(id=2, body="world"))
    delete_all(sessions, Letter)
    assert not set_based(sent, Letter.__table__)
    assert sorted(r.previous["body"] for r in deletions(engine)) == ["hello", "world"]


@POSTGRES_ONLY
def test_a_version_counter_leaves_the_deletions_to_the_flush(engine: Engine, sessions, sent):
    seed(sessions, Counted(id=1), Counted(id=2))
    delete_all(sessions, Counted)
    assert not set_based(sent, Counted.__table__)
    assert sorted(r.number_identifier for r in deletions(engine)) == [1, 2]


@POSTGRES_ONLY
def test_without_its_statement_trigger_the_flush_logs_the_deletions(engine: Engine, sessions, sent):
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE samples DISABLE TRIGGER samples_audit_deletes"))
    seed(sessions, Sample(id=1), Sample(id=2))
    sent.clear()
    delete_all(sessions, Sample)
    assert not set_based(sent) and client_log_writes(sent) == 1
    assert [(r.number_identifier, r.context) for r in deletions(engine)] == [(1, None), (2, None)]


@POSTGRES_ONLY
def test_a_rolled_back_savepoint_takes_the_deletions_with_it(engine: Engine, sessions, sent):
    seed(sessions, *(Sample(id=n) for n in range(1, 5)))
    with sessions() as s:
        samples = s.query(Sample).order_by(Sample.id).all()
        with s.begin_nested() as savepoint:
            s.delete(samples[0])
            s.delete(samples[1])
            s.flush()
            savepoint.rollback()
        s.delete(samples[2])
        s.delete(samples[3])
        s.commit()
    assert len(set_based(sent)) == 2
    assert [r.number_identifier for r in deletions(engine)] == [3, 4]
    with sessions() as s:
        assert sorted(sample.id for sample in s.query(Sample).all()) == [1, 2]


@POSTGRES_ONLY
def test_a_failed_commit_keeps_neither_the_deletions_nor_their_rows(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1), Sample(id=2))
    with sessions() as s:
        for sample in s.query(Sample).all():
            s.delete(sample)
        s.flush()
        assert len(deletions_in(s)) == 2
        s.rollback()
    assert deletions(engine) == []
    with sessions() as s:
        assert s.query(Sample).count() == 2


def deletions_in(session: Any) -> list[Any]:
    """The log's deletions as the session's own transaction sees them."""
    return list(
        session.execute(text("SELECT number_identifier FROM audit_log WHERE action = :a"), {"a": 3})
    )
