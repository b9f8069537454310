"""``auditkeeper install``, ``check`` and ``add-events``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from auditkeeper.cli.commands import cli
from auditkeeper.demo.crm import build_crm


@pytest.fixture
def demo_db(database) -> tuple[str, Engine]:
    """The demo CRM's tables, without the audit set-up yet, and the --db that names them."""
    crm = build_crm()
    engine = database.engine()
    app_tables = [t for t in crm.Base.metadata.sorted_tables if not t.name.startswith("audit")]
    crm.Base.metadata.create_all(engine, tables=app_tables)
    return database.cli_url(), engine


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_check_install_check(demo_db) -> None:
    path, _ = demo_db
    before = invoke("check", "--db", path)
    assert before.exit_code == 1
    assert "missing-table" in before.output
    installed = invoke("install", "--db", path)
    assert installed.exit_code == 0, installed.output
    assert "installed" in installed.output
    after = invoke("check", "--db", path)
    assert after.exit_code == 0 and "ready" in after.output
    assert invoke("install", "--db", path).exit_code == 0  # again: idempotent


def test_check_reports_a_dropped_trigger(demo_db) -> None:
    path, engine = demo_db
    invoke("install", "--db", path)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql('DROP TRIGGER "audit_log_append_only_row" ON audit_log')
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_log_no_update")
    result = invoke("check", "--db", path)
    assert result.exit_code == 1 and "missing-trigger" in result.output


def entries(engine: Engine) -> list:
    crm = build_crm()
    with Session(engine) as session:
        return list(session.scalars(select(crm.keeper.Entry).order_by(crm.keeper.Entry.id)))


def test_add_events_from_json(demo_db, tmp_path: Path) -> None:
    path, engine = demo_db
    invoke("install", "--db", path)
    changes = {
        "reason": "Support ticket #12345: Unlock all users",
        "user_id": None,
        "changes": [
            {
                "ChangeType": 1,
                "EntityId": "7",
                "EntityTypeFullName": "Lead",
                "PropertyName": "score",
                "NewValue": 40,
                "OldValue": 10,
                "Description": "Rescored",
            },
            {
                "change_type": 2,
                "entity_id": 8,
                "entity_type_full_name": "Lead",
                "description": "Lead removed by hand",
            },
        ],
    }
    source = tmp_path / "changes.json"
    source.write_text(json.dumps(changes))
    result = invoke("add-events", str(source), "--db", path)
    assert result.exit_code == 0, result.output
    assert "2 change(s) recorded" in result.output
    first, second = entries(engine)
    assert first.number_identifier == 7 and first.difference == {"score": [10, 40]}
    assert first.changed_objects["descriptions"] == {"score": "Rescored"}
    assert first.reason == "Support ticket #12345: Unlock all users"
    assert second.changed_objects["event"] == {"name": "Lead removed by hand", "description": None}


def test_add_events_from_csv_on_stdin(demo_db) -> None:
    path, engine = demo_db
    invoke("install", "--db", path)
    csv_text = (
        "change_type,entity_id,entity_type_full_name,property_name,new_value,old_value,description\n"
        "1,3,Lead,status,won,new,\n"
    )
    result = invoke("add-events", "-", "--db", path, "--reason", "import", input=csv_text)
    assert result.exit_code == 0, result.output
    (row,) = entries(engine)
    assert row.difference == {"status": ["new", "won"]} and row.reason == "import"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"change_type": 1, "entity_id": 1}]', "entity_type_full_name is missing"),
        ('[{"change_type": 5, "entity_id": 1, "entity_type_full_name": "Lead"}]', "change type 5"),
        (
            '[{"change_type": 1, "entity_id": 1, "entity_type_full_name": "Nope"}]',
            "unknown entity type",
        ),
        ('[{"colour": 1}]', "unknown field 'colour'"),
        ("[not json", "not valid JSON"),
    ],
)
def test_add_events_refuses_bad_input(demo_db, tmp_path: Path, content: str, message: str) -> None:
    path, engine = demo_db
    invoke("install", "--db", path)
    source = tmp_path / "bad.json"
    source.write_text(content)
    result = CliRunner().invoke(cli, ["add-events", str(source), "--db", path])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert entries(engine) == []
