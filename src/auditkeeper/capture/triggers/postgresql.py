"""PostgreSQL: the PL/pgSQL of the capture triggers, generated from the classes' plans.

Two kinds of function:

- ``<table>_audit_capture``, one per audited table: skips a change that another path
  (the flush, a bulk statement, a procedure) already logged in this transaction, then
  builds the documents from OLD and NEW, compares, picks the action, redacts, and
  inserts the row in the name of the actor setting (``write_statement``).
- ``<table>_audit_links``, one per many-to-many association table: a link added or
  removed is a change of the record on each audited side, as in the flush.

Most changes reach the trigger through the flush, which has logged them already; so the
skip comes first and costs one index probe, with the changed columns found by comparing
stored values, before any JSON is built.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex

from ...model.ddl import transaction_id_function
from ...model.sql_values import (
    differs_expression,
    exact_twin,
    json_expression,
    same_value_expression,
    sql_literal,
)
from ...model.tables import AuditTables, record_key_expression
from ..declaration import REDACTED
from ..plan import AuditedColumn, ClassPlan
from .common import ACTOR_SETTING, CAPTURED_BY, MARK, LinkSide, quote_column

__all__ = [
    "link_function",
    "retired_statements",
    "table_function",
    "transaction_index_statement",
]

_MAX_ARGUMENTS = 100  # PostgreSQL's limit on a function's arguments
_REFUSE_TRUNCATE = (
    "auditkeeper: TRUNCATE of audited table % is refused: it would remove rows without "
    "logging them; DELETE them instead"
)
_NOT_OURS = f"NOT coalesce(l.context ? {sql_literal(CAPTURED_BY)}, false)"
_TRUNCATE_GUARD = f"""
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION {sql_literal(_REFUSE_TRUNCATE)}, TG_TABLE_NAME
              USING ERRCODE = 'insufficient_privilege';
    END IF;"""


def write_statement(
    tables: AuditTables, entity: int, key: tuple[str, str], dialect: Dialect
) -> str:
    """The INSERT of one change a trigger logs (PL/pgSQL variables ``chosen``,
    ``old_doc``, ``new_doc``, ``difference``), in the name ``auditkeeper.actor`` gives:
    set by the application's statements and by each flush (a cascade of the flush is
    logged in its name); without it, a system action. A malformed setting is an error,
    and the change is refused. Inline in each function: a call per row to a shared
    function cost a third of the insert."""
    log = dialect.identifier_preparer.format_table(tables.log)
    user_type = tables.log.c.user_id.type.compile(dialect=dialect)
    key_number, key_text = key
    return f"""INSERT INTO {log} (action, entity_type, number_identifier, entity_key,
                changed_objects, user_id, user_email, is_impersonated, impersonator_user_id,
                impersonator_email, tenant_id, reason, transaction_id, context, created_at)
    SELECT chosen, {entity}, {key_number}, {key_text},
           jsonb_build_object('previous', old_doc, 'current', new_doc, 'difference', difference),
           (a ->> 'user_id')::{user_type}, a ->> 'user_email',
           coalesce((a ->> 'is_impersonated')::boolean, false),
           (a ->> 'impersonator_user_id')::{user_type}, a ->> 'impersonator_email',
           a ->> 'tenant_id', a ->> 'reason', {transaction_id_function(tables, dialect)}(),
           coalesce(CASE WHEN jsonb_typeof(a -> 'context') = 'object' THEN a -> 'context' END,
                    '{{}}'::jsonb) || {sql_literal(MARK)}::jsonb,
           clock_timestamp()
      FROM (SELECT coalesce(nullif(current_setting({sql_literal(ACTOR_SETTING)}, true), ''),
                            '{{}}')::jsonb AS a) AS actor"""


def retired_statements(tables: AuditTables, dialect: Dialect) -> list[str]:
    """Drop what earlier versions installed and the triggers no longer call."""
    preparer = dialect.identifier_preparer
    log = tables.log
    schema = f"{preparer.quote(log.schema)}." if log.schema else ""
    name = f"{schema}{preparer.quote(f'{log.name}_capture_write')}"
    return [f"DROP FUNCTION IF EXISTS {name}(INTEGER, INTEGER, BIGINT, TEXT, JSONB, JSONB, JSONB)"]


def transaction_index_statement(tables: AuditTables, dialect: Dialect) -> str:
    """Bring the log's transaction index to the form the triggers' lookup needs (the
    record's key as one text, ``record_key_expression``): databases created by earlier
    versions have it on the key columns, which let the planner prefer the record's own
    index and read a record's whole history at each change. Rebuilding it locks the
    log against writes once."""
    preparer = dialect.identifier_preparer
    index = next(i for i in tables.log.indexes if i.name == f"ix_{tables.log.name}_transaction")
    schema = f"{preparer.quote(tables.log.schema)}." if tables.log.schema else ""
    name = f"{schema}{preparer.quote(str(index.name))}"
    create = str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
    return f"""DO $auditkeeper$
BEGIN
    IF to_regclass({sql_literal(name)}) IS NOT NULL
       AND pg_get_indexdef(to_regclass({sql_literal(name)})) NOT LIKE '%entity_type)::text%' THEN
        DROP INDEX {name};
    END IF;
    {create};
END
$auditkeeper$"""


def _logged_already(
    tables: AuditTables,
    entity: int,
    key: tuple[str, str],
    changed: str,
    dialect: Dialect,
    *,
    plan: ClassPlan | None = None,
) -> str:
    """A PL/pgSQL condition: a row of this transaction that another path wrote (no
    trigger mark) covers this change: same record and kind, and for an update or a link
    a field in common with ``changed`` (a text[] expression) and, for a row change of
    ``plan``'s table, the same values (no ``plan``: a link)."""
    log = dialect.identifier_preparer.format_table(tables.log)
    key_number, key_text = key
    if plan is None:
        same_change = f"(l.changed_objects -> 'difference') ?| {changed}"
    else:
        # The values too, where the SQL and Python rules agree exactly (``probe_old``,
        # ``probe_new``): a later change of the same field is not covered by the row of
        # the first one.
        same_change = f"""CASE TG_OP
               WHEN 'INSERT' THEN jsonb_typeof(l.changed_objects -> 'previous') = 'null'
                    AND (l.changed_objects -> 'current') @> probe_new
               WHEN 'DELETE' THEN jsonb_typeof(l.changed_objects -> 'current') = 'null'
                    AND (l.changed_objects -> 'previous') @> probe_old
               ELSE jsonb_typeof(l.changed_objects -> 'previous') = 'object'
                    AND jsonb_typeof(l.changed_objects -> 'current') = 'object'
                    AND (l.changed_objects -> 'difference') ?| {changed}
                    AND (l.changed_objects -> 'previous') @> probe_old
                    AND (l.changed_objects -> 'current') @> probe_new{_same_updates(plan, changed)}
           END"""
    # The record's key as the transaction index holds it: only that index can serve
    # the lookup (``transaction_index_statement``).
    stored_key = record_key_expression(tables.log.alias("l")).compile(dialect=dialect)
    key_as_text = f"({key_number})::text" if key_text == "NULL::text" else key_text
    return f"""EXISTS (SELECT 1 FROM {log} l
         WHERE l.transaction_id = {transaction_id_function(tables, dialect)}()
           AND {stored_key} = {sql_literal(f"{entity}:")} || {key_as_text} AND {_NOT_OURS}
           AND {same_change})"""


def table_function(
    tables: AuditTables, name: str, table: Table, plan: ClassPlan, dialect: Dialect
) -> str:
    """The capture function of one audited table (also refuses TRUNCATE)."""
    quoted = dialect.identifier_preparer.format_table(table)
    key = _key("record", plan)
    entity = plan.entity_type
    differs = ", ".join(
        f"CASE WHEN {_differs(c)} THEN {sql_literal(c.name)} END" for c in plan.columns
    )
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
    chosen INTEGER;
BEGIN{_TRUNCATE_GUARD}{_unaudited_verbs(plan)}
    IF TG_OP = 'UPDATE' THEN
        changed := array_remove(ARRAY[{differs}]::text[], NULL);
        IF cardinality(changed) = 0 THEN
            RETURN NULL;  -- no audited column changed
        END IF;
        probe_old := {_probe("OLD", plan, changed_only=True)};
        probe_new := {_probe("NEW", plan, changed_only=True)};
    ELSIF TG_OP = 'INSERT' THEN
        probe_new := {_probe("NEW", plan)};
    ELSE
        probe_old := {_probe("OLD", plan)};
    END IF;
    IF TG_OP = 'DELETE' THEN record := OLD; ELSE record := NEW; END IF;
    IF {_logged_already(tables, entity, key, "changed", dialect, plan=plan)} THEN
        RETURN NULL;
    END IF;
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
    ELSE  -- every field set, against null
        SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(
                    coalesce(old_doc -> k, 'null'::jsonb), coalesce(new_doc -> k, 'null'::jsonb))),
                    '{{}}'::jsonb)
          INTO difference
          FROM jsonb_object_keys(coalesce(new_doc, old_doc)) AS k
         WHERE jsonb_typeof(coalesce(new_doc, old_doc) -> k) <> 'null';
    END IF;
    chosen := CASE TG_OP WHEN 'INSERT' THEN {_code(plan.create)}
                         WHEN 'DELETE' THEN {_code(plan.delete)}
                         ELSE {_update_action(plan)} END;
    IF chosen IS NULL THEN
        RETURN NULL;  -- a change this class does not audit, or nothing audited changed
    END IF;
{_redactions(plan)}
    {write_statement(tables, entity, key, dialect)};
    RETURN NULL;
