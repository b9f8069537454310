"""PostgreSQL: the PL/pgSQL of the capture triggers, generated from the classes' plans.

Two kinds of function:

- ``<table>_audit_capture``, one per audited table: skips a change that another path
  (the flush, a bulk statement, a procedure) already logged in this transaction, then
  builds the documents from OLD and NEW, compares, picks the action, redacts, and
  inserts the row in the name of the actor setting (``write_statement``).
- ``<table>_audit_links``, one per many-to-many association table: a link added or
  removed is a change of the record on each audited side, as in the flush.

Most changes that reach the flushed trigger (``<table>_audit_flushed``) come from the
flush, which has logged them already; so the skip comes first and costs one index probe,
with the changed columns found by comparing stored values, before any JSON is built. The
same function serves the row trigger (``<table>_audit_capture``), whose changes no other
path has logged: it skips the probe (``TG_NAME``).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Index, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex

from ...model.ddl import transaction_id_function
from ...model.identifiers import postgresql_name
from ...model.sql_values import (
    differs_expression,
    exact_twin,
    json_expression,
    json_null_condition,
    key_json_expression,
    same_value_expression,
    sql_literal,
)
from ...model.tables import AuditTables, record_key_expression
from ..declaration import REDACTED
from ..plan import AuditedColumn, ClassPlan
from .common import (
    ACTOR_SETTING,
    CAPTURED_BY,
    FLUSH_ROWS,
    FLUSHED_AT,
    MARK,
    STATEMENT_MARK,
    LinkSide,
    flushed_trigger_name,
    query_starts_with,
    quote_column,
)

__all__ = [
    "NEW_ROWS",
    "OLD_ROWS",
    "announced",
    "announcement",
    "announcement_token",
    "flush_rows_prefix",
    "is_current_transaction_index",
    "link_function",
    "retired_statements",
    "statement_function",
    "table_function",
    "transaction_index_name",
    "transaction_index_statement",
]

_MAX_ARGUMENTS = 100  # PostgreSQL's limit on a function's arguments
_REFUSE_TRUNCATE = (
    "auditkeeper: TRUNCATE of audited table % is refused: it would remove rows without "
    "logging them; DELETE them instead"
)
# Rows the triggers wrote cover only the changes they were written for.
_NOT_OURS = f"NOT coalesce(l.context ? {sql_literal(CAPTURED_BY)}, false)"
_TRUNCATE_GUARD = f"""
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION {sql_literal(_REFUSE_TRUNCATE)}, TG_TABLE_NAME
              USING ERRCODE = 'insufficient_privilege';
    END IF;"""


_VARIABLES = ("chosen", "old_doc", "new_doc", "difference")


ROW_ACTOR = "auditkeeper_actor"
"""The row functions' PL/pgSQL variable that holds the actor setting, read once per row
before its INSERT (``write_statement``)."""


def write_statement(
    tables: AuditTables,
    entity: int,
    key: tuple[str, str],
    dialect: Dialect,
    *,
    written: tuple[str, str, str, str] = _VARIABLES,
    source: str = "",
    where: str = "",
    mark: str = MARK,
    flushed_at: str | None = None,
) -> str:
    """The INSERT of the changes a trigger logs, in the name ``auditkeeper.actor`` gives:
    set by the application's statements and by each flush (a cascade of the flush is
    logged in its name); without it, a system action. A malformed setting is an error,
    and the change is refused. Inline in each function: a call per row to a shared
    function cost a third of the insert.

    ``written`` are the action, previous, current and difference expressions (by default
    the row function's PL/pgSQL variables); ``source`` the FROM items (each followed by a
    comma) and ``where`` the condition that give them one row per change (a statement
    trigger's transition tables). ``flushed_at``: the expression of a flush's time, for
    rows logged as the flush's own (that time, the actor's context unmarked).

    Without ``source`` (a row function's one row) the setting is read into ``ROW_ACTOR``
    and the INSERT is of ``VALUES``: a plan with a sub-select cost about 11 µs a row more
    (bench/README.md, eighth round)."""
    log = dialect.identifier_preparer.format_table(tables.log)
    key_number, key_text = key
    chosen, previous, current, difference = written
    columns = f"""INSERT INTO {log} (action, entity_type, number_identifier, entity_key,
                changed_objects, user_id, user_email, is_impersonated, impersonator_user_id,
                impersonator_email, tenant_id, reason, transaction_id, context, created_at)"""
    document = (
        f"jsonb_build_object('previous', {previous}, 'current', {current},\n"
        f"                              'difference', {difference})"
    )
    setting = (
        f"coalesce(nullif(current_setting({sql_literal(ACTOR_SETTING)}, true), ''), '{{}}')::jsonb"
    )
    if not source:
        actor = ",\n           ".join(
            _actor_values(tables, dialect, ROW_ACTOR, mark, flushed_at).values()
        )
        return f"""{ROW_ACTOR} := {setting};
    {columns}
    VALUES ({chosen}, {entity}, {key_number}, {key_text},
           {document},
           {actor})"""
    named = _actor_values(tables, dialect, "a", mark, flushed_at)
    selected = ",\n                  ".join(f"{value} AS {name}" for name, value in named.items())
    condition = f"\n     WHERE {where}" if where else ""
    # The actor's columns, the transaction and the time once per statement, not per row
    # (``OFFSET 0``: not pulled up into the row list); qualified as ``actor.``, since a
    # transition table may have columns of the same names.
    return f"""{columns}
    SELECT {chosen}, {entity}, {key_number}, {key_text},
           {document},
           {", ".join(f"actor.{name}" for name in named)}
      FROM {source}(
           SELECT {selected}
             FROM (SELECT {setting} AS a) AS setting
           OFFSET 0) AS actor{condition}"""


def _actor_values(
    tables: AuditTables, dialect: Dialect, setting: str, mark: str, flushed_at: str | None
) -> dict[str, str]:
    """The log's actor, transaction and time columns, as expressions of ``setting`` (the
    actor setting as JSONB)."""
    user_type = tables.log.c.user_id.type.compile(dialect=dialect)
    given_context = (
        f"CASE WHEN jsonb_typeof({setting} -> 'context') = 'object' THEN {setting} -> 'context' END"
    )
    if flushed_at is None:
        context = f"coalesce({given_context}, '{{}}'::jsonb) || {sql_literal(mark)}::jsonb"
    else:
        context = given_context
    return {
        "user_id": f"({setting} ->> 'user_id')::{user_type}",
        "user_email": f"{setting} ->> 'user_email'",
        "is_impersonated": f"coalesce(({setting} ->> 'is_impersonated')::boolean, false)",
        "impersonator_user_id": f"({setting} ->> 'impersonator_user_id')::{user_type}",
        "impersonator_email": f"{setting} ->> 'impersonator_email'",
        "tenant_id": f"{setting} ->> 'tenant_id'",
        "reason": f"{setting} ->> 'reason'",
        "transaction_id": f"{transaction_id_function(tables, dialect)}()",
        "context": context,
        "created_at": flushed_at or "clock_timestamp()",
    }


def retired_statements(tables: AuditTables, dialect: Dialect) -> list[str]:
    """Drop what earlier versions installed and the triggers no longer call."""
    preparer = dialect.identifier_preparer
    log = tables.log
    schema = f"{preparer.quote(log.schema)}." if log.schema else ""
    name = f"{schema}{preparer.quote(postgresql_name(log.name, '_capture_write'))}"
    return [f"DROP FUNCTION IF EXISTS {name}(INTEGER, INTEGER, BIGINT, TEXT, JSONB, JSONB, JSONB)"]


def transaction_index_name(tables: AuditTables, dialect: Dialect) -> str:
    """The quoted (schema-qualified) name of the log's transaction index."""
    preparer = dialect.identifier_preparer
    schema = f"{preparer.quote(tables.log.schema)}." if tables.log.schema else ""
    return f"{schema}{preparer.quote(str(_transaction_index(tables).name))}"


