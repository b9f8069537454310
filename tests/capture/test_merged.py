"""On PostgreSQL, a flush that only updates, or only deletes, records of one audited table
sends them as one announced statement, and the table's statement trigger logs them: the
rows the flush would write, once each, and every other case is left to the flush."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import enum
import itertools
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    select,
    text,
)
from sqlalchemy import event as engine_events
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import auditkeeper
from auditkeeper.capture.document import build_row
from auditkeeper.capture.triggers import announcement
from auditkeeper.capture.triggers.common import FLUSH_ROWS
from tests._support import POSTGRES_ONLY, log_rows, model_fixtures, sent_statements
from tests.capture.test_flushed_inserts import TEXT, SampleColumns
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
    TAGGED = 8


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
UTC = dt.UTC
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}


@auditkeeper.audited(entity_type=Kind.SAMPLE, **VERBS)
class Sample(SampleColumns, Base):
    __tablename__ = "samples"


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


@auditkeeper.audited(entity_type=Kind.TAGGED, **VERBS)
class Tagged(Base):
    """Columns the log leaves out: one of a plain type, one of arrays."""

    __tablename__ = "tagged"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None]
    amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(12, 2))
    note: Mapped[str | None] = mapped_column(info=auditkeeper.audit_column(exclude=True))
    tags: Mapped[list[str] | None] = mapped_column(
        postgresql.ARRAY(String), info=auditkeeper.audit_column(exclude=True)
    )


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
    label: Mapped[str | None]
    __mapper_args__ = {"version_id_col": version}


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def sent(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def set_based(sent: list[str], table: Any = Sample.__table__, verb: str = "DELETE") -> list[str]:
    """The flush's merged statements of ``verb`` that the statement trigger logged."""
    start = f"{announcement(table, postgresql.dialect())} {FLUSH_ROWS} {verb}"
    return [s for s in sent if s.startswith(start)]


def merged_updates(sent: list[str], table: Any = Sample.__table__) -> list[str]:
    return set_based(sent, table, "UPDATE")


def client_log_writes(sent: list[str]) -> int:
    return sum(1 for s in sent if s.startswith("INSERT INTO audit_log"))


def rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def deletions(engine: Engine) -> list[Any]:
    return [r for r in rows(engine) if r.action == Action.DELETE]


def updates(engine: Engine) -> list[Any]:
    return sorted(
        (r for r in rows(engine) if r.action == Action.UPDATE),
        key=lambda r: (r.entity_type, r.number_identifier or 0, r.entity_key or "", r.id),
    )


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


def fresh_values(plan: Any, obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in plan.columns}


def expected_update(plan: Any, before: dict[str, Any], obj: Any, zone: Any = UTC) -> Any:
    """The documents the flush builds for ``obj``'s update."""
    built = build_row(
        plan, "update", before, fresh_values(plan, obj), (obj.id,), dialect="postgresql", zone=zone
    )
    return built and built["changed_objects"]


