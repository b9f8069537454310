"""``Auditkeeper.check`` reports what is wrong with the database, changing nothing."""

from __future__ import annotations

import enum
import uuid
import warnings
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

import auditkeeper
from auditkeeper.capture.triggers.common import FLUSHED, query_starts_with
from auditkeeper.demo.crm import Crm, build_crm
from tests._support import POSTGRES_ONLY


def kinds(crm: Crm, engine: Engine) -> list[str]:
    return sorted(problem.kind for problem in crm.keeper.check(engine))


def reported_then_repaired(crm: Crm, engine: Engine, kind: str, *phrases: str) -> None:
    """``check`` reports one problem, of ``kind``, that says ``phrases``; ``create_all``
    repairs it."""
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == [kind]
    for phrase in phrases:
        assert phrase in problems[0].message
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []


def run(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def test_a_fresh_database_is_ready(crm: Crm, engine: Engine) -> None:
    assert crm.keeper.check(engine) == []


def test_missing_tables(database) -> None:
    crm = build_crm()
    engine = database.engine()
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == ["missing-table", "missing-table"]
    assert "run create_all" in str(problems[0])


def test_a_dropped_trigger_is_reported_and_create_all_repairs_it(
    crm: Crm, engine: Engine, database
):
    if database.dialect == "postgresql":
        run(engine, 'DROP TRIGGER "audit_log_append_only_row" ON audit_log')
    else:
        run(engine, "DROP TRIGGER audit_log_no_delete")
    assert kinds(crm, engine) == ["missing-trigger"]
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []


def test_an_edited_trigger_is_stale(crm: Crm, engine: Engine, database) -> None:
    if database.dialect == "postgresql":
        run(
            engine,
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        )
    else:
        run(
            engine,
            "DROP TRIGGER audit_log_no_delete",
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "WHEN 0 BEGIN SELECT RAISE(ABORT, 'no'); END",
        )
    assert "stale-trigger" in kinds(crm, engine)
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []


@POSTGRES_ONLY
def test_a_disabled_trigger_is_reported(crm: Crm, engine: Engine) -> None:
    run(engine, 'ALTER TABLE audit_log DISABLE TRIGGER "audit_log_append_only_row"')
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == ["disabled-trigger"]
    assert "ENABLE TRIGGER" in problems[0].message


def test_a_catalogue_conflict_is_reported(crm: Crm, engine: Engine) -> None:
    from sqlalchemy import MetaData

    from auditkeeper import Auditkeeper

    class Renumbered(enum.IntEnum):
        BUSINESS_CREATE = 1
        LEAD_CREATE = 2  # code 2 was BUSINESS_UPDATE

    metadata = MetaData()
    crm.User.__table__.to_metadata(metadata)
    keeper = Auditkeeper(
        metadata, actions=Renumbered, entity_types=crm.keeper.entity_types, users="users.id"
    )
    conflicts = [p for p in keeper.check(engine) if p.kind == "catalogue-conflict"]
    assert len(conflicts) == 1 and "code 2" in conflicts[0].message


@POSTGRES_ONLY
def test_procedures_and_their_registry(crm: Crm, engine: Engine) -> None:
    run(engine, "DELETE FROM audit_log_entities WHERE class_name = 'Lead'")
    assert kinds(crm, engine) == ["stale-entities"]
    run(
        engine,
        "DROP FUNCTION audit_add_single_entity_history_event(timestamptz, text, text, integer, "
        "integer, bigint, text, text, text, text, text, text)",
    )
    assert kinds(crm, engine) == ["stale-entities"]  # one overload left
    run(engine, "DROP FUNCTION audit_add_entity_history_events")
    assert kinds(crm, engine) == ["missing-procedure", "stale-entities"]
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []


@POSTGRES_ONLY
def test_a_namesake_in_another_schema_does_not_hide_a_missing_procedure(
    crm: Crm, engine: Engine
) -> None:
    """Schema-per-tenant databases: each schema needs its own procedures."""
    other = f"elsewhere_{uuid.uuid4().hex[:8]}"
    run(engine, f"CREATE SCHEMA {other}")
    try:
        for name in ("audit_add_entity_history_events", "audit_add_single_entity_history_event"):
            run(engine, f"CREATE FUNCTION {other}.{name}() RETURNS void LANGUAGE sql AS ''")
        run(engine, "DROP FUNCTION audit_add_entity_history_events")
        assert kinds(crm, engine) == ["missing-procedure"]
    finally:
        run(engine, f"DROP SCHEMA {other} CASCADE")


def test_check_changes_nothing(crm: Crm, engine: Engine) -> None:
    with engine.connect() as connection:
        before = connection.execute(text("SELECT count(*) FROM audit_log_catalogue")).scalar()
    crm.keeper.check(engine)
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM audit_log_catalogue")).scalar() == before
        )


@POSTGRES_ONLY
def test_capture_triggers_missing_disabled_or_stale_are_reported(crm: Crm, engine: Engine):
    run(engine, "DROP TRIGGER leads_audit_capture ON leads")
    reported_then_repaired(crm, engine, "missing-trigger", "leads_audit_capture on leads")
    run(engine, "DROP TRIGGER leads_audit_flushed ON leads")
    reported_then_repaired(
        crm, engine, "missing-trigger", "leads_audit_flushed on leads", "cascades of a flush"
    )
    run(engine, "ALTER TABLE businesses DISABLE TRIGGER businesses_audit_capture")
    assert kinds(crm, engine) == ["disabled-trigger"]
    crm.keeper.create_all(engine)
    run(engine, "ALTER TABLE businesses ENABLE TRIGGER businesses_audit_capture")
    assert crm.keeper.check(engine) == []


