"""SQLite: capture triggers written in SQL, with a small state table.

SQLite has no deferred triggers and no roles, so the design differs from PostgreSQL's:

- Each audited table has an ``AFTER`` trigger per verb. It builds the row (documents,
  difference, action, key) into ``auditkeeper_capture_pending``.
- When no flush is running (raw SQL, another program such as ``sqlite3``), the trigger
  moves that row into the log at once, with the actor the application put in the state
  row (or none: a system action).
- While a flush or an audited bulk statement runs, a mark row (``seq`` 0) is pending
  too; the rows stay pending, and the flush, once its statements ran, takes them all
  with the mark in one ``DELETE ... RETURNING``, drops those it logs itself and writes
  the rest (cascades done by the database) with its own actor.

Any connection can drop a SQLite trigger: on SQLite the triggers make raw SQL and
cascades visible; they cannot make the log tamper-proof against the file's owner.
"""

from __future__ import annotations

import json

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from ...model.sql_values import sql_literal, sqlite_json_text
from ...model.tables import AuditTables
from ..declaration import REDACTED
from ..plan import AuditedColumn, ClassPlan
from .common import CAPTURE_SUFFIX, MARK, LinkSide, quote_column

__all__ = [
    "MARK_SEQ",
    "PENDING",
    "STATE",
    "link_triggers",
    "support_statements",
    "table_triggers",
]

STATE = "auditkeeper_capture_state"
"""One row: the actor of the application's raw SQL."""

PENDING = "auditkeeper_capture_pending"
"""Rows a trigger built while a flush ran, for the flush to take or drop; and the mark
of a running flush."""

_VERBS = ("INSERT", "UPDATE", "DELETE")
MARK_SEQ = 0
"""The ``seq`` of the pending row that marks a running flush (triggers' rows count from 1)."""

_MOVABLE = (
    f"(SELECT CASE WHEN EXISTS (SELECT 1 FROM {PENDING} WHERE seq = {MARK_SEQ}) "
    "THEN 9223372036854775807 ELSE 0 END)"
)
"""The first pending ``seq`` a trigger may move to the log: every row outside a flush
(only the firing's own rows are pending then), none during one. A bound on the key, not
a filter, so that a trigger firing during a 10,000-row flush does not scan the rows
pending before it."""
_REDACTED_JSON = sql_literal(f'"{REDACTED}"')