def expected_deletion(plan: Any, obj: Any, zone: Any = UTC) -> Any:
    """The documents the flush builds for ``obj``'s deletion, from a fresh copy."""
    built = build_row(
        plan, "delete", fresh_values(plan, obj), {}, (obj.id,), dialect="postgresql", zone=zone
    )
    return built and built["changed_objects"]


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
        expected = {sample.id: expected_deletion(plan, sample) for sample in samples}
        for sample in samples:
            s.delete(sample)
        s.commit()
    assert len(set_based(sent)) == 1 and client_log_writes(sent) == 0
    logged = deletions(engine)
    assert sorted(r.number_identifier for r in logged) == list(range(1, len(VALUES) + 1))
    for row in logged:
        assert row.changed_objects == expected[row.number_identifier], row.number_identifier
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
        expected = [expected_deletion(plan, sample, zone) for sample in fresh]
        for sample in fresh:
            s.delete(sample)
        s.commit()
    logged = sorted(deletions(engine), key=lambda r: r.number_identifier)[-len(values) :]
    assert [r.number_identifier for r in logged] == list(numbers)
    assert [r.changed_objects for r in logged] == expected
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
@pytest.mark.parametrize("through_session", [True, False], ids=["session", "engine"])
def test_raw_sql_that_forges_the_flush_announcement_is_still_logged(
    engine: Engine, sessions, through_session: bool
):
    """The announcement only moves a statement's rows to the statement trigger: raw SQL
    that starts as a merged flush's statements do still has every row it changes logged,
    once, as stored."""
    seed(sessions, Sample(id=1, label="a"), Sample(id=2, label="b"), Sample(id=3, label="c"))
    start = f"{announcement(Sample.__table__, postgresql.dialect())} {FLUSH_ROWS}"
    statements = [
        f"{start} UPDATE samples SET label = 'forged ' || id WHERE id IN (1, 2)",
        f"{start} DELETE FROM samples WHERE id = 3",
        f"{start} INSERT INTO samples (id, label) VALUES (4, 'new')",
    ]
    if through_session:
        with sessions() as s:
            for statement in statements:
                s.connection().exec_driver_sql(statement)
            s.commit()
    else:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    logged = [
        (
            r.action,
            r.number_identifier,
            (r.previous or {}).get("label"),
            (r.current or {}).get("label"),
        )
        for r in rows(engine)[3:]
    ]
    assert sorted(logged) == [
        (Action.CREATE, 4, None, "new"),
        (Action.UPDATE, 1, "a", "forged 1"),
        (Action.UPDATE, 2, "b", "forged 2"),
        (Action.DELETE, 3, "c", None),
    ]


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


# -- updates --------------------------------------------------------------------------


def change_every_field(sample: Sample) -> None:
    """New values for each audited field, all reading alike in SQL: every record's
    update sets the same columns, so SQLAlchemy sends them in one ``executemany``."""
    n = sample.id
    sample.label = f"{sample.label or ''} changed ünï 'q' \"d\" %s */"
    sample.count = (sample.count or 0) // 2 + 1
    sample.flag = not sample.flag
    sample.key = uuid.UUID(int=n)
    sample.day = (sample.day or dt.date(2000, 1, 1)) + dt.timedelta(days=1)
    sample.moment = dt.datetime(2025, 1, 1, 12, 0, n, 250000, tzinfo=UTC)
    sample.naive = dt.datetime(2025, 1, 1, 12, 0, n)
    sample.amount = (sample.amount or 0) + decimal.Decimal("1.25")
    sample.free = decimal.Decimal(f"{n}.5")
    sample.doc = {"n": n, "list": [1, "two", None, True, 2.5], "nested": {"x": None}}
    sample.password = f"secret {n}"


@POSTGRES_ONLY
def test_updates_are_merged_into_one_statement_the_trigger_logs(engine: Engine, sessions, sent):
    """Each row is the one the flush would write: the record before (as stored) and
    after, and the fields that changed."""
    seed(sessions, *(Sample(id=number, **values) for number, values in enumerate(VALUES, 1)))
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    sent.clear()
    context = {"request_id": "r-2"}
    with auditkeeper.acting_as(5, email="ann@example.com", context=context), sessions() as s:
        samples = s.query(Sample).order_by(Sample.id).all()
        before = {sample.id: fresh_values(plan, sample) for sample in samples}
        for sample in samples:
            change_every_field(sample)
        expected = {x.id: expected_update(plan, before[x.id], x) for x in samples}
        s.commit()
    assert len(merged_updates(sent)) == 1 and client_log_writes(sent) == 0
    logged = updates(engine)
    assert {r.number_identifier: r.changed_objects for r in logged} == {
        number: objects for number, objects in expected.items() if objects is not None
    }
    assert all(r.user_id == 5 and r.context == context for r in logged)  # the flush's rows
    assert len({(r.created_at, r.transaction_id) for r in logged}) == 1