@POSTGRES_ONLY
def test_a_replaced_capture_function_is_stale(crm: Crm, engine: Engine) -> None:
    run(
        engine,
        "CREATE OR REPLACE FUNCTION leads_audit_capture() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    )
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == ["stale-trigger"] * 2  # both row triggers call it
    assert "leads_audit_capture on leads" in problems[0].message
    assert "leads_audit_flushed on leads" in problems[1].message
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []


@POSTGRES_ONLY
def test_statement_triggers_missing_disabled_or_stale_are_reported(crm: Crm, engine: Engine):
    run(engine, "DROP TRIGGER leads_audit_deletes ON leads")
    reported_then_repaired(
        crm, engine, "missing-trigger", "leads_audit_deletes on leads", "bulk DELETEs are logged"
    )
    run(engine, "ALTER TABLE leads DISABLE TRIGGER leads_audit_updates")
    assert kinds(crm, engine) == ["disabled-trigger"]
    run(engine, "ALTER TABLE leads ENABLE TRIGGER leads_audit_updates")
    run(
        engine,
        "CREATE OR REPLACE FUNCTION leads_audit_statement() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    )
    assert kinds(crm, engine) == ["stale-trigger"] * 3  # its three triggers
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []
    # A row trigger that an earlier version made looks for its announcement elsewhere:
    # a bulk statement's rows would be logged by both kinds of trigger.
    run(
        engine,
        "DROP TRIGGER leads_audit_capture ON leads",
        "CREATE CONSTRAINT TRIGGER leads_audit_capture AFTER INSERT OR UPDATE OR DELETE "
        "ON leads DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN "
        "(current_setting('auditkeeper.statement', true) IS DISTINCT FROM "
        "('leads' || statement_timestamp())) EXECUTE FUNCTION leads_audit_capture()",
    )
    reported_then_repaired(crm, engine, "stale-trigger", "leads_audit_capture on leads")


@POSTGRES_ONLY
def test_a_flushed_trigger_reading_behind_comments_unasked_is_stale(crm: Crm, engine: Engine):
    # Made for leading_comments=True, which this keeper does not ask for: correct, but
    # each flushed statement pays for the longer WHEN.
    when = query_starts_with(FLUSHED, behind_comments=True)
    run(
        engine,
        "DROP TRIGGER leads_audit_flushed ON leads",
        "CREATE CONSTRAINT TRIGGER leads_audit_flushed AFTER INSERT OR UPDATE OR DELETE "
        f"ON leads DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({when}) "
        "EXECUTE FUNCTION leads_audit_capture()",
    )
    reported_then_repaired(crm, engine, "stale-trigger", "leads_audit_flushed on leads")


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("leading", "kind"),
    [("/*dddbs='crm',dde='prod'*/ ", "leading-comments"), ("-- traced\n", "leading-text")],
)
def test_text_put_before_statements_is_reported(
    crm: Crm, engine: Engine, leading: str, kind: str
) -> None:
    def prepend(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        return leading + statement, parameters

    event.listen(engine, "before_cursor_execute", prepend, retval=True)
    try:
        problems = crm.keeper.check(engine)
    finally:
        event.remove(engine, "before_cursor_execute", prepend)
    assert [p.kind for p in problems] == [kind]
    assert leading.strip()[:10] in problems[0].message
    if kind == "leading-comments":
        assert "leading_comments=True" in problems[0].message
    assert crm.keeper.check(engine) == []


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("leading", "advice"),
    [("/*dddbs='crm',dde='prod'*/ ", "leading_comments=True"), ("-- traced\n", "block comment")],
)
def test_text_put_before_statements_is_warned_of_at_the_first_flush(
    crm: Crm, engine: Engine, audited_sessions: Any, leading: str, advice: str
) -> None:
    """An application that never runs ``check`` hears of it too, once per engine."""

    def prepend(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        return leading + statement, parameters

    event.listen(engine, "before_cursor_execute", prepend, retval=True)
    try:
        with auditkeeper.acting_as_system(reason="import"), audited_sessions() as session:
            with pytest.warns(auditkeeper.AuditkeeperWarning) as warned:
                session.add(crm.Business(name="Acme"))
                session.commit()
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # not again on this engine
                session.add(crm.Business(name="Globex"))
                session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", prepend)
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "log each flushed change a second time" in message
    assert leading.strip()[:10] in message and advice in message


@POSTGRES_ONLY
def test_a_transaction_index_of_an_earlier_version_or_none_is_reported(crm: Crm, engine: Engine):
    run(engine, "DROP INDEX ix_audit_log_transaction")
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == ["missing-index"]
    assert "ix_audit_log_transaction" in problems[0].message
    run(
        engine,
        "CREATE INDEX ix_audit_log_transaction ON audit_log "
        "(transaction_id, entity_type, number_identifier, entity_key)",
    )
    reported_then_repaired(crm, engine, "stale-index", "writes to the log wait while it builds")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_sqlite_capture_triggers_missing_or_stale_are_reported(crm: Crm, engine: Engine):
    run(engine, "DROP TRIGGER leads_audit_capture_update")
    problems = crm.keeper.check(engine)
    assert [p.kind for p in problems] == ["missing-trigger"]
    assert "leads_audit_capture_update on leads" in problems[0].message
    run(
        engine,
        "CREATE TRIGGER leads_audit_capture_update AFTER UPDATE ON leads BEGIN SELECT 1; END",
    )
    assert kinds(crm, engine) == ["stale-trigger"]
    crm.keeper.create_all(engine)
    assert crm.keeper.check(engine) == []
