"""``Auditkeeper.check``: is the database set up the way this version expects?

It reports, without changing anything: missing audit tables, append-only triggers that
are missing, disabled or out of date, enum codes that now mean something else, and on
PostgreSQL missing history procedures, a stale list of audited classes, audited tables
whose capture triggers are missing, disabled or out of date, and a transaction index
missing or of an earlier version's form.
``Auditkeeper.create_all`` repairs all of it except catalogue conflicts, which need the
enum fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Table, inspect, select, text
from sqlalchemy.engine import Connection

from ..model.ddl import install_statements
from ..model.statements import as_sent, regclass_text
from ..store.catalogue import compare_catalogue
from ..store.writer import OWN_STATEMENT
from .history import entities_table, entity_rows
from .triggers import (
    FLUSHED,
    LEADING_COMMENTS,
    announcement_token,
    capture_functions,
    capture_statements,
    capture_targets,
    capture_trigger_names,
    existing_tables,
    flushed_trigger_name,
    is_current_transaction_index,
    query_starts_with,
    statement_functions,
    statement_trigger_names,
    transaction_index_name,
)

if TYPE_CHECKING:
    from .keeper import Auditkeeper

__all__ = ["Problem", "check_database", "leading_text_problems"]

_TRIGGER_NAME = re.compile(r'CREATE TRIGGER (?:"((?:[^"]|"")+)"|([^\s"]+))', re.IGNORECASE)
_FUNCTION_NAME = re.compile(r"CREATE OR REPLACE FUNCTION (\S+)\(")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the database, and what to do about it."""

    kind: str
    """A stable name: missing-table, missing-trigger, disabled-trigger, stale-trigger,
    catalogue-conflict, missing-procedure, stale-entities, missing-index, stale-index,
    undeclared-partitioning, leading-comments, leading-text."""
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def check_database(keeper: Auditkeeper, connection: Connection) -> list[Problem]:
    """Every problem found; an empty list means the database is ready."""
    tables = keeper.tables
    problems: list[Problem] = []
    inspector = inspect(connection)
    for table in (tables.log, tables.catalogue):
        if not inspector.has_table(table.name, schema=table.schema):
            problems.append(
                Problem("missing-table", f"{table.fullname} does not exist: run create_all")
            )
    if problems:
        return problems
    for table in (tables.log, tables.catalogue):
        problems += _trigger_problems(keeper, connection, table)
    conflicts, _ = compare_catalogue(connection, tables, keeper._recorder.enums())
    problems += [Problem("catalogue-conflict", str(conflict)) for conflict in conflicts]
    if connection.dialect.name == "postgresql":
        problems += _procedure_problems(keeper, connection)
        problems += _capture_problems(keeper, connection)
        problems += _index_problems(keeper, connection)
        leading_comments = keeper._recorder.leading_comments
        problems += leading_text_problems(connection, leading_comments=leading_comments)
    else:
        problems += _sqlite_capture_problems(keeper, connection)
    return problems


def _sqlite_capture_problems(keeper: Auditkeeper, connection: Connection) -> list[Problem]:
    """SQLite: capture triggers missing or different from what the declarations make."""
    recorder = keeper._recorder
    targets = capture_targets(recorder, present=existing_tables(recorder, connection))
    quote = connection.dialect.identifier_preparer.quote
    statements = capture_statements(keeper.tables, targets, connection.dialect)
    expected = {
        name: (statement, table)
        for table in targets.all_tables()
        for statement in statements
        if (name := _trigger_name(statement)) and f" ON {quote(table.name)} " in statement
    }
    found = {}
    for table in targets.all_tables():
        found.update(_sqlite_triggers(connection, table))
    problems = []
    for name, (statement, table) in expected.items():
        present = found.get(name)
        if present is None:
            problems.append(
                Problem(
                    "missing-trigger",
                    f"capture trigger {name} on {table.fullname} is missing, so changes "
                    "made outside the ORM go unlogged: run create_all",
                )
            )
        elif _squash(present[1]) != _squash(statement):
            problems.append(
                Problem(
                    "stale-trigger",
                    f"capture trigger {name} on {table.fullname} does not match the "
                    "table's audited columns and declaration: run create_all",
                )
            )
    return problems