def is_current_transaction_index(definition: str) -> bool:
    """Whether an index definition (``pg_get_indexdef``) is the form the triggers' lookup
    needs: the record's key as one text, not the key columns of earlier versions."""
    return _CURRENT_INDEX_MARK in definition


def transaction_index_statement(tables: AuditTables, dialect: Dialect) -> str:
    """Bring the log's transaction index to the form the triggers' lookup needs (the
    record's key as one text, ``record_key_expression``): databases created by earlier
    versions have it on the key columns, which let the planner prefer the record's own
    index and read a record's whole history at each change. Rebuilding it locks the
    log against writes once."""
    name = transaction_index_name(tables, dialect)
    create = str(
        CreateIndex(_transaction_index(tables), if_not_exists=True).compile(dialect=dialect)
    )
    return f"""DO $auditkeeper$
BEGIN
    IF to_regclass({sql_literal(name)}) IS NOT NULL
       AND pg_get_indexdef(to_regclass({sql_literal(name)}))
           NOT LIKE {sql_literal(f"%{_CURRENT_INDEX_MARK}%")} THEN
        DROP INDEX {name};
    END IF;
    {create};
END
$auditkeeper$"""


_CURRENT_INDEX_MARK = "entity_type)::text"
"""What only the current form of the transaction index has in its definition."""


def _transaction_index(tables: AuditTables) -> Index:
    return next(i for i in tables.log.indexes if i.name == f"ix_{tables.log.name}_transaction")


def _called_by_flushed_trigger(table: Table) -> str:
    """The PL/pgSQL condition that the function runs for ``table``'s flushed trigger:
    only a change of a statement the session logs itself can have been logged already,
    so only then is the log probed; any other change is logged whatever rows the
    transaction holds."""
    return f"TG_NAME = {sql_literal(flushed_trigger_name(table))}"