ALIKE_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "label": TEXT,
        "count": st.integers(-(2**63), 2**63 - 1),
        "flag": st.booleans(),
        "key": st.uuids(),
        "day": st.dates(),
        "moment": st.datetimes(timezones=st.just(UTC)),
        "naive": st.datetimes(),
        "amount": st.decimals(-(10**9), 10**9, places=2),
        "password": TEXT,
    },
)
"""New values that read alike in SQL: their updates are merged."""


@POSTGRES_ONLY
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    old=st.lists(ANY_VALUES, min_size=2, max_size=3),
    new=st.lists(ALIKE_VALUES | ANY_VALUES, min_size=3, max_size=3),
)
def test_any_update_is_logged_as_the_flush_would_log_it(
    engine: Engine, sessions, old: list[dict[str, Any]], new: list[dict[str, Any]]
):
    """Whether merged (every assigned value reads alike in SQL) or not, each record's
    row is the flush's. Records that change other columns go in statements of their
    own; those of one record are the flush's to log."""
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    first = len(rows(engine)) + 100  # each example's own records
    numbers = range(first, first + len(old))
    seed(sessions, *(Sample(id=n, **given) for n, given in zip(numbers, old, strict=True)))
    writes: list[str] = []
    with contextlib.contextmanager(sent_statements)(engine) as sent_now, sessions() as s:
        samples = s.query(Sample).filter(Sample.id.in_(numbers)).order_by(Sample.id).all()
        zone = s.connection().connection.driver_connection.info.timezone
        before = {sample.id: fresh_values(plan, sample) for sample in samples}
        keys = {key for values in new for key in values}  # mostly one statement
        for sample, values in zip(samples, new, strict=False):
            for key in keys:
                setattr(sample, key, values.get(key))
        expected = {
            sample.id: expected_update(plan, before[sample.id], sample, zone) for sample in samples
        }
        s.commit()
        writes = [w for w in sent_now if w.startswith("INSERT INTO audit_log")]
        was_merged = bool(merged_updates(sent_now))
    event("merged" if was_merged else "left to the flush")
    logged = [r for r in updates(engine) if r.number_identifier in numbers]
    first_rows = {}
    for row in logged:
        first_rows.setdefault(row.number_identifier, row)
    assert {n: r.changed_objects for n, r in first_rows.items()} == {
        n: objects for n, objects in expected.items() if objects is not None
    }
    if was_merged:  # every value read alike: one row per record, the flush's or merged
        assert len(logged) == len(first_rows)
        assert all(r.context is None for r in logged)
        assert len(writes) <= 1


@POSTGRES_ONLY
def test_an_update_from_a_stale_copy_logs_the_record_as_stored(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1, label="old", count=1), Sample(id=2, label="old", count=1))
    with sessions() as s:
        stale = s.query(Sample).order_by(Sample.id).all()
        with engine.begin() as other:  # the session's copy is older now
            other.execute(text("UPDATE samples SET label = 'new'"))
        for sample in stale:
            sample.count = 2
        s.commit()
    assert len(merged_updates(sent)) == 1
    logged = [r for r in updates(engine) if r.context is None]
    assert [(r.previous["label"], r.current["label"], r.difference) for r in logged] == [
        ("new", "new", {"count": [1, 2]}),
        ("new", "new", {"count": [1, 2]}),
    ]


@POSTGRES_ONLY
def test_an_update_of_a_record_gone_fails_as_sqlalchemy_fails_it(engine: Engine, sessions, sent):
    from sqlalchemy.orm.exc import StaleDataError

    seed(sessions, Sample(id=1), Sample(id=2), Sample(id=3))
    with sessions() as s:
        loaded = s.query(Sample).order_by(Sample.id).all()
        with engine.begin() as other:
            other.execute(text("DELETE FROM samples WHERE id = 2"))
        for sample in loaded:
            sample.label = "changed"
        with pytest.raises(StaleDataError, match="expected to update 3 row"):
            s.flush()
    assert len(merged_updates(sent)) == 1
    assert updates(engine) == []  # rolled back with the change


