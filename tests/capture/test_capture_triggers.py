"""Changes that bypass the flush are logged by the database's capture triggers."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import AuditLogEntityTypes as T
from auditkeeper.demo.crm import Crm, build_crm
from tests._support import POSTGRES_ONLY, entries


def test_raw_insert_update_delete_are_logged(crm: Crm, engine: Engine):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (7, 'Raw Co', true)")
        )
    with engine.begin() as connection:
        connection.execute(text("UPDATE businesses SET name = 'Raw Ltd' WHERE id = 7"))
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM businesses WHERE id = 7"))
    rows = entries(crm, engine)
    assert [r.action for r in rows] == [A.BUSINESS_CREATE, A.BUSINESS_UPDATE, A.BUSINESS_DELETE]
    assert {r.entity_type for r in rows} == {T.BUSINESS}
    assert {r.number_identifier for r in rows} == {7}
    created, updated, deleted = rows
    assert created.previous is None
    assert created.current["name"] == "Raw Co"
    assert created.difference["name"] == [None, "Raw Co"]
    assert updated.difference == {"name": ["Raw Co", "Raw Ltd"]}
    assert deleted.current is None
    assert deleted.previous["name"] == "Raw Ltd"
    assert all(r.user_id is None for r in rows)
    assert all(r.context == {"captured_by": "database trigger"} for r in rows)


def test_orm_changes_are_not_logged_twice(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    with auditkeeper.acting_as(alice.id, email=alice.email), audited_sessions() as session:
        business = crm.Business(name="Acme")
        session.add(business)
        session.flush()
        business.name = "Acme Ltd"
        session.commit()
        session.delete(business)
        session.commit()
    rows = [r for r in entries(crm, engine) if r.entity_type == T.BUSINESS]
    assert [r.action for r in rows] == [
        A.BUSINESS_CREATE,
        A.BUSINESS_UPDATE,
        A.BUSINESS_DELETE,
    ]
    assert all(r.context is None for r in rows)


def test_raw_sql_in_a_session_carries_the_actor(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    with (
        auditkeeper.acting_as(alice.id, email=alice.email, reason="ticket 12"),
        audited_sessions() as session,
    ):
        session.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (8, 'Side door', true)")
        )
        session.commit()
    (row,) = [r for r in entries(crm, engine) if r.entity_type == T.BUSINESS]
    assert row.user_id == alice.id
    assert row.user_email == alice.email
    assert row.reason == "ticket 12"
    assert row.context == {"captured_by": "database trigger"}


def test_raw_change_after_an_orm_change_in_one_transaction_is_kept(
    crm: Crm, engine: Engine, audited_sessions
):
    with audited_sessions() as session:
        business = crm.Business(name="Acme")
        session.add(business)
        session.flush()
        session.execute(
            text("UPDATE businesses SET name = 'Changed behind the ORM' WHERE id = :id"),
            {"id": business.id},
        )
        session.commit()
    rows = [r for r in entries(crm, engine) if r.entity_type == T.BUSINESS]
    assert [r.action for r in rows] == [A.BUSINESS_CREATE, A.BUSINESS_UPDATE]
    assert rows[1].difference == {"name": ["Acme", "Changed behind the ORM"]}
    assert rows[0].transaction_id == rows[1].transaction_id


def test_a_rolled_back_raw_change_logs_nothing(crm: Crm, engine: Engine):
    with engine.connect() as connection:
        connection.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (9, 'Gone', true)")
        )
        connection.rollback()
    assert entries(crm, engine) == []


@POSTGRES_ONLY
def test_truncate_of_an_audited_table_is_refused(crm: Crm, engine: Engine):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (10, 'Kept', true)")
        )
    refused = pytest.raises(Exception, match="TRUNCATE of audited table businesses is refused")
    with refused, engine.begin() as connection:
        connection.execute(text("TRUNCATE businesses CASCADE"))
    with Session(engine) as session:
        assert session.scalar(select(crm.Business.name).where(crm.Business.id == 10)) == "Kept"


@POSTGRES_ONLY
def test_installing_drops_the_write_function_earlier_versions_called(crm: Crm, engine: Engine):
    signature = "audit_log_capture_write(integer, integer, bigint, text, jsonb, jsonb, jsonb)"
    with engine.begin() as connection:
        connection.execute(
            text(f"CREATE FUNCTION {signature} RETURNS void LANGUAGE sql AS $$ SELECT $$")
        )
    crm.keeper.create_all(engine)
    with engine.connect() as connection:
        found = connection.execute(text(f"SELECT to_regprocedure('{signature}')"))
        assert found.scalar_one() is None
    with engine.begin() as connection:  # and raw SQL is still logged
        connection.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (8, 'B', true)")
        )
    assert [(r.action, r.number_identifier) for r in entries(crm, engine)] == [
        (A.BUSINESS_CREATE, 8)
    ]


@POSTGRES_ONLY
def test_installing_rebuilds_the_transaction_index_of_an_earlier_version(crm: Crm, engine: Engine):
    """Earlier versions indexed the key columns, which let the planner serve the
    triggers' lookup with the record's own index (its whole history at each change)."""
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_audit_log_transaction"))
        connection.execute(
            text(
                "CREATE INDEX ix_audit_log_transaction ON audit_log "
                "(transaction_id, entity_type, number_identifier, entity_key)"
            )
        )
    crm.keeper.create_all(engine)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT pg_get_indexdef(to_regclass('ix_audit_log_transaction'))")
        )
        definition = found.scalar_one()
    assert "COALESCE" in definition and "number_identifier, entity_key)" not in definition
    with engine.begin() as connection:  # and raw SQL is still logged
        connection.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (8, 'B', true)")
        )
    assert [(r.action, r.number_identifier) for r in entries(crm, engine)] == [
        (A.BUSINESS_CREATE, 8)
    ]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_sqlite_file_of_an_earlier_version_keeps_capturing(engine: Engine):
    """Earlier versions kept the flush mark in a ``flushing`` column of the state table;
    ``create_all`` keeps that table as it is and replaces the triggers."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE auditkeeper_capture_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
                "flushing INTEGER NOT NULL DEFAULT 0, actor TEXT)"
            )
        )
    crm = build_crm()
    crm.Base.metadata.create_all(engine)
    crm.keeper.create_all(engine)
    factory = sessionmaker(engine)
    installation = crm.keeper.install(factory)
    try:
        with auditkeeper.acting_as_system(), factory() as session:
            session.add(crm.Business(id=5, name="Flushed", is_active=True))
            session.commit()
        with engine.begin() as connection:
            connection.execute(text("UPDATE businesses SET name = 'Raw' WHERE id = 5"))
    finally:
        installation.uninstall()
    rows = entries(crm, engine)
    assert [(r.action, bool(r.context)) for r in rows] == [
        (A.BUSINESS_CREATE, False),  # the flush's row, once
        (A.BUSINESS_UPDATE, True),  # the trigger's, marked
    ]


