"""Streaming export to JSON Lines and CSV: every column, the filters, constant memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from auditkeeper import LogFilter, QueryError, export_log
from auditkeeper.demo.crm import Crm
from auditkeeper.query import EXPORT_COLUMNS
from tests.query._dataset import build_rows, expected_ids, insert_rows


@pytest.fixture
def stored(crm: Crm, engine: Engine, users: list[Any]) -> list[dict[str, Any]]:
    rows = build_rows(users, count=40)
    rows[0]["context"] = {"ip": "10.0.0.1", "request_id": "r-1"}
    rows[0]["reason"] = 'Ticket "#1", line\nbreak'
    rows[1]["changed_objects"]["difference"]["notes"] = ["é ✓", 'a,b;"c"']
    return insert_rows(crm, engine, rows)


def expected_record(row: dict[str, Any]) -> dict[str, Any]:
    names = {1: "BUSINESS", 2: "LEAD", 3: "COMMENT"}
    from auditkeeper.demo.crm import AuditLogActions

    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "action": row["action"],
        "action_name": AuditLogActions(row["action"]).name,
        "entity_type": row["entity_type"],
        "entity_type_name": names[row["entity_type"]],
        "number_identifier": row["number_identifier"],
        "entity_key": row["entity_key"],
        "user_id": row["user_id"],
        "user_email": row["user_email"],
        "is_impersonated": row["is_impersonated"],
        "impersonator_user_id": row["impersonator_user_id"],
        "impersonator_email": row["impersonator_email"],
        "tenant_id": row["tenant_id"],
        "reason": row["reason"],
        "transaction_id": row["transaction_id"],
        "context": row["context"],
        "changed_objects": row["changed_objects"],
    }


def test_json_lines_hold_every_column(
    crm: Crm, engine: Engine, stored: list[dict[str, Any]]
) -> None:
    out = io.StringIO()
    with Session(engine) as session:
        count = export_log(session, crm.keeper, out)
    lines = out.getvalue().splitlines()
    assert count == len(lines) == len(stored)
    for line, row in zip(lines, stored, strict=True):  # default order: oldest first
        record = json.loads(line)
        assert list(record) == list(EXPORT_COLUMNS)
        record["created_at"] = dt.datetime.fromisoformat(record["created_at"])
        record["transaction_id"] = uuid.UUID(record["transaction_id"])
        assert record == expected_record(row)


def test_csv_holds_every_column(crm: Crm, engine: Engine, stored: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    with engine.connect() as connection:
        count = export_log(connection, crm.keeper, out, format="csv")
    out.seek(0)
    reader = csv.DictReader(out)
    records = list(reader)
    assert reader.fieldnames == list(EXPORT_COLUMNS)
    assert count == len(records) == len(stored)
    for record, row in zip(records, stored, strict=True):
        expected = expected_record(row)
        assert int(record["id"]) == expected["id"]
        assert dt.datetime.fromisoformat(record["created_at"]) == expected["created_at"]
        assert record["action_name"] == expected["action_name"]
        assert record["is_impersonated"] == ("true" if row["is_impersonated"] else "false")
        assert record["user_email"] == (row["user_email"] or "")
        assert record["reason"] == (row["reason"] or "")
        assert json.loads(record["changed_objects"]) == row["changed_objects"]
        assert (json.loads(record["context"]) if record["context"] else None) == row["context"]


def test_filters_and_order_apply(crm: Crm, engine: Engine, stored: list[dict[str, Any]]) -> None:
    log_filter = LogFilter(entity_type="LEAD", impersonated=False, newest_first=True)
    out = io.StringIO()
    with Session(engine) as session:
        export_log(session, crm.keeper, out, log_filter)
    ids = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert ids == expected_ids(stored, log_filter)
    assert ids


def test_rows_stream_in_batches_with_progress(
    crm: Crm, engine: Engine, stored: list[dict[str, Any]]
) -> None:
    """The export fetches batch by batch (a server-side cursor on PostgreSQL) and writes
    each batch before fetching the next: memory does not grow with the table."""
    progress: list[int] = []
    writes: list[int] = []
    fetches: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text.count("\n"))
            return super().write(text)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        fetches.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        with engine.connect() as connection:
            export_log(
                connection, crm.keeper, Recording(), batch_size=15, on_progress=progress.append
            )
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert progress == [15, 30, 40]
    assert writes == [15, 15, 10]
    assert len([s for s in fetches if "audit_log" in s]) == 1  # one query, streamed


def test_an_empty_export_writes_nothing_or_only_the_header(crm: Crm, engine: Engine) -> None:
    jsonl, text = io.StringIO(), io.StringIO()
    with Session(engine) as session:
        assert export_log(session, crm.keeper, jsonl) == 0
        assert export_log(session, crm.keeper, text, format="csv") == 0
    assert jsonl.getvalue() == ""
    assert text.getvalue() == ",".join(EXPORT_COLUMNS) + "\n"


def test_unknown_format_and_batch_size_are_refused(crm: Crm, engine: Engine) -> None:
    with Session(engine) as session:
        with pytest.raises(QueryError, match="unknown export format 'xml'"):
            export_log(session, crm.keeper, io.StringIO(), format="xml")  # type: ignore[arg-type]
        with pytest.raises(QueryError, match="batch_size must be a positive integer, got 0"):
            export_log(session, crm.keeper, io.StringIO(), batch_size=0)
