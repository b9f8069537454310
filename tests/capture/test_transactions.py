"""Fail closed: a change and its log commit together or not at all."""

from __future__ import annotations

import decimal

import pytest
from sqlalchemy import Engine, delete, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import Crm
from tests._support import POSTGRES_ONLY, entries


def count(crm: Crm, engine: Engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_rollback_leaves_no_audit_rows(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        session.add(crm.Business(name="Acme"))
        session.flush()
        session.rollback()
    assert entries(crm, engine) == []
    assert count(crm, engine, crm.Business) == 0


def test_rolled_back_savepoint_leaves_no_audit_rows(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        session.add(crm.Business(name="kept"))
        savepoint = session.begin_nested()
        session.add(crm.Business(name="dropped"))
        session.flush()
        savepoint.rollback()
        with session.begin_nested():
            session.add(crm.Business(name="kept too"))
        session.commit()
    rows = entries(crm, engine)
    assert sorted(r.current["name"] for r in rows) == ["kept", "kept too"]
    assert len({r.transaction_id for r in rows}) == 1


def test_one_transaction_id_per_committed_unit_of_work(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        first = crm.Business(name="a")
        session.add(first)
        session.flush()
        session.add(crm.Business(name="b"))
        session.commit()
        first.name = "a2"
        session.commit()
    rows = entries(crm, engine)
    assert rows[0].transaction_id == rows[1].transaction_id
    assert rows[2].transaction_id != rows[0].transaction_id
    assert all(r.transaction_id is not None for r in rows)


def test_failure_of_the_business_write_keeps_no_log(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        session.add(crm.User(email="dup@example.com", full_name="A"))
        session.commit()
        session.add(crm.Business(name="in the same flush"))
        session.add(crm.User(email="dup@example.com", full_name="B"))  # unique violation
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
    assert entries(crm, engine) == []
    assert count(crm, engine, crm.Business) == 0


def test_failure_of_the_audit_write_keeps_no_change(crm: Crm, engine: Engine, audited_sessions):
    """Fail closed: if the audit insert fails, the business change is not committed."""
    with auditkeeper.acting_as_system(reason="set-up"), audited_sessions() as session:
        session.add(crm.Business(name="Acme"))
        session.commit()

    def break_audit_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO audit_log "):
            raise RuntimeError("disk full while writing the audit log")

    event.listen(engine, "before_cursor_execute", break_audit_insert)
    try:
        with audited_sessions() as session:
            session.scalars(select(crm.Business)).one().name = "Acme 2"
            # Not at the column's scale: the flush logs this creation itself.
            session.add(crm.Business(name="Beta", annual_revenue=decimal.Decimal("1.5")))
            with pytest.raises(RuntimeError, match="disk full"):
                session.commit()
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", break_audit_insert)
    with Session(engine) as session:
        assert session.scalars(select(crm.Business.name)).all() == ["Acme"]
    assert [r.reason for r in entries(crm, engine)] == ["set-up"]


@POSTGRES_ONLY
def test_failure_of_the_statement_triggers_audit_write_keeps_no_change(
    crm: Crm, engine: Engine, audited_sessions
):
    """Fail closed, where the statement trigger logs the flush's new rows: its audit
    INSERT fails inside the application's INSERT, and so does the flush."""
    with engine.begin() as connection:  # every further audit row is refused
        connection.exec_driver_sql(
            "ALTER TABLE audit_log ADD CONSTRAINT full_disk CHECK (action < 0) NOT VALID"
        )
    with audited_sessions() as session:
        session.add_all([crm.Business(name="Acme"), crm.Business(name="Beta")])
        with pytest.raises(DBAPIError, match="full_disk") as failure:
            session.commit()
        session.rollback()
    # The application's own INSERT failed: the statement trigger wrote inside it.
    assert "INSERT INTO businesses" in str(failure.value.statement)
    assert count(crm, engine, crm.Business) == 0
    assert entries(crm, engine) == []


def test_missing_audit_table_fails_with_a_clear_error(database) -> None:
    from auditkeeper.demo.crm import build_crm

    crm = build_crm()
    engine = database.engine()
    crm.Base.metadata.create_all(engine, tables=[crm.User.__table__, crm.Business.__table__])
    factory = sessionmaker(engine)
    crm.keeper.install(factory)
    with factory() as session:
        session.add(crm.Business(name="Acme"))
        with pytest.raises(Exception, match="audit_log"):
            session.commit()
        session.rollback()
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(crm.Business)) == 0


def test_failure_in_the_middle_of_a_multi_object_flush(crm: Crm, engine: Engine, audited_sessions):
    """An error raised while building rows (here a bad value) rolls everything back."""
    with audited_sessions() as session:
        session.add(crm.Business(name="ok"))
        session.add(crm.Business(name="bad", settings={"when": object()}))
        with pytest.raises(Exception):  # noqa: B017 - the driver or the encoder refuses
            session.commit()
        session.rollback()
    assert count(crm, engine, crm.Business) == 0
    assert entries(crm, engine) == []


def test_strict_mode_refuses_unattributed_changes(database) -> None:
    from sqlalchemy.orm import sessionmaker

    from auditkeeper.demo.crm import build_crm

    crm = build_crm(require_actor=True)
    engine = database.engine()
    crm.Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    crm.keeper.install(factory)
    with factory() as session:
        session.add(crm.Business(name="Acme"))
        with pytest.raises(auditkeeper.ActorError, match="acting_as"):
            session.commit()
        session.rollback()
    assert entries(crm, engine) == []
    with auditkeeper.acting_as_system(reason="import"), factory() as session:
        session.add(crm.Business(name="Acme"))
        session.commit()
    (row,) = entries(crm, engine)
    assert row.action == A.BUSINESS_CREATE and row.user_id is None and row.reason == "import"
    # Bulk statements, which the capture triggers log, are refused before they run.
    for statement in (
        insert(crm.Business).values(name="Bulk"),
        update(crm.Business).values(name="Renamed"),
        delete(crm.Business),
    ):
        with factory() as session, pytest.raises(auditkeeper.ActorError, match="acting_as"):
            session.execute(statement)
    assert len(entries(crm, engine)) == 1
    with Session(engine) as session:
        assert session.scalars(select(crm.Business.name)).all() == ["Acme"]


def test_a_rolled_back_savepoint_takes_its_bulk_statements_logs_with_it(database, crm: Crm) -> None:
    engine = database.engine()
    crm.Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    crm.keeper.install(factory)
    with auditkeeper.acting_as_system(reason="test"), factory() as session:
        session.execute(insert(crm.Business), [{"name": "kept"}, {"name": "other"}])
        with session.begin_nested() as savepoint:
            session.execute(insert(crm.Business).values(name="gone"))
            session.execute(update(crm.Business).values(name="renamed"))
            session.execute(delete(crm.Business).where(crm.Business.name == "renamed"))
            savepoint.rollback()
        session.execute(update(crm.Business).where(crm.Business.name == "other").values(name="x"))
        session.commit()
    logged = [(r.action, r.current and r.current["name"]) for r in entries(crm, engine)]
    assert sorted(logged, key=str) == sorted(
        [(A.BUSINESS_CREATE, "kept"), (A.BUSINESS_CREATE, "other"), (A.BUSINESS_UPDATE, "x")],
        key=str,
    )


def test_async_session(database, crm: Crm) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    async def scenario() -> None:
        async_engine = create_async_engine(database.async_url(), connect_args=database.connect_args)
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = crm.keeper.install(factory)
        try:
            with auditkeeper.acting_as(None, email="async@example.com"):
                async with factory() as session:
                    business = crm.Business(name="async")
                    session.add(business)
                    await session.commit()
                    business.name = "async 2"
                    await session.commit()
                async with factory() as session:
                    session.add(crm.Business(name="rolled back"))
                    await session.flush()
                    await session.rollback()
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(scenario())
    rows = entries(crm, database.engine())
    assert [r.action for r in rows] == [A.BUSINESS_CREATE, A.BUSINESS_UPDATE]
    assert all(r.user_email == "async@example.com" for r in rows)
