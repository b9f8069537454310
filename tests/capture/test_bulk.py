"""Bulk ORM statements are audited like the unit of work: every row, one write."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, delete, event, func, insert, select, text, update
from sqlalchemy.orm import Session

import auditkeeper
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import AuditLogEntityTypes as T
from auditkeeper.demo.crm import Crm
from tests._support import POSTGRES_ONLY, StatementCounter, drop_capture_triggers, entries

N = 1000


SETUP = "test set-up"


@pytest.fixture
def many(crm: Crm, engine: Engine, audited_sessions) -> list[int]:
    """N leads, whose creation rows ``logged`` leaves out."""
    with auditkeeper.acting_as_system(reason=SETUP), audited_sessions() as session:
        session.add_all([crm.Lead(name=f"lead {i}", score=i % 10) for i in range(N)])
        session.commit()
        return list(session.scalars(select(crm.Lead.id).order_by(crm.Lead.id)))


def logged(crm: Crm, engine: Engine) -> list:
    """The rows the test itself caused."""
    return [r for r in entries(crm, engine) if r.reason != SETUP]


def test_bulk_update_logs_every_row(crm: Crm, engine: Engine, audited_sessions, many, users):
    alice = users[0]
    with (
        StatementCounter(engine, "audit_log") as counter,
        auditkeeper.acting_as(alice.id, email=alice.email),
        audited_sessions() as session,
    ):
        result = session.execute(
            update(crm.Lead).where(crm.Lead.score >= 0).values(score=crm.Lead.score + 1)
        )
        assert result.rowcount == N
        session.commit()
    rows = logged(crm, engine)
    assert len(rows) == N
    assert counter.statements == []  # the capture triggers write the rows, on both dialects
    assert {r.action for r in rows} == {A.LEAD_UPDATE}
    assert {r.user_id for r in rows} == {alice.id}
    assert len({r.transaction_id for r in rows}) == 1
    by_id = {r.number_identifier: r for r in rows}
    for index, lead_id in enumerate(many):
        assert by_id[lead_id].difference == {"score": [index % 10, index % 10 + 1]}
        assert by_id[lead_id].previous["name"] == f"lead {index}"


def test_bulk_update_skips_unchanged_rows(crm: Crm, engine: Engine, audited_sessions, many):
    with audited_sessions() as session:
        session.execute(update(crm.Lead).where(crm.Lead.score < 5).values(score=0))
        session.commit()
    rows = logged(crm, engine)
    assert len(rows) == N // 10 * 4  # scores 1-4 changed; score 0 stayed 0


def test_bulk_update_picks_domain_actions(crm: Crm, engine: Engine, audited_sessions, many):
    with audited_sessions() as session:
        business = crm.Business(name="Acme")
        session.add(business)
        session.flush()
        session.execute(update(crm.Lead).where(crm.Lead.score == 3).values(business_id=business.id))
        session.commit()
    rows = [r for r in logged(crm, engine) if r.entity_type == T.LEAD]
    assert len(rows) == N // 10
    assert {r.action for r in rows} == {A.LEAD_ASSIGN_TO_BUSINESS}


def test_bulk_delete_logs_every_row(crm: Crm, engine: Engine, audited_sessions, many):
    with StatementCounter(engine, "audit_log") as counter, audited_sessions() as session:
        session.execute(delete(crm.Lead))
        session.commit()
    rows = logged(crm, engine)
    assert len(rows) == N and counter.statements == []
    assert {r.action for r in rows} == {A.LEAD_DELETE}
    assert all(r.current is None and r.previous["name"].startswith("lead") for r in rows)
    assert sorted(r.number_identifier for r in rows) == many


def test_update_by_primary_key_executemany(crm: Crm, engine: Engine, audited_sessions, many):
    with audited_sessions() as session:
        session.execute(
            update(crm.Lead), [{"id": many[0], "name": "first"}, {"id": many[1], "name": "second"}]
        )
        session.commit()
    rows = logged(crm, engine)
    assert [(r.number_identifier, r.difference) for r in rows] == [
        (many[0], {"name": ["lead 0", "first"]}),
        (many[1], {"name": ["lead 1", "second"]}),
    ]


def test_core_statement_through_the_session(crm: Crm, engine: Engine, audited_sessions, many):
    table = crm.Lead.__table__
    with audited_sessions() as session:
        session.execute(table.update().where(table.c.id == many[0]).values(name="core"))
        session.commit()
    (row,) = logged(crm, engine)
    assert row.difference == {"name": ["lead 0", "core"]}


def test_rolled_back_bulk_statement_leaves_nothing(
    crm: Crm, engine: Engine, audited_sessions, many
):
    with audited_sessions() as session:
        session.execute(delete(crm.Lead))
        session.rollback()
    assert logged(crm, engine) == []
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(crm.Lead)) == N


def test_bulk_statement_matching_no_rows_logs_nothing(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        session.execute(update(crm.Comment).values(body="y"))
        session.execute(delete(crm.Business).where(crm.Business.name == "nobody"))
        session.commit()
    assert logged(crm, engine) == []


def test_bulk_insert_logs_every_row(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    with (
        StatementCounter(engine, "audit_log") as counter,
        auditkeeper.acting_as(alice.id, email=alice.email),
        audited_sessions() as session,
    ):
        session.execute(insert(crm.Lead), [{"name": f"n{i}", "score": i} for i in range(N)])
        session.execute(insert(crm.Lead).values(name="single"))
        ids = session.scalars(insert(crm.Lead).returning(crm.Lead.id), [{"name": "r"}]).all()
        session.commit()
    rows = logged(crm, engine)
    assert len(rows) == N + 2
    assert counter.statements == []  # the capture triggers write the rows, on both dialects
    marks = {(r.context or {}).get("captured_by") for r in rows}
    postgresql = engine.dialect.name == "postgresql"
    assert marks == {"database statement trigger" if postgresql else "database trigger"}
    assert {r.action for r in rows} == {A.LEAD_CREATE}
    assert rows[0].current["name"] == "n0" and rows[0].current["status"] == "new"
    assert rows[0].difference["score"] == [None, 0]
    assert rows[-1].number_identifier == ids[0]
    assert len(ids) == 1


def test_bulk_insert_of_a_class_not_audited_on_create(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        lead = crm.Lead(name="x")
        session.add(lead)
        session.flush()
        session.execute(insert(crm.Comment), [{"lead_id": lead.id, "body": "hi"}])
        session.commit()
    assert [r.action for r in logged(crm, engine)] == [A.LEAD_CREATE]


def test_upsert_is_refused_without_capture_triggers(
    crm: Crm, engine: Engine, audited_sessions, database
):
    from sqlalchemy.dialects import postgresql, sqlite

    with engine.begin() as connection:  # as in a database set up by an older version
        if database.dialect == "postgresql":
            connection.exec_driver_sql("DROP TRIGGER leads_audit_capture ON leads")
        else:
            connection.exec_driver_sql("DROP TRIGGER leads_audit_capture_insert")
    dialect_insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(crm.Lead).values(id=1, name="a")
    statement = statement.on_conflict_do_update(index_elements=["id"], set_={"name": "b"})
    with audited_sessions() as session:
        with pytest.raises(auditkeeper.CaptureError, match="ON CONFLICT"):
            session.execute(statement)
        session.rollback()


def test_bulk_statements_read_no_row_into_python(crm: Crm, engine: Engine, audited_sessions, many):
    """The capture triggers log the rows where they change, so a bulk statement's memory
    does not grow with the rows it touches: nothing selects them into the session."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with audited_sessions() as session:
            session.execute(update(crm.Lead).where(crm.Lead.score >= 5).values(score=0))
            session.execute(delete(crm.Lead).where(crm.Lead.score == 1))
            session.execute(insert(crm.Lead), [{"name": f"new {i}"} for i in range(10)])
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    table = crm.Lead.__tablename__
    assert [s for s in sent if table in s and "SELECT" in s.upper()] == []
    # An INSERT returns no audited column (PostgreSQL's returns the keys only, so that
    # SQLAlchemy sends many rows per statement).
    returned = [s.upper().split("RETURNING", 1)[1] for s in sent if "RETURNING" in s.upper()]
    assert [r for r in returned if "NAME" in r] == []
    rows = logged(crm, engine)
    assert len([r for r in rows if r.action == A.LEAD_UPDATE]) == N // 2
    assert len([r for r in rows if r.action == A.LEAD_DELETE]) == N // 10
    assert len([r for r in rows if r.action == A.LEAD_CREATE]) == 10