def test_trigger_documents_read_like_the_flush_documents(
    crm: Crm, engine: Engine, audited_sessions
):
    import datetime as dt
    import decimal

    when = dt.datetime(2026, 5, 1, 12, 30, 15, 250000)  # a naive column
    with audited_sessions() as session:
        session.add(
            crm.Business(
                id=1,
                name="Acme <b>",
                website=None,
                annual_revenue=decimal.Decimal("1200.50"),
                is_active=False,
                founded_on=dt.date(1999, 12, 31),
                settings={"tier": "gold", "limits": [1, 2.5, None]},
                api_token="secret",
                internal_rank=3,
                created_at=when,
            )
        )
        session.commit()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO businesses (id, name, website, annual_revenue, is_active, founded_on,"
                " settings, api_token, internal_rank, created_at) SELECT 2, name, website,"
                " annual_revenue, is_active, founded_on, settings, api_token, internal_rank,"
                " created_at FROM businesses WHERE id = 1"
            )
        )
    by_flush, by_trigger = entries(crm, engine)
    assert by_trigger.action == by_flush.action
    assert {**by_trigger.current, "id": 1} == by_flush.current
    assert {k: v for k, v in by_trigger.difference.items() if k != "id"} == {
        k: v for k, v in by_flush.difference.items() if k != "id"
    }
    assert by_trigger.current["api_token"] == "[redacted]"
    assert "internal_rank" not in by_trigger.current