def _capture_problems(keeper: Auditkeeper, connection: Connection) -> list[Problem]:
    """Audited tables whose capture triggers are missing, disabled, or out of date with
    the table's audited columns (raw SQL on them would go unlogged or be logged wrong;
    without its statement triggers a bulk statement falls back to the row trigger)."""
    recorder = keeper._recorder
    targets = capture_targets(recorder, present=existing_tables(recorder, connection))
    dialect = connection.dialect
    expected = []
    for table, (_, definition) in capture_functions(keeper.tables, targets, dialect).items():
        expected += [
            (
                table,
                capture_trigger_names(table)[0],
                definition,
                "changes made outside the ORM go unlogged",
            ),
            (
                table,
                flushed_trigger_name(table),
                definition,
                "the database's cascades of a flush go unlogged",
            ),
        ]
    statement_tables = statement_functions(keeper.tables, targets, dialect)
    for table, (_, definition) in statement_tables.items():
        expected += [
            (table, name, definition, f"bulk {verb}s are logged row by row, more slowly")
            for verb, name in statement_trigger_names(table, targets.tables[table]).items()
        ]
    problems = [
        Problem(
            "undeclared-partitioning",
            f"{table.fullname} is partitioned, but its Table does not say so "
            "(postgresql_partition_by), so a statement that names one of its partitions "
            "can leave rows to statement triggers that it does not fire: declare the "
            "partitioning and run create_all",
        )
        for table in statement_tables
        if _is_partitioned(connection, table)
    ]
    installed: dict[Table, dict[str, tuple[bool, str, str]]] = {}
    for table, trigger, definition, consequence in expected:
        if table not in installed:  # one query per table, for all its triggers
            installed[table] = _postgresql_triggers(connection, table)
        found = installed[table].get(trigger)
        where = f"capture trigger {trigger} on {table.fullname}"
        if found is None:
            problems.append(
                Problem("missing-trigger", f"{where} is missing, so {consequence}: run create_all")
            )
            continue
        enabled, source, trigger_definition = found
        if not enabled:
            problems.append(
                Problem(
                    "disabled-trigger",
                    f"{where} is disabled, so {consequence}: ALTER TABLE {table.fullname} "
                    f"ENABLE TRIGGER {trigger}",
                )
            )
        # The row triggers split the changes between them by the marks this version
        # puts on statements (``FLUSHED``, an announcement): their WHEN must look for them,
        # behind a tracer's leading comments too.
        marks = {
            capture_trigger_names(table)[0]: [FLUSHED]
            + ([announcement_token(table, dialect)] if table in statement_tables else []),
            flushed_trigger_name(table): [FLUSHED],
        }.get(trigger, [])
        when_is_current = all(mark in trigger_definition for mark in marks) and (
            not marks or (LEADING_COMMENTS in trigger_definition) == targets.leading_comments
        )
        expected_source = as_sent(definition, dialect).split("$auditkeeper$")[1]
        if _squash(source) != _squash(expected_source) or not (when_is_current):
            problems.append(
                Problem(
                    "stale-trigger",
                    f"{where} does not match the table's audited columns and declaration: "
                    "run create_all",
                )
            )
    return problems


_PROBE = "/* auditkeeper:probe */"


def leading_text_problems(connection: Connection, *, leading_comments: bool) -> list[Problem]:
    """PostgreSQL: what this connection's statements arrive with before auditkeeper's
    marks: a tracer's comment (Datadog's database monitoring puts one first, at the
    driver) that the triggers do not look past (they do with ``leading_comments``), or
    other text that they never do. Either way each flushed change would be logged twice
    (docs/raw-sql.md). Found by sending a statement the way a flush does and reading the
    text the server received: one round trip."""
    # The server answers with the triggers' own condition (``query_starts_with``): what
    # it reads behind comments is what they would.
    behind = query_starts_with(_PROBE, behind_comments=True)
    received, readable = connection.exec_driver_sql(
        f"{_PROBE} SELECT current_query(), {behind}",
        execution_options={"no_parameters": True, OWN_STATEMENT: True},
    ).one()
    if not isinstance(received, str) or received.startswith(_PROBE):
        return []
    before = received.split(_PROBE, 1)[0]
    if readable:
        if leading_comments:
            return []
        return [
            Problem(
                "leading-comments",
                f"statements reach the database with a comment before auditkeeper's marks "
                f"({before.strip()[:80]!r}, a tracer's), so the capture triggers would log "
                "each flushed change a second time: pass leading_comments=True to "
                "Auditkeeper and run create_all",
            )
        ]
    return [
        Problem(
            "leading-text",
            f"statements reach the database with text before auditkeeper's marks "
            f"({before.strip()[:80]!r}), which the capture triggers do not look past, so "
            "they would log each flushed change a second time: have that text put at "
            "the statement's end, or in a block comment /* ... */",
        )
    ]


def _index_problems(keeper: Auditkeeper, connection: Connection) -> list[Problem]:
    """The log's transaction index, which the capture triggers' lookup needs in the form
    of this version (a database from an earlier version has another)."""
    name = transaction_index_name(keeper.tables, connection.dialect)
    definition = connection.execute(
        text("SELECT pg_get_indexdef(to_regclass(:name))"), {"name": name}
    ).scalar()
    if definition is None:
        return [
            Problem(
                "missing-index",
                f"index {name} is missing, so the capture triggers read the log row by row "
                "at every change: run create_all",
            )
        ]
    if not is_current_transaction_index(definition):
        return [
            Problem(
                "stale-index",
                f"index {name} has the form of an earlier version, which lets the capture "
                "triggers read a record's whole history at each change: run create_all "
                "(it rebuilds the index, and writes to the log wait while it builds)",
            )
        ]
    return []