@POSTGRES_ONLY
def test_updates_of_different_columns_are_merged_per_statement(engine: Engine, sessions, sent):
    """SQLAlchemy groups a flush's updates by the columns they set: each group of two or
    more is merged, a group of one is the flush's."""
    seed(sessions, *(Sample(id=n, label="a", count=1) for n in range(1, 6)))
    sent.clear()
    with sessions() as s:
        one, two, three, four, five = s.query(Sample).order_by(Sample.id).all()
        one.label = two.label = "b"
        three.count = four.count = 2
        five.flag = True
        s.commit()
    assert len(merged_updates(sent)) == 2 and client_log_writes(sent) == 1
    logged = updates(engine)
    assert [(r.number_identifier, r.difference) for r in logged] == [
        (1, {"label": ["a", "b"]}),
        (2, {"label": ["a", "b"]}),
        (3, {"count": [1, 2]}),
        (4, {"count": [1, 2]}),
        (5, {"flag": [None, True]}),
    ]
    assert [r.context for r in logged] == [None] * 5


@POSTGRES_ONLY
def test_a_value_that_may_read_otherwise_leaves_the_updates_to_the_flush(
    engine: Engine, sessions, sent
):
    seed(sessions, Sample(id=1), Sample(id=2))
    sent.clear()
    paris = dt.timezone(dt.timedelta(hours=2))
    with sessions() as s:
        one, two = s.query(Sample).order_by(Sample.id).all()
        one.moment = dt.datetime(2024, 1, 1, 9, tzinfo=paris)  # not the session's offset
        two.label = "plain"
        s.commit()
    assert not merged_updates(sent) and client_log_writes(sent) == 1
    assert [r.number_identifier for r in updates(engine) if r.context is None] == [1, 2]


@POSTGRES_ONLY
def test_an_sql_expression_leaves_the_updates_to_the_flush(engine: Engine, sessions, sent):
    seed(sessions, Sample(id=1, count=1), Sample(id=2, count=5))
    with sessions() as s:
        for sample in s.query(Sample).all():
            sample.count = Sample.count + 1
        s.commit()
    assert not merged_updates(sent)
    assert [r.difference for r in updates(engine)] == [{"count": [1, 2]}, {"count": [5, 6]}]


@POSTGRES_ONLY
def test_a_link_set_through_a_relationship_is_logged_once(engine: Engine, sessions, sent):
    """The flush sets the key column from the relationship: a value not checked before
    the flush, so those statements stay the flush's."""
    seed(sessions, Node(name="root"), Node(name="a"), Node(name="b"))
    with sessions() as s:
        root, a, b = (s.query(Node).filter_by(name=name).one() for name in ("root", "a", "b"))
        a.parent = root
        b.parent = root
        s.commit()
    assert not merged_updates(sent, Node.__table__)
    logged = [r for r in updates(engine) if r.entity_type == Kind.NODE]
    assert len(logged) == 2
    assert all(r.difference == {"parent_id": [None, str(root.id)]} for r in logged)


@POSTGRES_ONLY
def test_text_keys_with_names_that_need_quoting_are_merged(engine: Engine, sessions, sent):
    codes = ["a", "b'%s", 'c"%(x)s', "d\\"]
    seed(sessions, *(Coded(code=code, label="old") for code in codes))
    with sessions() as s:
        for coded in s.query(Coded).all():
            coded.label = f"new {coded.code}"
        s.commit()
    assert len(merged_updates(sent, Coded.__table__)) == 1 and client_log_writes(sent) == 0
    logged = updates(engine)
    assert sorted(r.entity_key for r in logged) == sorted(codes)
    assert all(r.current["label"] == f"new {r.entity_key}" for r in logged)