def _covering_rows(
    tables: AuditTables,
    entity: int,
    key: tuple[str, str],
    changed: str,
    dialect: Dialect,
    *,
    plan: ClassPlan | None = None,
    verb: str = "UPDATE",
) -> str:
    """``FROM ... WHERE ...`` of the rows of this transaction that another path wrote (no
    trigger mark) and that may cover this change: same record and kind, and for an update or a link
    a field in common with ``changed`` (a text[] expression) and, for a row change of
    ``plan``'s table, the same values (no ``plan``: a link). One condition per ``verb``
    (the row function asks in each branch): each execution of the query initialises its
    whole expression, so the other verbs' conditions would cost at every row. An
    update's comparisons as the columns' types (``_same_updates``) are left to the
    caller, for each row found."""
    log = dialect.identifier_preparer.format_table(tables.log)
    key_number, key_text = key
    if plan is None:
        same_change = f"(l.changed_objects -> 'difference') ?| {changed}"
    # The values too, where the SQL and Python rules agree exactly (``probe_old``,
    # ``probe_new``): a later change of the same field is not covered by the row of the
    # first one.
    elif verb == "INSERT":
        same_change = """jsonb_typeof(l.changed_objects -> 'previous') = 'null'
           AND (l.changed_objects -> 'current') @> probe_new"""
    elif verb == "DELETE":
        same_change = """jsonb_typeof(l.changed_objects -> 'current') = 'null'
           AND (l.changed_objects -> 'previous') @> probe_old"""
    else:
        same_change = f"""jsonb_typeof(l.changed_objects -> 'previous') = 'object'
           AND jsonb_typeof(l.changed_objects -> 'current') = 'object'
           AND (l.changed_objects -> 'difference') ?| {changed}
           AND (l.changed_objects -> 'previous') @> probe_old
           AND (l.changed_objects -> 'current') @> probe_new"""
    # The record's key as the transaction index holds it: only that index can serve
    # the lookup (``transaction_index_statement``).
    stored_key = record_key_expression(tables.log.alias("l")).compile(dialect=dialect)
    key_as_text = f"({key_number})::text" if key_text == "NULL::text" else key_text
    return f"""FROM {log} l
         WHERE l.transaction_id = {transaction_id_function(tables, dialect)}()
           AND {stored_key} = {sql_literal(f"{entity}:")} || {key_as_text} AND {_NOT_OURS}
           AND {same_change}"""


def table_function(
    tables: AuditTables, name: str, table: Table, plan: ClassPlan, dialect: Dialect
) -> str:
    """The capture function of one audited table (also refuses TRUNCATE)."""
    quoted = dialect.identifier_preparer.format_table(table)
    key = _key("record", plan)
    entity = plan.entity_type

    def covered(row: str, verb: str) -> str:
        """The statements that return when a row of the flush logs this creation or
        deletion: its exact twins in the probe, its other columns compared as their
        types on each row found (``_same_one_side``)."""
        rows = _covering_rows(
            tables, entity, _key(row, plan), "changed", dialect, plan=plan, verb=verb
        )
        side = "current" if verb == "INSERT" else "previous"
        compared = _same_one_side(plan, row, side)
        if not compared:
            return f"""IF EXISTS (SELECT 1 {rows}) THEN
                RETURN NULL;
            END IF;"""
        # One row found, not a loop over them (a cursor costs more): a record created or
        # deleted twice in one transaction with the same twins may then be logged once
        # more, never less.
        return f"""SELECT l.changed_objects -> '{side}' INTO candidate {rows} LIMIT 1;
            IF FOUND{compared} THEN
                RETURN NULL;
            END IF;"""

    compared = _same_updates(plan, "changed")
    if compared:
        # The comparisons run on the rows found, as PL/pgSQL expressions prepared once
        # per transaction: in the query, they were initialised again at every row.
        rows = _covering_rows(tables, entity, _key("NEW", plan), "changed", dialect, plan=plan)
        update_covered = f"""FOR candidate IN SELECT l.changed_objects {rows} LOOP
                {_FLUSHED_PREVIOUS} := candidate -> 'previous';
                {_FLUSHED_DIFFERENCE} := candidate -> 'difference';
                IF true{compared} THEN
                    RETURN NULL;
                END IF;
            END LOOP;"""
    else:
        rows = _covering_rows(tables, entity, _key("NEW", plan), "changed", dialect, plan=plan)
        update_covered = f"""IF EXISTS (SELECT 1 {rows}) THEN
                RETURN NULL;
            END IF;"""

    flushed = _called_by_flushed_trigger(table)

    body = f"""
DECLARE
    record {quoted}%ROWTYPE;
    old_doc JSONB;
    new_doc JSONB;
    difference JSONB;
    changed TEXT[];
    field TEXT;
    probe_old JSONB;
    probe_new JSONB;
    candidate JSONB;
    {_FLUSHED_PREVIOUS} JSONB;
    {_FLUSHED_DIFFERENCE} JSONB;
    chosen INTEGER;
    {ROW_ACTOR} JSONB;
BEGIN{_TRUNCATE_GUARD}{_unaudited_verbs(plan)}
    IF TG_OP = 'UPDATE' THEN
        changed := {_changed(plan)};
        IF cardinality(changed) = 0 THEN
            RETURN NULL;  -- no audited column changed
        END IF;
        IF {flushed} THEN
            probe_old := {_probe("OLD", plan, changed_only=True)};
            probe_new := {_probe("NEW", plan, changed_only=True)};
            {update_covered}
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        IF {flushed} THEN
            probe_new := {_probe("NEW", plan)};
            {covered("NEW", "INSERT")}
        END IF;
    ELSIF {flushed} THEN
        probe_old := {_probe("OLD", plan)};
        {covered("OLD", "DELETE")}
    END IF;
    IF TG_OP = 'DELETE' THEN record := OLD; ELSE record := NEW; END IF;
    IF TG_OP <> 'INSERT' THEN old_doc := {_document("OLD", plan.columns)}; END IF;
    IF TG_OP <> 'DELETE' THEN new_doc := {_document("NEW", plan.columns)}; END IF;
    IF TG_OP = 'UPDATE' THEN  -- the few changed columns, without a query
        difference := '{{}}'::jsonb;
        FOREACH field IN ARRAY changed LOOP
            IF (old_doc -> field) IS DISTINCT FROM (new_doc -> field) THEN
                difference := difference || jsonb_build_object(
                    field, jsonb_build_array(old_doc -> field, new_doc -> field));
            END IF;
        END LOOP;
    ELSIF TG_OP = 'INSERT' THEN
        difference := {_every_field_set("new_doc", "NEW", plan.columns, created=True)};
    ELSE
        difference := {_every_field_set("old_doc", "OLD", plan.columns, created=False)};
    END IF;
    chosen := CASE TG_OP WHEN 'INSERT' THEN {_code(plan.create)}
                         WHEN 'DELETE' THEN {_code(plan.delete)}
                         ELSE {_update_action(plan)} END;
    IF chosen IS NULL THEN
        RETURN NULL;  -- a change this class does not audit, or nothing audited changed
    END IF;
{_redaction_steps(plan)}
    {write_statement(tables, entity, key, dialect)};
    RETURN NULL;
END
"""
    return _trigger_function(name, body)