@POSTGRES_ONLY
def test_a_bulk_statement_logged_from_python_waits_for_a_concurrent_writer(
    crm: Crm, engine: Engine, audited_sessions
):
    """Without capture triggers the bulk path reads the rows, runs the statement and logs
    from Python: it reads them FOR UPDATE, so a change another transaction has not yet
    committed is waited for, and the row's old values are the ones the statement
    changed, not the ones before that change."""
    drop_capture_triggers(engine, "leads")
    with audited_sessions() as session:
        lead = crm.Lead(name="contested", score=1)
        session.add(lead)
        session.commit()
        lead_id = lead.id
    other = engine.connect()
    other_transaction = other.begin()
    other.execute(update(crm.Lead).where(crm.Lead.id == lead_id).values(score=5))
    failures: list[BaseException] = []

    def bulk() -> None:
        try:
            with auditkeeper.acting_as_system(reason="bulk"), audited_sessions() as session:
                statement = update(crm.Lead).where(crm.Lead.id == lead_id)
                session.execute(statement.values(score=crm.Lead.score + 1))
                session.commit()
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    worker = threading.Thread(target=bulk)
    worker.start()
    try:
        with engine.connect() as watcher:  # the bulk path's read waits for the row lock
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            deadline = time.monotonic() + 10
            while not watcher.execute(waiting).scalar() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert watcher.execute(waiting).scalar() == 1, failures
    finally:
        other_transaction.commit()
        other.close()
        worker.join()
    assert failures == []
    (row,) = [r for r in logged(crm, engine) if r.reason == "bulk"]
    assert row.difference == {"score": [5, 6]}
    assert row.current["score"] == 6