@POSTGRES_ONLY
def test_a_changed_key_leaves_the_updates_to_the_flush(engine: Engine, sessions, sent):
    seed(sessions, Coded(code="a"), Coded(code="b"))
    with sessions() as s:
        for coded in s.query(Coded).all():
            coded.code = coded.code.upper()
        s.commit()
    assert not merged_updates(sent, Coded.__table__)
    assert sorted(r.entity_key for r in updates(engine)) == ["A", "B"]


@POSTGRES_ONLY
@pytest.mark.parametrize("model", [Letter, Counted], ids=["stored-otherwise", "version-counter"])
def test_classes_the_trigger_cannot_log_as_the_flush_keep_their_updates(
    engine: Engine, sessions, sent, model: Any
):
    seed(sessions, model(id=1, **_required(model)), model(id=2, **_required(model)))
    with sessions() as s:
        for obj in s.query(model).all():
            setattr(obj, *_change(model))
        s.commit()
    assert not merged_updates(sent, model.__table__)
    assert sorted(r.number_identifier for r in updates(engine)) == [1, 2]


def _required(model: Any) -> dict[str, Any]:
    return {"body": "hello"} if model is Letter else {}


def _change(model: Any) -> tuple[str, Any]:
    return ("body", "world") if model is Letter else ("label", "changed")


@POSTGRES_ONLY
def test_a_rolled_back_savepoint_takes_the_merged_updates_with_it(engine: Engine, sessions, sent):
    seed(sessions, *(Sample(id=n, count=0) for n in range(1, 5)))
    with sessions() as s:
        samples = s.query(Sample).order_by(Sample.id).all()
        with s.begin_nested() as savepoint:
            samples[0].count = samples[1].count = 1
            s.flush()
            savepoint.rollback()
        samples[2].count = samples[3].count = 2
        s.commit()
    assert len(merged_updates(sent)) == 2
    assert [r.number_identifier for r in updates(engine)] == [3, 4]


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("field", "value", "merged"),
    [
        ("note", "not logged", True),
        # unnest would flatten its arrays: the statement stays the flush's.
        ("tags", ["one", "two"], False),
    ],
)
def test_a_column_the_log_leaves_out_is_stored_as_given(
    engine: Engine, sessions, sent, field: str, value: Any, merged: bool
):
    seed(sessions, Tagged(id=1, label="a"), Tagged(id=2, label="b"))
    with sessions() as s:
        for tagged in s.query(Tagged).all():
            tagged.label = f"{tagged.label}!"
            setattr(tagged, field, value)
        s.commit()
    assert len(merged_updates(sent, Tagged.__table__)) == int(merged)
    assert [r.difference for r in updates(engine)] == [
        {"label": ["a", "a!"]},
        {"label": ["b", "b!"]},
    ]
    with sessions() as s:
        assert [getattr(t, field) for t in s.query(Tagged).order_by(Tagged.id)] == [value] * 2


@POSTGRES_ONLY
def test_values_of_two_types_in_one_column_are_sent_as_they_are(engine: Engine, sessions, sent):
    """A driver sends an array of one type: an int and a Decimal stay the flush's."""
    seed(sessions, Tagged(id=1), Tagged(id=2))
    with sessions() as s:
        one, two = s.query(Tagged).order_by(Tagged.id).all()
        one.amount = 5
        two.amount = decimal.Decimal("2.50")
        s.commit()
    assert not merged_updates(sent, Tagged.__table__)
    assert [r.difference for r in updates(engine)] == [
        {"amount": [None, "5.00"]},
        {"amount": [None, "2.50"]},
    ]


@POSTGRES_ONLY
def test_values_set_to_null_together_are_merged(engine: Engine, sessions, sent):
    seed(sessions, Tagged(id=1, label="a", amount=1), Tagged(id=2, label="b", amount=2))
    with sessions() as s:
        for tagged in s.query(Tagged).all():
            tagged.label = None
            tagged.amount = None
        s.commit()
    assert len(merged_updates(sent, Tagged.__table__)) == 1
    assert [r.difference for r in updates(engine)] == [
        {"label": ["a", None], "amount": ["1.00", None]},
        {"label": ["b", None], "amount": ["2.00", None]},
    ]