OLD_ROWS = "auditkeeper_old_rows"
NEW_ROWS = "auditkeeper_new_rows"
"""The transition tables of the statement triggers."""


def announcement(table: Table, dialect: Dialect) -> str:
    """The SQL comment that, at the start of a statement's text, hands the rows the
    statement changes in ``table`` to its statement triggers (the bulk path puts it
    there).

    Both kinds of trigger read it in ``current_query()``, the query as the client sent
    it, which nothing the query does can change: the row trigger's ``WHEN`` as each row
    changes and the statement trigger at the statement's end see the same text, so each
    row is left to exactly one of them. (A setting made inside the statement could be
    changed again before its end, and leave rows to neither.) At the start, so that the
    ``WHEN`` that every flushed row passes compares a prefix rather than searching the
    whole text (bench/README.md, sixth round). The table's name is hashed: a name may
    hold ``*/``."""
    return f"/* {announcement_token(table, dialect)} */"


def announced(table: Table, dialect: Dialect, *, behind_comments: bool) -> str:
    """The SQL condition that the current client query starts with ``table``'s
    announcement (``query_starts_with``)."""
    return query_starts_with(announcement(table, dialect), behind_comments=behind_comments)


def flush_rows_prefix(table: Table, dialect: Dialect) -> str:
    """What starts a flush's statement on ``table`` whose rows the statement trigger logs
    as the flush's own (an INSERT, capture/inserts.py; UPDATEs or DELETEs merged into
    one, capture/merged.py): the announcement, then ``FLUSH_ROWS``."""
    return f"{announcement(table, dialect)} {FLUSH_ROWS}"


def announcement_token(table: Table, dialect: Dialect) -> str:
    """What ``table``'s announcement says, and its row trigger's ``WHEN`` looks for."""
    name = dialect.identifier_preparer.format_table(table)
    return f"auditkeeper:statement-capture:{hashlib.md5(name.encode()).hexdigest()}"


def statement_function(
    tables: AuditTables,
    name: str,
    table: Table,
    plan: ClassPlan,
    dialect: Dialect,
    *,
    behind_comments: bool,
) -> str:
    """The function of ``table``'s statement triggers: it logs, set-based, every row of
    an announced statement (``announcement``), and does nothing for any other.

    Every row the announced statement changes in this table skips the row trigger (its
    ``WHEN``), so each is logged once, here, with no probe and no queue at commit.
    Whatever the statement does (an INSERT, an upsert, several changes in one query), a
    statement trigger takes its rows, so an announcement can move a change's logging
    but never silence it. That holds at any trigger depth: the database's cascades into
    the same table land in the statement's own transition tables, and a statement that
    one of the application's triggers runs has its own, and its own statement trigger
    call, under the same announcement (the client's query text). It reads the
    announcement as the row trigger's ``WHEN`` does (``behind_comments``), so that each
    row is logged by exactly one of them.
    """
    branches = []
    if plan.create is not None:
        inserts = _flush_or_statement(tables, table, plan, dialect, "INSERT", behind_comments)
        branches.append(("INSERT", inserts))
    if plan.update is not None or plan.on_change:
        updates = _flush_or_statement(tables, table, plan, dialect, "UPDATE", behind_comments)
        branches.append(("UPDATE", updates))
    if plan.delete is not None:
        deletions = _flush_or_statement(tables, table, plan, dialect, "DELETE", behind_comments)
        branches.append(("DELETE", deletions))
    logs = "\n    ".join(
        f"{'ELSIF' if i else 'IF'} TG_OP = '{op}' THEN\n        {insert};"
        for i, (op, insert) in enumerate(branches)
    )
    body = f"""
BEGIN
    IF NOT {announced(table, dialect, behind_comments=behind_comments)} THEN
        RETURN NULL;  -- not announced: the row trigger logs each row
    END IF;
    {logs}
    END IF;
    RETURN NULL;
END
"""
    return _trigger_function(name, body, set_based=True)