END
"""
    return _trigger_function(name, body)


def link_function(tables: AuditTables, name: str, sides: list[LinkSide], dialect: Dialect) -> str:
    """The capture function of one association table: per audited side, the record whose
    links changed is logged as updated, with the related keys before and after (after:
    the links at commit; before: the same without this added link or with this removed
    one)."""
    preparer = dialect.identifier_preparer
    association = preparer.format_table(sides[0].owner.table)
    blocks = []
    for side in sides:
        owner, related = quote_column(side.owner.name), quote_column(side.related.name)
        key_number, key_text = _key("record", side.plan)
        write = write_statement(tables, side.plan.entity_type, (key_number, key_text), dialect)
        field = sql_literal(side.name)
        covered = _logged_already(
            tables,
            side.plan.entity_type,
            (key_number, key_text),
            f"ARRAY[{field}]",
            dialect,
        )
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
            IF before <> after AND chosen IS NOT NULL AND NOT {covered} THEN
                old_doc := {_document("record", side.plan.columns)};
                new_doc := old_doc;
{_redactions(side.plan, indent="                ")}
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
BEGIN{_TRUNCATE_GUARD}{"".join(blocks)}
    RETURN NULL;
END
"""
    return _trigger_function(name, body)


def _trigger_function(name: str, body: str) -> str:
    # The search path of the installation, so that the table and log names resolve the
    # same whatever the session that fires the trigger has set. No sequential scans: a
    # plan made while the log was nearly empty would otherwise stay a scan of the log
    # for the rest of the session (a 10,000-row raw UPDATE then read the log at each
    # row, quadratic); the lookup always has its index.
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
        "SET search_path FROM CURRENT SET enable_seqscan = off "
        f"AS $auditkeeper${body}$auditkeeper$"
    )


