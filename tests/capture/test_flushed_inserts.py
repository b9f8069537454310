"""On PostgreSQL, a flush's new rows of one table whose values read alike in SQL are
logged by the table's statement trigger, inside the flush's own INSERT: the same rows
the flush would write, and every other case is left to the flush."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, BigInteger, DateTime, Engine, Numeric, event, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import auditkeeper
from auditkeeper.capture.document import build_row
from auditkeeper.capture.triggers import announcement
from auditkeeper.capture.triggers.common import FLUSH_ROWS
from auditkeeper.model.sql_values import reads_alike
from tests._support import POSTGRES_ONLY, log_rows, model_fixtures, sent_statements


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2


class Kind(enum.IntEnum):
    SAMPLE = 1
    NOTE = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


class SampleColumns:
    """A column of each kind whose values the statement trigger may log as the flush
    would (test_merged.py's samples have them too)."""

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


@auditkeeper.audited(entity_type=Kind.SAMPLE, create=Action.CREATE, update=Action.UPDATE)
class Sample(SampleColumns, Base):
    __tablename__ = "samples"
    status: Mapped[str] = mapped_column(default="new")


@auditkeeper.audited(entity_type=Kind.NOTE, create=Action.CREATE, update=Action.UPDATE)
class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def sent(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def set_based(sent: list[str], table: Any = Sample.__table__) -> bool:
    """Whether the flush's INSERT carried the statement trigger's announcement."""
    start = f"{announcement(table, postgresql.dialect())} {FLUSH_ROWS}"
    return any(s.startswith(start) for s in sent)


def client_log_writes(sent: list[str]) -> int:
    return sum(1 for s in sent if s.startswith("INSERT INTO audit_log"))


def rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


UTC = dt.UTC
ALIKE = [
    {"label": "plain", "count": 2**62, "flag": True, "amount": decimal.Decimal("12.50")},
    {"label": "ünïcödé \U0001f600 'quotes' \"double\" */", "count": -1, "flag": False},
    {"key": uuid.UUID("12345678-1234-5678-1234-567812345678"), "day": dt.date(1999, 12, 31)},
    {"moment": dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)},
    {"moment": dt.datetime(2024, 1, 1, tzinfo=UTC), "naive": dt.datetime(2024, 1, 1, 8, 30)},
    {"amount": decimal.Decimal("-0.01"), "free": decimal.Decimal("1234567890.000123")},
    {"free": decimal.Decimal("7"), "doc": {"a": [1, 2.5, None, True], "b": {"c": "d"}}},
    {"doc": ["x", -3, 0.1], "password": "hunter2"},
    {"doc": "just text", "status": "kept"},
    {},
]


@POSTGRES_ONLY
@pytest.mark.parametrize("values", ALIKE, ids=range(len(ALIKE)))
def test_the_statement_trigger_writes_the_row_the_flush_would(
    engine: Engine, sessions, sent: list[str], values: dict[str, Any]
):
    context = {"request_id": "r-1"}
    with auditkeeper.acting_as(5, email="ann@example.com", context=context), sessions() as s:
        sample = Sample(id=1, **values)
        s.add(sample)
        s.commit()
    assert set_based(sent) and client_log_writes(sent) == 0
    (row,) = rows(engine)
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    expected = build_row(
        plan, "create", {}, {"status": "new", **values, "id": 1}, (1,), dialect=engine.dialect.name
    )
    assert expected is not None
    assert row.changed_objects == expected["changed_objects"]
    assert (row.action, row.entity_type, row.number_identifier) == (Action.CREATE, Kind.SAMPLE, 1)
    assert (row.user_id, row.user_email, row.context) == (5, "ann@example.com", context)


@POSTGRES_ONLY
def test_the_flush_rows_share_its_time_transaction_and_order(engine: Engine, sessions, sent):
    with sessions() as s:
        s.add(Note(id=1, body="first"))
        s.commit()
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        s.get(Note, 1).body = "changed"  # logged by the flush
        s.add_all([Note(id=3, body="c"), Note(id=2, body="b")])  # by the statement trigger
        s.commit()
    assert set_based(sent, Note.__table__) and client_log_writes(sent) == 1
    logged = rows(engine)[1:]
    assert [(r.number_identifier, r.action) for r in logged] == [
        (3, Action.CREATE),
        (2, Action.CREATE),
        (1, Action.UPDATE),
    ]
    assert len({(r.created_at, r.transaction_id) for r in logged}) == 1
    assert all(r.context is None and r.user_id == 5 for r in logged)


# (values, field, the flush's form of it, what the database stored where the flush's
# row says something else: then the trigger logs the creation once more, as stored).
DIFFERENT = [
    # Python keeps the value's offset; the database writes the session's.
    (
        {"moment": dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
        "moment",
        "2024-01-01T09:00:00+02:00",
        None,
    ),
    # Rounded to the column's scale, a tie away from zero, as PostgreSQL rounds it.
    ({"amount": decimal.Decimal("0.125")}, "amount", "0.13", None),
    ({"free": decimal.Decimal("1E+2")}, "free", None, None),
    ({"doc": {"big": 1e16}}, "doc", None, None),  # Python writes it positional
    ({"naive": dt.datetime(2024, 1, 1, tzinfo=UTC)}, "naive", None, None),
]


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("values", "field", "form", "stored"), DIFFERENT, ids=range(len(DIFFERENT))
)
def test_a_value_the_database_might_write_otherwise_leaves_the_row_to_the_flush(
    engine: Engine, sessions, sent, values: dict[str, Any], field: str, form: Any, stored: Any
):
    with sessions() as s:
        s.add(Sample(id=1, **values))
        s.commit()
    assert not set_based(sent) and client_log_writes(sent) == 1
    row, *as_stored = rows(engine)
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    given = {"status": "new", **values, "id": 1}
    # The test cluster's sessions run in UTC: a naive value's wall time is stored there.
    expected = build_row(plan, "create", {}, given, (1,), dialect="postgresql", zone=UTC)
    assert expected is not None and row.changed_objects == expected["changed_objects"]
    if form is not None:
        assert row.current[field] == form
    assert row.context is None  # the flush's row
    if stored is None:
        assert as_stored == []  # not also the trigger's
    else:
        (again,) = as_stored
        assert again.context == {"captured_by": "database trigger"}
        assert again.current == {**row.current, field: stored}


@POSTGRES_ONLY
def test_new_rows_of_two_tables_are_left_to_the_flush(engine: Engine, sessions, sent):
    """The flush's rows keep the order the objects were added in."""
    with sessions() as s:
        s.add_all([Note(id=1, body="a"), Sample(id=1, label="b")])
        s.commit()
    assert not set_based(sent) and not set_based(sent, Note.__table__)
    assert [r.entity_type for r in rows(engine)] == [Kind.NOTE, Kind.SAMPLE]


@POSTGRES_ONLY
def test_a_session_in_another_time_zone_is_read_in_it(engine: Engine, sessions, sent):
    paris = dt.timezone(dt.timedelta(hours=1))
    with sessions() as s:
        s.execute(text("SET TIME ZONE 'Europe/Paris'"))
        s.add(Sample(id=1, moment=dt.datetime(2024, 1, 1, 9, tzinfo=paris)))
        s.flush()
        assert set_based(sent)
        sent.clear()
        s.add(Sample(id=2, moment=dt.datetime(2024, 1, 1, 9, tzinfo=UTC)))
        s.commit()
    assert not set_based(sent)
    assert [r.current["moment"] for r in rows(engine)] == [
        "2024-01-01T09:00:00+01:00",
        "2024-01-01T09:00:00+00:00",
    ]


@POSTGRES_ONLY
def test_without_its_statement_trigger_the_flush_logs_the_rows(engine: Engine, sessions, sent):
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE samples DISABLE TRIGGER samples_audit_inserts"))
    with sessions() as s:
        s.add(Sample(id=1, label="x"))
        s.commit()
    assert not set_based(sent) and client_log_writes(sent) == 1
    assert [(r.number_identifier, r.context) for r in rows(engine)] == [(1, None)]


@POSTGRES_ONLY
def test_the_triggers_are_checked_once_per_transaction(
    engine: Engine, sessions, sent, monkeypatch: pytest.MonkeyPatch
):
    """The check runs on the flush's cursor, under SQLAlchemy's events: counted in psycopg."""
    import psycopg

    checks: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if "set_config" in str(query) or "pg_trigger" in str(query):
            checks.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    checks.clear()
    with sessions() as s:
        for number in range(1, 4):
            s.add(Sample(id=number))
            s.flush()
        s.commit()
    # The check once; the flush's time with it, then once for each later flush.
    assert [("EXISTS" in c, "flushed_at" in c) for c in checks] == [
        (True, True),
        (False, True),
        (False, True),
    ]
    assert set_based(sent) and client_log_writes(sent) == 0
    assert [r.number_identifier for r in rows(engine)] == [1, 2, 3]


@POSTGRES_ONLY
def test_a_rolled_back_savepoint_takes_the_triggers_rows_with_it(engine: Engine, sessions, sent):
    with sessions() as s:
        s.add(Sample(id=1))
        s.flush()
        with s.begin_nested() as savepoint:
            s.add(Sample(id=2))
            s.flush()
            savepoint.rollback()
        s.add(Sample(id=3))
        s.commit()
    assert set_based(sent)
    assert [r.number_identifier for r in rows(engine)] == [1, 3]


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(-1e14, 1e14, allow_nan=False)
    | TEXT,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet="abcxyz", max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
VALUES = st.fixed_dictionaries(
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
        "free": st.decimals(-(10**9), 10**9, places=4, allow_nan=False, allow_infinity=False),
        "doc": JSON_VALUES,
        "password": TEXT,
    },
)


@POSTGRES_ONLY
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=VALUES)
def test_any_values_are_logged_as_the_flush_would_log_them(
    engine: Engine, sessions, values: dict[str, Any]
):
    """Whichever writes the row, it is the one the flush would write: for values that
    read alike, the statement trigger's; for any other, the flush's own."""
    writes: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO audit_log"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as s:
            number = (s.scalar(select(Sample.id).order_by(Sample.id.desc()).limit(1)) or 0) + 1
            zone = s.connection().connection.driver_connection.info.timezone
            s.add(Sample(id=number, **values))
            s.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    alike = all(
        reads_alike(column)(values[column.key], zone)  # type: ignore[misc]
        for column in Sample.__table__.columns
        if column.key in values
    )
    assert len(writes) == (0 if alike else 1)  # the trigger wrote it, or the flush
    with Session(engine) as s:
        row = s.scalars(select(keeper.Entry).where(keeper.Entry.number_identifier == number)).one()
    plan = keeper._recorder.plan_for(Sample.__mapper__)
    assert plan is not None
    expected = build_row(
        plan,
        "create",
        {},
        {"status": "new", **values, "id": number},
        (number,),
        dialect=engine.dialect.name,
    )
    assert expected is not None and row.changed_objects == expected["changed_objects"]