def _set_update(
    tables: AuditTables, plan: ClassPlan, dialect: Dialect, *, flushed_at: str | None = None
) -> str:
    """The INSERT of every changed row of an UPDATE, from its transition tables: old and
    new rows paired by their order (both are written row by row, together; a statement
    may change the primary key). ``OFFSET 0`` keeps each step a step: pulled up into the
    steps that use them, the documents were built again at each use."""
    ordinal = '"__auditkeeper_ordinal"'
    source = f"""(SELECT *, row_number() OVER () AS {ordinal} FROM {OLD_ROWS}) AS o
      JOIN (SELECT *, row_number() OVER () AS {ordinal} FROM {NEW_ROWS}) AS n USING ({ordinal})
      CROSS JOIN LATERAL (SELECT {_changed(plan, "o", "n")} AS changed OFFSET 0) AS c
      CROSS JOIN LATERAL (SELECT {_document("o", plan.columns)} AS old_doc,
                                 {_document("n", plan.columns)} AS new_doc
                           WHERE cardinality(c.changed) > 0 OFFSET 0) AS d
      CROSS JOIN LATERAL (SELECT coalesce(jsonb_object_agg(f, jsonb_build_array(
                                     d.old_doc -> f, d.new_doc -> f)), '{{}}'::jsonb) AS difference
                            FROM unnest(c.changed) AS f
                           WHERE (d.old_doc -> f) IS DISTINCT FROM (d.new_doc -> f)) AS x
      CROSS JOIN LATERAL (SELECT {_update_action(plan, "x.difference")} AS chosen) AS a,
      """
    difference, previous, current = _redactions(plan, ("x.difference", "d.old_doc", "d.new_doc"))
    return write_statement(
        tables,
        plan.entity_type,
        _key("n", plan),
        dialect,
        written=("a.chosen", previous, current, difference),
        source=source,
        where="a.chosen IS NOT NULL",
        mark=STATEMENT_MARK,
        flushed_at=flushed_at,
    )


def _flush_or_statement(
    tables: AuditTables,
    table: Table,
    plan: ClassPlan,
    dialect: Dialect,
    verb: str,
    behind_comments: bool,
) -> str:
    """The log of a statement's rows: as the flush's own (at the flush's time, which the
    flush set in ``FLUSHED_AT``) when the announcement says so (capture/inserts.py,
    capture/merged.py), else as a statement's."""
    flushed = flush_rows_prefix(table, dialect)
    stamp = (
        f"coalesce(nullif(current_setting({sql_literal(FLUSHED_AT)}, true), '')::timestamptz, "
        "clock_timestamp())"
    )
    if verb == "UPDATE":
        as_flushed = _set_update(tables, plan, dialect, flushed_at=stamp)
        as_statement = _set_update(tables, plan, dialect)
    else:
        as_flushed = _set_one_side(tables, plan, dialect, verb, flushed_at=stamp)
        as_statement = _set_one_side(tables, plan, dialect, verb)
    return (
        f"IF {query_starts_with(flushed, behind_comments=behind_comments)} THEN\n            "
        f"{as_flushed};\n        ELSE\n"
        f"            {as_statement};\n        END IF"
    )


def _set_one_side(
    tables: AuditTables,
    plan: ClassPlan,
    dialect: Dialect,
    verb: str,
    *,
    flushed_at: str | None = None,
) -> str:
    """The INSERT of every row of an INSERT or a DELETE, from its transition table:
    every field set, against null."""
    rows, action = (NEW_ROWS, plan.create) if verb == "INSERT" else (OLD_ROWS, plan.delete)
    old, new = ("NULL::jsonb", "d.doc") if verb == "INSERT" else ("d.doc", "NULL::jsonb")
    every_field_set = _every_field_set("d.doc", "r", plan.columns, created=verb == "INSERT")
    source = f"""{rows} AS r
      CROSS JOIN LATERAL (SELECT {_document("r", plan.columns)} AS doc OFFSET 0) AS d
      CROSS JOIN LATERAL (SELECT {every_field_set} AS difference) AS x,
      """
    difference, previous, current = _redactions(plan, ("x.difference", old, new))
    return write_statement(
        tables,
        plan.entity_type,
        _key("r", plan),
        dialect,
        written=(str(action), previous, current, difference),
        source=source,
        mark=STATEMENT_MARK,
        flushed_at=flushed_at,
    )