def support_statements() -> list[str]:
    """The state and pending tables (shared by every audit log in the file)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {STATE} (id INTEGER PRIMARY KEY CHECK (id = 1), actor TEXT)",
        f"INSERT OR IGNORE INTO {STATE} (id) VALUES (1)",
        f"CREATE TABLE IF NOT EXISTS {PENDING} (seq INTEGER PRIMARY KEY, log_table TEXT NOT "
        "NULL, kind TEXT NOT NULL, entity_type INTEGER NOT NULL, action INTEGER NOT NULL, "
        "number_identifier INTEGER, entity_key TEXT, changed_objects TEXT NOT NULL, "
        "changed TEXT NOT NULL)",
    ]


def trigger_name(table: Table, verb: str) -> str:
    """SQLite: the capture trigger of ``table`` for ``verb`` (SQLite keeps any length)."""
    return f"{table.name}{CAPTURE_SUFFIX}_{verb.lower()}"


def table_triggers(
    tables: AuditTables, table: Table, plan: ClassPlan, dialect: Dialect
) -> list[str]:
    """The three capture triggers of one audited table."""
    preparer = dialect.identifier_preparer
    quoted = preparer.quote(table.name)
    statements = []
    for verb in _VERBS:
        name = preparer.quote(trigger_name(table, verb))
        statements.append(f"DROP TRIGGER IF EXISTS {name}")
        columns = _columns(plan.columns, verb)
        action = _action(plan, verb, columns)
        if action == "NULL":
            continue  # this class does not audit that verb
        row = "OLD" if verb == "DELETE" else "NEW"
        number, key = _key(row, plan)
        values = _pending_values(tables, verb, plan.entity_type, action, number, key, columns)
        statements.append(
            f"CREATE TRIGGER {name} AFTER {verb} ON {quoted} BEGIN "
            f"INSERT INTO {PENDING} (log_table, kind, entity_type, action, number_identifier, "
            f"entity_key, changed_objects, changed) {values} "
            f"FROM {_texts(plan.columns, verb)} WHERE {action} IS NOT NULL; "
            f"{_move(tables, dialect)} END"
        )
    return statements


def link_triggers(tables: AuditTables, sides: list[LinkSide], dialect: Dialect) -> list[str]:
    """The capture triggers of one association table: a link added or removed is an
    update of the record on each audited side, with the related keys before and after."""
    preparer = dialect.identifier_preparer
    association = sides[0].owner.table
    quoted = preparer.quote(association.name)
    statements = []
    for verb in ("INSERT", "DELETE"):
        name = preparer.quote(f"{association.name}_audit_links_{verb.lower()}")
        row = "NEW" if verb == "INSERT" else "OLD"
        inserts = [
            _link_insert(tables, side, row, verb, preparer.quote(side.table.name), quoted)
            for side in sides
        ]
        statements += [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER {verb} ON {quoted} BEGIN "
            + " ".join(inserts)
            + f" {_move(tables, dialect)} END",
        ]
    return statements


# -- pieces ------------------------------------------------------------------------


def _columns(columns: tuple[AuditedColumn, ...], verb: str) -> list[tuple[AuditedColumn, str, str]]:
    """``(column, old JSON text, new JSON text)``, unredacted ('null' for the side the
    verb has not: an INSERT trigger has no OLD row, a DELETE trigger no NEW one), as
    columns of ``_texts``."""
    return [
        (
            c,
            "'null'" if verb == "INSERT" else f"v.o{i}",
            "'null'" if verb == "DELETE" else f"v.n{i}",
        )
        for i, c in enumerate(columns)
    ]


def _texts(columns: tuple[AuditedColumn, ...], verb: str) -> str:
    """The row's JSON texts, each computed once: the action, the documents, the
    difference and the changed names all read them (written out in each, a column's
    text was computed up to seven times). ``DISTINCT`` keeps SQLite from flattening the
    subquery back into them."""
    texts = []
    for i, c in enumerate(columns):
        if verb != "INSERT":
            texts.append(f"{sqlite_json_text(f'OLD.{quote_column(c.name)}', c.column)} AS o{i}")
        if verb != "DELETE":
            texts.append(f"{sqlite_json_text(f'NEW.{quote_column(c.name)}', c.column)} AS n{i}")
    return f"(SELECT DISTINCT {', '.join(texts) or 'NULL'}) AS v"


def _shown(column: AuditedColumn, value: str) -> str:
    """A value as the log shows it: a redacted column keeps only whether it was set."""
    if not column.redact:
        return value
    return f"CASE WHEN {value} = 'null' THEN 'null' ELSE {_REDACTED_JSON} END"


def _document(columns: list[tuple[AuditedColumn, str, str]], side: int) -> str:
    pairs = ", ".join(
        f"{sql_literal(c.name)}, json({_shown(c, texts[side])})" for c, *texts in columns
    )
    return f"json_object({pairs})" if pairs else "json_object()"


def _pending_values(
    tables: AuditTables,
    verb: str,
    entity_type: int,
    action: str,
    number: str,
    key: str,
    columns: list[tuple[AuditedColumn, str, str]],
) -> str:
    """The SELECT that builds the pending row of one change. Every part is a plain
    expression of the row: ``json_patch`` drops the unchanged columns' null entries from
    the difference (JSON merge patch), and the changed names are concatenated, with no
    aggregate over a derived table of the columns."""
    entries, names = [], []
    for c, old, new in columns:
        if verb == "INSERT":
            changed_when, shown = f"{new} <> 'null'", f"json_array(NULL, json({_shown(c, new)}))"
        elif verb == "DELETE":
            changed_when, shown = f"{old} <> 'null'", f"json_array(json({_shown(c, old)}), NULL)"
        else:
            changed_when = f"{old} IS NOT {new}"
            shown = f"json_array(json({_shown(c, old)}), json({_shown(c, new)}))"
        entries.append(f"{sql_literal(c.name)}, CASE WHEN {changed_when} THEN {shown} END")
        listed = sql_literal(json.dumps(c.name, ensure_ascii=False) + ",")
        names.append(f"CASE WHEN {changed_when} THEN {listed} ELSE '' END")
    if verb == "INSERT":
        previous, current = "NULL", _document(columns, 1)
    elif verb == "DELETE":
        previous, current = _document(columns, 0), "NULL"
    else:
        previous, current = _document(columns, 0), _document(columns, 1)
    difference = f"json_patch('{{}}', json_object({', '.join(entries)}))"
    changed = f"'[' || rtrim({' || '.join(names)}, ',') || ']'" if names else "'[]'"
    return (
        f"SELECT {sql_literal(tables.log.name)}, '{verb}', {entity_type}, {action}, {number}, "
        f"{key}, json_object('previous', {previous}, 'current', {current}, "
        f"'difference', json({difference})), {changed}"
    )


def _action(plan: ClassPlan, verb: str, columns: list[tuple[AuditedColumn, str, str]]) -> str:
    """The action of the change, as ``ClassPlan`` picks it; 'NULL' when not audited."""
    if verb != "UPDATE":
        code = plan.create if verb == "INSERT" else plan.delete
        return "NULL" if code is None else str(code)
    differs = {c.name: f"({old} IS NOT {new})" for c, old, new in columns}
    if not differs:
        return "NULL"
    branches = "".join(
        f" WHEN {' OR '.join(differs[f] for f in sorted(fields) if f in differs)} THEN {code}"
        for fields, code in plan.on_change
        if any(f in differs for f in fields)
    )
    update = "NULL" if plan.update is None else str(plan.update)
    if update == "NULL" and not branches:
        return "NULL"
    return (
        f"(CASE WHEN NOT ({' OR '.join(differs.values())}) THEN NULL{branches} ELSE {update} END)"
    )


def _key(row: str, plan: ClassPlan) -> tuple[str, str]:
    """``(number_identifier, entity_key)`` as ``document.identify`` encodes them."""
    if plan.integer_key:
        (column,) = plan.primary_key
        return f"{row}.{quote_column(column.name)}", "NULL"
    texts = [sqlite_json_text(f"{row}.{quote_column(c.name)}", c.column) for c in plan.primary_key]
    if len(texts) == 1:
        (text,) = texts
        return (
            "NULL",
            f"CASE json_type({text}) WHEN 'text' THEN json_extract({text}, '$') ELSE {text} END",
        )
    return "NULL", "'[' || " + " || ',' || ".join(texts) + " || ']'"


def _link_insert(
    tables: AuditTables, side: LinkSide, row: str, verb: str, side_table: str, association: str
) -> str:
    owner, related = quote_column(side.owner.name), quote_column(side.related.name)
    key = quote_column(side.owner_key.name)

    def as_json(ref: str) -> str:
        # The related key as the Python rules write it (a UUID dashed, not as stored).
        return sqlite_json_text(ref, side.related)

    after = (
        f"(SELECT json_group_array(json(r)) FROM (SELECT {as_json(f'a.{related}')} AS r "
        f"FROM {association} a WHERE a.{owner} = {row}.{owner} ORDER BY a.{related}))"
    )
    if verb == "INSERT":
        before = (
            f"(SELECT json_group_array(json(r)) FROM (SELECT {as_json(f'a.{related}')} AS r "
            f"FROM {association} a WHERE a.{owner} = {row}.{owner} "
            f"AND a.{related} IS NOT NEW.{related} ORDER BY a.{related}))"
        )
    else:
        before = (
            f"(SELECT json_group_array(json(r)) FROM (SELECT {as_json('k')} AS r FROM ("
            f"SELECT a.{related} AS k FROM {association} a WHERE a.{owner} = {row}.{owner} "
            f"UNION SELECT OLD.{related}) ORDER BY k))"
        )
    field = sql_literal(side.name)
    on_change = [code for fields, code in side.plan.on_change if side.name in fields]
    action = on_change[0] if on_change else side.plan.update
    if action is None:
        return ""
    number, entity_key = _key("o", side.plan)
    document = _document(
        [
            (c, sqlite_json_text(f"o.{quote_column(c.name)}", c.column), "")
            for c in side.plan.columns
        ],
        0,
    )
    return (
        f"INSERT INTO {PENDING} (log_table, kind, entity_type, action, number_identifier, "
        f"entity_key, changed_objects, changed) "
        f"SELECT {sql_literal(tables.log.name)}, 'LINK', {side.plan.entity_type}, {action}, "
        f"{number}, {entity_key}, json_object('previous', {document}, 'current', {document}, "
        f"'difference', json_object({field}, json_array(json({before}), json({after})))), "
        f"json_array({field}) FROM {side_table} o WHERE o.{key} = {row}.{owner};"
    )


def _move(tables: AuditTables, dialect: Dialect) -> str:
    """Outside a flush, pending rows go to the log at once, with the state's actor."""
    log = dialect.identifier_preparer.quote(tables.log.name)
    actor = f"(SELECT actor FROM {STATE} WHERE id = 1)"

    def field(name: str) -> str:
        return f"json_extract({actor}, '$.{name}')"

    transaction = field("transaction_id")
    return (
        f"INSERT INTO {log} (action, entity_type, number_identifier, entity_key, "
        "changed_objects, user_id, user_email, is_impersonated, impersonator_user_id, "
        "impersonator_email, tenant_id, reason, transaction_id, context, created_at) "
        "SELECT p.action, p.entity_type, p.number_identifier, p.entity_key, p.changed_objects, "
        f"{field('user_id')}, {field('user_email')}, coalesce({field('is_impersonated')}, 0), "
        f"{field('impersonator_user_id')}, {field('impersonator_email')}, {field('tenant_id')}, "
        f"{field('reason')}, replace({transaction}, '-', ''), "
        f"json_patch(coalesce(json_extract({actor}, '$.context'), '{{}}'), {sql_literal(MARK)}), "
        "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now') "
        f"FROM {PENDING} p WHERE p.seq >= {_MOVABLE} "
        f"AND p.log_table = {sql_literal(tables.log.name)} ORDER BY p.seq; "
        f"DELETE FROM {PENDING} WHERE seq >= {_MOVABLE} "
        f"AND log_table = {sql_literal(tables.log.name)};"
    )