def _same_updates(plan: ClassPlan, changed: str) -> str:
    """For the changed columns that are not exact twins: the flush row's values before
    and after are OLD's and NEW's, compared as the columns' types."""
    conditions = []
    for column in plan.columns:
        if column.redact:
            continue
        name = sql_literal(column.name)
        quoted = quote_column(column.name)
        before = same_value_expression(
            f"(l.changed_objects -> 'previous' -> {name})", f"OLD.{quoted}", column.column
        )
        after = same_value_expression(
            f"(l.changed_objects -> 'current' -> {name})", f"NEW.{quoted}", column.column
        )
        if before is not None and after is not None:
            conditions.append(
                f"\n                    AND (NOT {name} = ANY({changed}) OR ({before} AND {after}))"
            )
    return "".join(conditions)


def _probe(row: str, plan: ClassPlan, *, changed_only: bool = False) -> str:
    """The values of ``row`` that identify a change in a row another path wrote: the
    columns whose JSON is the same from SQL and from Python (not redacted), only the
    changed ones for an update; their nulls left out."""
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
    return f"jsonb_strip_nulls({_json_object(pairs)})"


def _differs(column: AuditedColumn) -> str:
    name = quote_column(column.name)
    return differs_expression(f"OLD.{name}", f"NEW.{name}", column.column)


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


def _update_action(plan: ClassPlan) -> str:
    """The action of an update, chosen by ``difference`` as ``ClassPlan.update_action``
    chooses it (NULL: nothing audited changed, or updates are not audited)."""
    branches = "".join(
        f" WHEN difference ?| ARRAY[{', '.join(sql_literal(f) for f in sorted(fields))}]"
        f" THEN {action}"
        for fields, action in plan.on_change
    )
    return (
        f"CASE WHEN difference = '{{}}'::jsonb THEN NULL::integer{branches} "
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
    JSON, a composite key as a compact JSON array."""
    if plan.integer_key:
        (column,) = plan.primary_key
        return f"{row}.{quote_column(column.name)}", "NULL::text"
    values = [json_expression(f"{row}.{quote_column(c.name)}", c.column) for c in plan.primary_key]
    if len(values) == 1:
        (value,) = values
        as_text = f"{value} #>> '{{}}'"
        key = f"CASE jsonb_typeof({value}) WHEN 'string' THEN {as_text} ELSE ({value})::text END"
    else:
        key = "'[' || concat_ws(',', " + ", ".join(f"({v})::text" for v in values) + ") || ']'"
    return "NULL::bigint", key


def _redactions(plan: ClassPlan, indent: str = "    ") -> str:
    """Redacted columns keep only whether they had a value."""
    marker = f"{sql_literal(f'{chr(34)}{REDACTED}{chr(34)}')}::jsonb"
    lines = []
    for column in plan.columns:
        if not column.redact:
            continue
        name = sql_literal(column.name)
        path = sql_literal("{" + column.name.replace('"', '\\"') + "}")
        masked = {
            doc: f"CASE WHEN {doc} ->> {name} IS NULL THEN 'null'::jsonb ELSE {marker} END"
            for doc in ("old_doc", "new_doc")
        }
        lines += [
            f"{indent}IF difference ? {name} THEN difference := jsonb_set(difference, {path}, "
            f"jsonb_build_array({masked['old_doc']}, {masked['new_doc']})); END IF;",
            f"{indent}IF old_doc ->> {name} IS NOT NULL THEN "
            f"old_doc := jsonb_set(old_doc, {path}, {marker}); END IF;",
            f"{indent}IF new_doc ->> {name} IS NOT NULL THEN "
            f"new_doc := jsonb_set(new_doc, {path}, {marker}); END IF;",
        ]
    return "\n".join(lines)