def link_function(tables: AuditTables, name: str, sides: list[LinkSide], dialect: Dialect) -> str:
    """The capture function of one association table: per audited side, the record whose
    links changed is logged as updated, with the related keys before and after (after:
    the links at commit; before: the same without this added link or with this removed
    one)."""
    preparer = dialect.identifier_preparer
    association = preparer.format_table(sides[0].owner.table)
    flushed = _called_by_flushed_trigger(sides[0].owner.table)
    blocks = []
    for side in sides:
        owner, related = quote_column(side.owner.name), quote_column(side.related.name)
        key_number, key_text = _key("record", side.plan)
        write = write_statement(tables, side.plan.entity_type, (key_number, key_text), dialect)
        field = sql_literal(side.name)
        rows = _covering_rows(
            tables, side.plan.entity_type, (key_number, key_text), f"ARRAY[{field}]", dialect
        )
        covered = f"EXISTS (SELECT 1 {rows})"
        for row, skipped_on, added in (("OLD", "INSERT", False), ("NEW", "DELETE", True)):
            if added:
                before = (
                    "SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb) "
                    f"FROM jsonb_array_elements(after) AS k WHERE k <> to_jsonb(NEW.{related})"
                )
            else:
                before = (
                    "SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb) FROM ("
                    "SELECT k FROM jsonb_array_elements(after) AS k "
                    f"UNION SELECT to_jsonb(OLD.{related})) AS links(k)"
                )
            blocks.append(f"""
    IF TG_OP <> '{skipped_on}' AND {row}.{owner} IS NOT NULL THEN
        SELECT * INTO record FROM {preparer.format_table(side.table)} o
         WHERE o.{quote_column(side.owner_key.name)} = {row}.{owner};
        IF FOUND THEN  -- else the record was deleted, and that is logged
            SELECT coalesce(jsonb_agg(to_jsonb(a.{related}) ORDER BY a.{related}), '[]'::jsonb)
              INTO after FROM {association} a WHERE a.{owner} = {row}.{owner};
            before := ({before});
            difference := jsonb_build_object({field}, jsonb_build_array(before, after));
            chosen := {_update_action(side.plan)};
            IF before <> after AND chosen IS NOT NULL AND NOT ({flushed} AND {covered}) THEN
                old_doc := {_document("record", side.plan.columns)};
                new_doc := old_doc;
{_redaction_steps(side.plan, indent="                ")}
                {write};
            END IF;
        END IF;
    END IF;""")
    body = f"""
DECLARE
    record RECORD;
    before JSONB;
    after JSONB;
    old_doc JSONB;
    new_doc JSONB;
    difference JSONB;
    chosen INTEGER;
    {ROW_ACTOR} JSONB;
BEGIN{_TRUNCATE_GUARD}{"".join(blocks)}
    RETURN NULL;
END
"""
    return _trigger_function(name, body)


def _trigger_function(name: str, body: str, *, set_based: bool = False) -> str:
    # The search path of the installation, so that the table and log names resolve the
    # same whatever the session that fires the trigger has set. No sequential scans: a
    # plan made while the log was nearly empty would otherwise stay a scan of the log
    # for the rest of the session (a 10,000-row raw UPDATE then read the log at each
    # row, quadratic); the lookup always has its index. Each setting is set and reset
    # at every call (1.3 µs for these two, 100,000 calls), so the row functions, called
    # once per row, have only these.
    settings = "SET search_path FROM CURRENT SET enable_seqscan = off "
    if set_based:
        # A 10,000-row statement's insert looked costly enough to JIT-compile, which
        # took longer than running it; memoizing its per-row difference hashed both
        # documents of every row to find no repeat.
        settings += "SET jit = off SET enable_memoize = off "
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {settings}"
        f"AS $auditkeeper${body}$auditkeeper$"
    )


_FLUSHED_PREVIOUS = "flushed_previous"
_FLUSHED_DIFFERENCE = "flushed_difference"
"""The row function's variables holding a covering candidate's ``previous`` and
``difference``, read out of it once."""


