"""Read-only for real: every path that could change or remove a log row is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import auditkeeper
from auditkeeper.demo.crm import Crm
from tests._support import POSTGRES_ONLY, entries

REFUSED = "refused: audit logs are append-only"


@pytest.fixture
def logged(crm: Crm, engine: Engine, audited_sessions, users) -> list:
    """Two log rows, written by Alice impersonated by Bob."""
    alice, bob, _ = users
    with (
        auditkeeper.acting_as(
            alice.id,
            email=alice.email,
            impersonator_user_id=bob.id,
            impersonator_email=bob.email,
        ),
        audited_sessions() as session,
    ):
        business = crm.Business(name="Acme")
        session.add(business)
        session.commit()
        business.name = "Acme 2"
        session.commit()
    return entries(crm, engine)


def snapshot(crm: Crm, engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(crm.keeper.table.select().order_by("id"))]


def test_orm_entry_refuses_attribute_changes(crm: Crm, engine: Engine, logged) -> None:
    with Session(engine) as session:
        entry = session.get(crm.keeper.Entry, logged[0].id)
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            entry.reason = "edited"
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            del entry.reason


def test_orm_delete_and_insert_are_refused(crm: Crm, engine: Engine, logged) -> None:
    before = snapshot(crm, engine)
    with Session(engine) as session:
        session.delete(session.get(crm.keeper.Entry, logged[0].id))
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            session.flush()
        session.rollback()
    with Session(engine) as session:
        forged = crm.keeper.Entry()
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            forged.action = 1
        session.add(forged)
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            session.flush()
        session.rollback()
    assert snapshot(crm, engine) == before


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_orm_bulk_statements_are_refused(crm: Crm, engine: Engine, audited_sessions, logged, verb):
    before = snapshot(crm, engine)
    entry = crm.keeper.Entry
    statement = update(entry).values(reason="x") if verb == "update" else delete(entry)
    with audited_sessions() as session:
        with pytest.raises(auditkeeper.ReadOnlyLogError):
            session.execute(statement)
        session.rollback()
    # Without auditkeeper's session hook, the database itself refuses.
    with Session(engine) as session:
        with pytest.raises(DBAPIError, match=REFUSED):
            session.execute(statement.execution_options(synchronize_session=False))
        session.rollback()
    assert snapshot(crm, engine) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET reason = 'forged'",
        "UPDATE audit_log SET reason = reason",
        "UPDATE audit_log SET changed_objects = changed_objects",
        "UPDATE audit_log SET user_id = NULL",
        "UPDATE audit_log SET impersonator_user_id = NULL",
        "UPDATE audit_log SET user_id = impersonator_user_id",
        "UPDATE audit_log SET created_at = created_at, user_id = NULL",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
        "UPDATE audit_log_catalogue SET name = 'X'",
        "DELETE FROM audit_log_catalogue",
    ],
)
def test_raw_sql_is_refused(crm: Crm, engine: Engine, database, logged, sql: str) -> None:
    before = snapshot(crm, engine)
    other_client = database.engine()  # a second connection pool, as another process would be
    for client in (engine, other_client):
        with client.connect() as connection:
            with pytest.raises(DBAPIError, match=REFUSED):
                connection.execute(text(sql))
            connection.rollback()
    assert snapshot(crm, engine) == before


@POSTGRES_ONLY
def test_truncate_is_refused_on_postgresql(crm: Crm, engine: Engine, logged) -> None:
    before = snapshot(crm, engine)
    for sql in ("TRUNCATE audit_log", "TRUNCATE audit_log_catalogue", "TRUNCATE users CASCADE"):
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match=REFUSED):
                connection.execute(text(sql))
            connection.rollback()
    assert snapshot(crm, engine) == before


def test_core_statements_are_refused(crm: Crm, engine: Engine, logged) -> None:
    table = crm.keeper.table
    before = snapshot(crm, engine)
    for statement in (table.update().values(user_email="x@example.com"), table.delete()):
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match=REFUSED):
                connection.execute(statement)
            connection.rollback()
    assert snapshot(crm, engine) == before


def test_deleting_users_keeps_logs_and_their_emails(crm: Crm, engine: Engine, logged, users):
    alice, bob, _ = users
    with Session(engine) as session:
        session.execute(delete(crm.User).where(crm.User.id == bob.id))
        session.commit()
    rows = entries(crm, engine)
    assert len(rows) == 2
    for row in rows:
        assert row.user_id == alice.id and row.user_email == alice.email
        assert row.impersonator_user_id is None
        assert row.impersonator_email == bob.email and row.is_impersonated
    with Session(engine) as session:
        session.execute(delete(crm.User).where(crm.User.id == alice.id))
        session.commit()
    rows = entries(crm, engine)
    assert [(r.user_id, r.user_email) for r in rows] == [(None, alice.email)] * 2
    assert [r.changed_objects for r in rows] == [r.changed_objects for r in logged]
    assert [r.created_at for r in rows] == [r.created_at for r in logged]


def test_trigger_sql_is_available_for_migrations(crm: Crm) -> None:
    for dialect in ("sqlite", "postgresql"):
        statements = crm.keeper.trigger_sql(dialect)
        assert any("audit_log" in s and "TRIGGER" in s for s in statements)
    with pytest.raises(auditkeeper.ConfigurationError, match="mysql"):
        crm.keeper.trigger_sql("mysql")


def test_create_all_is_idempotent_and_keeps_rows(crm: Crm, engine: Engine, logged) -> None:
    before = snapshot(crm, engine)
    crm.keeper.create_all(engine)
    crm.keeper.create_all(engine)
    assert snapshot(crm, engine) == before
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match=REFUSED):
            connection.execute(text("DELETE FROM audit_log"))
        connection.rollback()