@POSTGRES_ONLY
def test_a_value_the_database_rewrites_leaves_the_updates_to_the_flush(
    engine: Engine, sessions, sent
):
    """As for one record: the flush's row holds what it assigned, the row trigger's what
    was stored."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER shout BEFORE UPDATE ON tagged FOR EACH ROW EXECUTE FUNCTION shout()"
            )
        )
    seed(sessions, Tagged(id=1, label="a"), Tagged(id=2, label="b"))
    with sessions() as s:
        for tagged in s.query(Tagged).all():
            tagged.label = f"new {tagged.label}"
        s.commit()
    assert not merged_updates(sent, Tagged.__table__)
    logged = [(r.number_identifier, r.current["label"], r.context) for r in updates(engine)]
    assert logged == [
        (1, "new a", None),
        (1, "NEW A", {"captured_by": "database trigger"}),
        (2, "new b", None),
        (2, "NEW B", {"captured_by": "database trigger"}),
    ]


@POSTGRES_ONLY
def test_concurrent_merged_updates_leave_an_unbroken_history(engine: Engine, sessions):
    """Writers that each update the same records from their own, soon stale, copies:
    every committed update is logged once, each row's record before is the one the row
    before it left, and the last row's after is what is stored."""
    threads, per_thread = 4, 6
    seed(sessions, *(Sample(id=n, label="seed", count=0) for n in range(1, 5)))
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            with auditkeeper.acting_as(worker):
                for round_ in range(per_thread):
                    with sessions() as s:
                        for sample in s.query(Sample).order_by(Sample.id).all():
                            sample.label = f"worker {worker}, round {round_}"
                            sample.count = (sample.count or 0) + 1  # from a copy soon stale
                        s.commit()
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    with sessions() as s:
        stored = {sample.id: (sample.label, sample.count) for sample in s.query(Sample)}
    by_record: dict[int, list[Any]] = {}
    for row in updates(engine):
        by_record.setdefault(row.number_identifier, []).append(row)
    for number, history in by_record.items():
        history.sort(key=lambda row: row.id)
        assert len(history) == threads * per_thread
        assert history[0].previous["label"] == "seed"
        for before, after in itertools.pairwise(history):
            assert after.previous == before.current, number
        last = history[-1].current
        assert (last["label"], last["count"]) == stored[number]
    assert sorted(by_record) == [1, 2, 3, 4]


@POSTGRES_ONLY
def test_an_async_session_merges_its_updates_and_deletions(engine: Engine, database, sessions):
    """psycopg 3's async driver: the same statements, the same rows."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    seed(sessions, *(Sample(id=n, label="old") for n in range(1, 5)))
    sent: list[str] = []

    async def main() -> None:
        async_engine = create_async_engine(database.async_url(), connect_args=database.connect_args)
        engine_events.listen(
            async_engine.sync_engine,
            "after_cursor_execute",
            lambda conn, cursor, statement, *rest: sent.append(statement),
        )
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = keeper.install(factory)
        try:
            with auditkeeper.acting_as(3):
                async with factory() as session:
                    samples = (await session.scalars(select(Sample).order_by(Sample.id))).all()
                    for sample in samples:
                        sample.label = f"new {sample.id}"
                    await session.commit()
                    for sample in samples[:2]:
                        await session.delete(sample)
                    await session.commit()
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(main())
    assert len(merged_updates(sent)) == 1 and len(set_based(sent)) == 1
    assert client_log_writes(sent) == 0
    assert [(r.number_identifier, r.difference) for r in updates(engine)] == [
        (n, {"label": ["old", f"new {n}"]}) for n in range(1, 5)
    ]
    assert [(r.number_identifier, r.user_id, r.context) for r in deletions(engine)] == [
        (1, 3, None),
        (2, 3, None),
    ]