def _same_updates(plan: ClassPlan, changed: str) -> str:
    """The conditions, on a candidate row of the flush (``candidate`` and the two
    variables above), that it logged this update as stored. A changed column that is not
    an exact twin: its values before and after are OLD's and NEW's, compared as its type
    (``probe_old`` and ``probe_new`` compare the twins). A column the row says the flush
    left alone: its value before is OLD's (a null only as a null), or the session's copy
    was older than the record. Columns the flush changed in another statement of its own (a
    ``post_update``) are left out. Each is compared by the column, without building a
    document of OLD: that cost about 20 µs a row (bench/README.md, eleventh session)."""
    conditions = []
    for column in plan.columns:
        if column.redact:
            continue
        name = sql_literal(column.name)
        quoted = quote_column(column.name)
        if exact_twin(column.column):
            if isinstance(column.column.type, String):  # no JSON to build: the text
                same = (
                    f"({_FLUSHED_PREVIOUS} ->> {name}) IS NOT DISTINCT FROM "
                    f'OLD.{quoted}::text COLLATE "C"'
                )
            else:
                same = (
                    f"({_FLUSHED_PREVIOUS} -> {name}) = "
                    f"coalesce(to_jsonb(OLD.{quoted}), 'null'::jsonb)"
                )
            # A changed twin's values are the probes', which leave nulls out: a null
            # before or after must be the row's null too.
            nulls = (
                f"(OLD.{quoted} IS NOT NULL OR ({_FLUSHED_PREVIOUS} -> {name}) = 'null'::jsonb)"
                f" AND (NEW.{quoted} IS NOT NULL"
                f" OR (candidate -> 'current' -> {name}) = 'null'::jsonb)"
            )
            conditions.append(
                f"\n                    AND (CASE WHEN {name} = ANY({changed}) THEN {nulls}"
                f"\n                        WHEN {_FLUSHED_DIFFERENCE} ? {name} THEN true"
                f"\n                        ELSE {same} END)"
            )
            continue
        before = same_value_expression(
            f"({_FLUSHED_PREVIOUS} -> {name})", f"OLD.{quoted}", column.column
        )
        after = same_value_expression(
            f"(candidate -> 'current' -> {name})", f"NEW.{quoted}", column.column
        )
        if before is not None and after is not None:
            conditions.append(
                # In parentheses: PL/pgSQL's IF ends its condition at the first THEN.
                f"\n                    AND (CASE WHEN {name} = ANY({changed})"
                f"\n                        THEN {before} AND {after}"
                f"\n                        WHEN {_FLUSHED_DIFFERENCE} ? {name} THEN true"
                f"\n                        ELSE {before} END)"
            )
    return "".join(conditions)


def _same_one_side(plan: ClassPlan, row: str, side: str) -> str:
    """The conditions, on ``candidate`` (the ``side`` document of a row of the flush that
    created or deleted this record), that its columns other than the exact twins hold
    ``row``'s stored values, compared as their types (``same_value_expression``): a
    session's copy older than the record may differ in any of them."""
    conditions = []
    for column in plan.columns:
        if column.redact:
            continue
        same = same_value_expression(
            f"(candidate -> {sql_literal(column.name)})",
            f"{row}.{quote_column(column.name)}",
            column.column,
        )
        if same is not None:
            conditions.append(f"\n                    AND ({same})")
    return "".join(conditions)


def _probe(row: str, plan: ClassPlan, *, changed_only: bool = False) -> str:
    """The values of ``row`` that identify a change in a row another path wrote: the
    columns whose JSON is the same from SQL and from Python (not redacted). For an
    update only the changed ones, their nulls left out (the unchanged ones are null
    here; ``_same_updates`` tests the changed nulls); for a creation or deletion every
    one, a null as JSON null, which the flush's documents hold too."""
    pairs = []
    for column in plan.columns:
        if column.redact or not exact_twin(column.column):
            continue
        value = json_expression(f"{row}.{quote_column(column.name)}", column.column)
        if changed_only:  # the ``changed`` array the update computed first
            value = f"CASE WHEN {sql_literal(column.name)} = ANY(changed) THEN {value} END"
        pairs.append(f"{sql_literal(column.name)}, {value}")
    if not pairs:
        return "'{}'::jsonb"
    if changed_only:
        return f"jsonb_strip_nulls({_json_object(pairs)})"
    return _json_object(pairs)


def _changed(plan: ClassPlan, old: str = "OLD", new: str = "NEW") -> str:
    """The names of the audited columns whose stored values differ between rows ``old``
    and ``new``, as a text[]."""
    names = [
        f"CASE WHEN {_differs(c, old, new)} THEN {sql_literal(c.name)} END" for c in plan.columns
    ]
    return f"array_remove(ARRAY[{', '.join(names)}]::text[], NULL)"


def _differs(column: AuditedColumn, old: str, new: str) -> str:
    name = quote_column(column.name)
    return differs_expression(f"{old}.{name}", f"{new}.{name}", column.column)


def _document(row: str, columns: tuple[AuditedColumn, ...]) -> str:
    """The full JSONB document of ``row``: every audited column, not yet redacted
    (redaction follows the comparison, as in Python). Written inline: a function taking
    the table's row type would stop the table from being dropped."""
    pairs = [
        f"{sql_literal(c.name)}, {json_expression(f'{row}.{quote_column(c.name)}', c.column)}"
        for c in columns
    ]
    return _json_object(pairs)


def _json_object(pairs: list[str]) -> str:
    """A JSONB object of ``'name', value`` pairs (in calls of at most 100 arguments)."""
    per_call = _MAX_ARGUMENTS // 2
    parts = [
        "jsonb_build_object(" + ", ".join(pairs[i : i + per_call]) + ")"
        for i in range(0, len(pairs), per_call)
    ] or ["'{}'::jsonb"]
    return " || ".join(parts)