def _trigger_problems(keeper: Auditkeeper, connection: Connection, table: Table) -> list[Problem]:
    expected = {
        name: statement
        for statement in install_statements(keeper.tables, connection.dialect, only=table)
        if (name := _trigger_name(statement))
    }
    found: dict[str, tuple[bool, str]]
    if connection.dialect.name == "postgresql":
        found = {
            n: (on, source)
            for n, (on, source, _) in _postgresql_triggers(connection, table).items()
        }
        bodies = _expected_function_bodies(keeper, connection, table)
    else:
        found = _sqlite_triggers(connection, table)
        bodies = {}
    problems = []
    for name, statement in expected.items():
        present = found.get(name)
        if present is None:
            problems.append(
                Problem(
                    "missing-trigger",
                    f"trigger {name} on {table.fullname} is missing, so the database does "
                    "not refuse changes to logs: run create_all",
                )
            )
            continue
        enabled, definition = present
        if not enabled:
            problems.append(
                Problem(
                    "disabled-trigger",
                    f"trigger {name} on {table.fullname} is disabled: "
                    f"ALTER TABLE {table.fullname} ENABLE TRIGGER {name}",
                )
            )
        current = statement if connection.dialect.name == "sqlite" else bodies.get(name)
        if current is not None and _squash(definition) != _squash(
            as_sent(current, connection.dialect)
        ):
            problems.append(
                Problem(
                    "stale-trigger",
                    f"trigger {name} on {table.fullname} differs from this version's: "
                    "run create_all",
                )
            )
    return problems


def _is_partitioned(connection: Connection, table: Table) -> bool:
    query = "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(:table)"
    name = regclass_text(table, connection.dialect)
    return bool(connection.execute(text(query), {"table": name}).scalar())


def _postgresql_triggers(connection: Connection, table: Table) -> dict[str, tuple[bool, str, str]]:
    """``{trigger name: (enabled, its function's source, its own definition)}``."""
    rows = connection.execute(
        text(
            "SELECT t.tgname, t.tgenabled, p.prosrc, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = to_regclass(:table) AND NOT t.tgisinternal"
        ),
        {"table": regclass_text(table, connection.dialect)},
    )
    return {
        name: (enabled != "D", source, definition) for name, enabled, source, definition in rows
    }


def _expected_function_bodies(
    keeper: Auditkeeper, connection: Connection, table: Table
) -> dict[str, str]:
    """``{trigger name: body of its function}`` as this version writes them."""
    statements = install_statements(keeper.tables, connection.dialect, only=table)
    body = next((s.split("$auditkeeper$")[1] for s in statements if _FUNCTION_NAME.search(s)), "")
    return {name: body for s in statements if (name := _trigger_name(s))}


def _trigger_name(statement: str) -> str | None:
    """The name a ``CREATE TRIGGER`` statement gives, unquoted (``""`` is a quote)."""
    match = _TRIGGER_NAME.search(statement)
    if match is None:
        return None
    quoted, bare = match.groups()
    return quoted.replace('""', '"') if quoted is not None else bare


def _sqlite_triggers(connection: Connection, table: Table) -> dict[str, tuple[bool, str]]:
    rows = connection.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": table.name},
    )
    return {name: (True, sql) for name, sql in rows}


def _procedure_problems(keeper: Auditkeeper, connection: Connection) -> list[Problem]:
    problems = []
    names = ("audit_add_entity_history_events", "audit_add_single_entity_history_event")
    # Only the procedures this log's statements would call: those in its schema, or
    # visible on the search path; a namesake in another schema does not count.
    found = set(
        connection.execute(
            text(
                "SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(:names) AND "
                "CASE WHEN CAST(:schema AS text) IS NULL THEN pg_function_is_visible(oid) "
                "ELSE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = :schema) "
                "END"
            ),
            {"names": list(names), "schema": keeper.tables.log.schema},
        ).scalars()
    )
    problems += [
        Problem("missing-procedure", f"function {name} is missing: run create_all")
        for name in names
        if name not in found
    ]
    table = entities_table(keeper._recorder)
    if not inspect(connection).has_table(table.name, schema=table.schema):
        return problems
    stored = {row["full_name"]: row for row in connection.execute(select(table)).mappings()}
    expected = {row["full_name"]: row for row in entity_rows(keeper._recorder)}
    if stored != expected:
        problems.append(
            Problem(
                "stale-entities",
                f"{table.fullname} does not describe the audited classes of this version "
                f"(stored: {sorted(stored)}, declared: {sorted(expected)}): run create_all "
                "so that the SQL procedures know them",
            )
        )
    return problems


def _squash(sql: str) -> str:
    return " ".join(sql.split())