def _every_field_set(
    document: str, row: str, columns: tuple[AuditedColumn, ...], *, created: bool
) -> str:
    """The difference of a creation (or a deletion): every field of ``document``, the
    JSON of ``row``, that is not null, against null. An expression over the known
    fields, not a query of the document's keys (a query per row was a fifth of the row
    trigger's time); which fields are null asked of the row's columns where the type
    allows (``json_null_condition``), cheaper than asking the document (the statement
    trigger's creations: 47.6 against 51.5 µs a row, bench/README.md, eighth round)."""
    if not columns:
        return "'{}'::jsonb"
    pairs = []
    unset = []
    for column in columns:
        name = sql_literal(column.name)
        value = f"{document} -> {name}"
        pairs.append(
            f"{name}, jsonb_build_array("
            + (f"NULL::jsonb, {value})" if created else f"{value}, NULL::jsonb)")
        )
        ref = f"{row}.{quote_column(column.name)}"
        unset.append(f"CASE WHEN {json_null_condition(ref, column.column, value)} THEN {name} END")
    return f"({_json_object(pairs)} - array_remove(ARRAY[{', '.join(unset)}]::text[], NULL))"


def _update_action(plan: ClassPlan, difference: str = "difference") -> str:
    """The action of an update, chosen by ``difference`` as ``ClassPlan.update_action``
    chooses it (NULL: nothing audited changed, or updates are not audited)."""
    branches = "".join(
        f" WHEN {difference} ?| ARRAY[{', '.join(sql_literal(f) for f in sorted(fields))}]"
        f" THEN {action}"
        for fields, action in plan.on_change
    )
    return (
        f"CASE WHEN {difference} = '{{}}'::jsonb THEN NULL::integer{branches} "
        f"ELSE {_code(plan.update)} END"
    )


def _unaudited_verbs(plan: ClassPlan) -> str:
    """Return at once from the verbs this class does not audit."""
    skipped = [
        op
        for op, audited in (
            ("INSERT", plan.create is not None),
            ("UPDATE", plan.update is not None or bool(plan.on_change)),
            ("DELETE", plan.delete is not None),
        )
        if not audited
    ]
    if not skipped:
        return ""
    return f"""
    IF TG_OP IN ({", ".join(sql_literal(op) for op in skipped)}) THEN
        RETURN NULL;  -- a change this class does not audit
    END IF;"""


def _code(action: int | None) -> str:
    return "NULL::integer" if action is None else str(action)


def _key(row: str, plan: ClassPlan) -> tuple[str, str]:
    """``(number_identifier, entity_key)`` expressions, encoded as ``document.identify``
    does: an integer key as a number; a text key as itself, another single value as its
    JSON, a composite key as a compact JSON array; an instant in UTC."""
    if plan.integer_key:
        (column,) = plan.primary_key
        return f"{row}.{quote_column(column.name)}", "NULL::text"
    values = [
        key_json_expression(f"{row}.{quote_column(c.name)}", c.column) for c in plan.primary_key
    ]
    if len(values) == 1:
        (value,) = values
        as_text = f"{value} #>> '{{}}'"
        key = f"CASE jsonb_typeof({value}) WHEN 'string' THEN {as_text} ELSE ({value})::text END"
    else:
        key = "'[' || concat_ws(',', " + ", ".join(f"({v})::text" for v in values) + ") || ']'"
    return "NULL::bigint", key


def _redactions(plan: ClassPlan, written: tuple[str, str, str]) -> tuple[str, str, str]:
    """``(difference, previous, current)`` with the redacted columns masked: they keep only
    whether they had a value. ``written`` are the unmasked expressions, each used as it
    is (the chains grow by one call per column, not by copies of each other)."""
    marker = f"{sql_literal(f'{chr(34)}{REDACTED}{chr(34)}')}::jsonb"
    difference, previous, current = written
    masked_previous, masked_current = previous, current
    for column in plan.columns:
        if not column.redact:
            continue
        name = sql_literal(column.name)
        path = sql_literal("{" + column.name.replace('"', '\\"') + "}")
        mask = {
            doc: f"CASE WHEN ({doc}) ->> {name} IS NULL THEN 'null'::jsonb ELSE {marker} END"
            for doc in (previous, current)
        }
        # ``false``: never add a key the document does not have.
        difference = (
            f"jsonb_set({difference}, {path}, "
            f"jsonb_build_array({mask[previous]}, {mask[current]}), false)"
        )
        masked_previous = f"jsonb_set({masked_previous}, {path}, {mask[previous]}, false)"
        masked_current = f"jsonb_set({masked_current}, {path}, {mask[current]}, false)"
    return difference, masked_previous, masked_current


def _redaction_steps(plan: ClassPlan, indent: str = "    ") -> str:
    """The row functions' PL/pgSQL that masks their variables (none: nothing redacted)."""
    if not any(column.redact for column in plan.columns):
        return ""
    targets = ("difference", "old_doc", "new_doc")
    masked = _redactions(plan, targets)
    return "\n".join(f"{indent}{t} := {m};" for t, m in zip(targets, masked, strict=True))
