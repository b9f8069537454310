"""Capture triggers: the database logs the changes that never pass through a flush.

Raw SQL on the application's connection or on another one (psql, a script, another
service), ``ON DELETE CASCADE`` and ``SET NULL`` done by the database, upserts, and
direct writes to many-to-many association tables: on PostgreSQL, a trigger on every
audited table logs them (docs/raw-sql.md).

Why *deferred* triggers: they run at commit, after the flush has written its own rows.
PostgreSQL has two per table, one function: the changes of a statement the session logs
itself (its text starts with ``FLUSHED``) go to ``<table>_audit_flushed``, which logs a
change only when no row of this transaction, written by another path, already covers it
(same ``transaction_id``, record, kind of change and values, and for an update a common
changed field); every other change goes to ``<table>_audit_capture``, which logs it. So
the ORM path is never logged twice, no setting can make a trigger skip a change, and a
raw change is never taken for one the flush made.

The actor comes from the transaction-local setting ``auditkeeper.actor`` (JSON, which
``trigger_state.py`` sets before the application's own SQL, and each flush's audit
INSERT for its cascades); without it, the row is a system action.

PostgreSQL also has *statement* triggers with transition tables: a bulk ``update()`` or
``delete()`` announced by the session (a comment at the start of the statement's text,
``announcement``) is logged by them in one set-based INSERT, and its rows skip the row
trigger (``bulk.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Mapper

from ...model.identifiers import (
    drop_postgresql_trigger,
    postgresql_name,
    postgresql_stored_name,
)
from ...model.statements import execute_text, regclass_text
from ...model.tables import AuditTables
from ..plan import ClassPlan
from . import sqlite
from .common import (
    ACTOR_SETTING,
    CAPTURE_SUFFIX,
    CAPTURED_BY,
    FLUSHED,
    FLUSHED_SUFFIX,
    LEADING_COMMENTS,
    LinkSide,
    flushed_trigger_name,
    query_starts_with,
)
from .postgresql import (
    NEW_ROWS,
    OLD_ROWS,
    announced,
    announcement,
    announcement_token,
    flush_rows_prefix,
    is_current_transaction_index,
    link_function,
    retired_statements,
    statement_function,
    table_function,
    transaction_index_name,
    transaction_index_statement,
)

if TYPE_CHECKING:
    from ..recorder import Recorder

__all__ = [
    "ACTOR_SETTING",
    "CAPTURED_BY",
    "FLUSHED",
    "LEADING_COMMENTS",
    "CaptureTargets",
    "announcement",
    "announcement_token",
    "capture_functions",
    "capture_statements",
    "capture_targets",
    "capture_trigger_names",
    "capture_triggers_enabled",
    "existing_tables",
    "flush_rows_prefix",
    "flushed_trigger_name",
    "install_capture",
    "query_starts_with",
    "row_triggers",
    "is_current_transaction_index",
    "single_table",
    "statement_functions",
    "statement_trigger_names",
    "transaction_index_name",
]


@dataclass
class CaptureTargets:
    """What the triggers watch: audited tables with their plans, and association
    tables with their audited sides."""

    tables: dict[Table, ClassPlan] = field(default_factory=dict)
    links: dict[Table, list[LinkSide]] = field(default_factory=dict)
    leading_comments: bool = False
    """PostgreSQL: the triggers read auditkeeper's marks behind a tracer's comments
    (``Auditkeeper(leading_comments=True)``, ``query_starts_with``)."""

    def all_tables(self) -> list[Table]:
        return [*self.tables, *self.links]


_NO_TRUNCATE_SUFFIX = "_audit_no_truncate"


def capture_trigger_names(table: Table) -> tuple[str, str]:
    """PostgreSQL: ``(row trigger, truncate trigger)`` names on an audited or
    association table."""
    return (
        postgresql_name(table.name, CAPTURE_SUFFIX),
        postgresql_name(table.name, _NO_TRUNCATE_SUFFIX),
    )


def statement_trigger_names(table: Table, plan: ClassPlan) -> dict[str, str]:
    """``{"INSERT" | "UPDATE" | "DELETE": statement trigger name}`` on an audited
    PostgreSQL table, for the verbs its class audits.

    None on a partitioned table (``postgresql_partition_by``): its row trigger is cloned
    onto each partition, but a statement that names a partition fires no trigger of the
    parent's, so a partition's rows left by the row trigger to the statement triggers
    would be logged by neither."""
    if table.dialect_options["postgresql"].get("partition_by"):
        return {}
    audited = {
        "INSERT": plan.create is not None,
        "UPDATE": plan.update is not None or bool(plan.on_change),
        "DELETE": plan.delete is not None,
    }
    return {
        verb: postgresql_name(table.name, _statement_suffix(verb))
        for verb, on in audited.items()
        if on
    }


def _statement_suffix(verb: str) -> str:
    return f"_audit_{verb.lower()}s"


def capture_targets(recorder: Recorder, *, present: set[str] | None = None) -> CaptureTargets:
    """The audited classes mapped to one table each (a class in an inheritance hierarchy
    spans tables, and is captured by its flushes only), and the association tables of
    their many-to-many relationships. ``present`` limits them to existing tables."""
    targets = CaptureTargets(leading_comments=recorder.leading_comments)
    for mapper in recorder.owned_mappers():
        plan = recorder.plan_for(mapper)
        table = mapper.local_table
        if plan is None or not isinstance(table, Table) or not single_table(mapper, plan):
            continue
        if present is not None and table.fullname not in present:
            continue
        targets.tables.setdefault(table, plan)
        for name in plan.collections:
            side = _link_side(mapper, plan, name)
            if side is not None and (present is None or side.owner.table.fullname in present):
                targets.links.setdefault(side.owner.table, []).append(side)
    return targets


def capture_statements(tables: AuditTables, targets: CaptureTargets, dialect: Dialect) -> list[str]:
    """The DDL that installs (or replaces) the capture triggers of ``targets``."""
    if not targets.all_tables():
        return []
    if dialect.name == "sqlite":
        statements = sqlite.support_statements()
        for table, plan in targets.tables.items():
            statements += sqlite.table_triggers(tables, table, plan, dialect)
        for sides in targets.links.values():
            statements += sqlite.link_triggers(tables, sides, dialect)
        return statements
    statements = [
        *retired_statements(tables, dialect),
        transaction_index_statement(tables, dialect),
    ]
    for table, (function, definition) in capture_functions(tables, targets, dialect).items():
        is_announced = table in targets.tables and bool(
            statement_trigger_names(table, targets.tables[table])
        )
        statements += [
            definition,
            *row_triggers(
                table,
                function,
                dialect,
                is_announced=is_announced,
                behind_comments=targets.leading_comments,
            ),
        ]
    for table, (function, definition) in statement_functions(tables, targets, dialect).items():
        statements += [
            definition,
            *_statement_triggers(table, targets.tables[table], function, dialect),
        ]
    return statements


def statement_functions(
    tables: AuditTables, targets: CaptureTargets, dialect: Dialect
) -> dict[Table, tuple[str, str]]:
    """PostgreSQL: ``{table: (function name, CREATE FUNCTION statement)}`` of the
    statement triggers, which log an announced bulk UPDATE or DELETE set-based."""
    functions = {}
    for table, plan in targets.tables.items():
        if statement_trigger_names(table, plan):
            name = _function_name(table, "audit_statement", dialect)
            function = statement_function(
                tables, name, table, plan, dialect, behind_comments=targets.leading_comments
            )
            functions[table] = (name, function)
    return functions


def capture_functions(
    tables: AuditTables, targets: CaptureTargets, dialect: Dialect
) -> dict[Table, tuple[str, str]]:
    """``{table: (function name, CREATE FUNCTION statement)}`` of each captured table."""
    functions = {}
    for table, plan in targets.tables.items():
        name = _function_name(table, "audit_capture", dialect)
        functions[table] = (name, table_function(tables, name, table, plan, dialect))
    for table, sides in targets.links.items():
        name = _function_name(table, "audit_links", dialect)
        functions[table] = (name, link_function(tables, name, sides, dialect))
    return functions


def install_capture(recorder: Recorder, connection: Connection) -> int:
    """Create or replace the capture triggers of every audited table that exists;
    returns how many tables have them."""
    targets = capture_targets(recorder, present=existing_tables(recorder, connection))
    for statement in capture_statements(recorder.tables, targets, connection.dialect):
        execute_text(connection, statement)
    return len(targets.all_tables())


def capture_triggers_enabled(
    connection: Connection,
    table: Any,
    *,
    actor_setting: str | None = None,
    statement_trigger: str | None = None,
) -> tuple[bool, bool]:
    """Whether ``table`` has an enabled capture trigger, and (PostgreSQL) an enabled
    statement trigger named ``statement_trigger``, asked in one round trip that also
    sets ``actor_setting`` as ``auditkeeper.actor`` if given."""
    if not isinstance(table, Table):
        return False, False
    if connection.dialect.name == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :name"
        found = connection.execute(text(query), {"name": sqlite.trigger_name(table, "INSERT")})
        return found.first() is not None, False
    name, _ = capture_trigger_names(table)
    enabled = (
        "EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(:table) "
        "AND tgname = {} AND tgenabled <> 'D')"
    )
    query = f"SELECT {enabled.format(':name')}, {enabled.format(':statement')}"
    parameters = {
        "table": regclass_text(table, connection.dialect),
        "name": name,
        "statement": statement_trigger or "",
    }
    if actor_setting is not None:
        query += f", set_config('{ACTOR_SETTING}', :actor, true)"
        parameters["actor"] = actor_setting
    row = connection.execute(text(query), parameters).one()
    return bool(row[0]), bool(row[1]) and statement_trigger is not None


def row_triggers(
    table: Table, function: str, dialect: Dialect, *, is_announced: bool, behind_comments: bool
) -> list[str]:
    """PostgreSQL: the DDL of ``table``'s row triggers on ``function``: the capture and
    the flushed trigger, split by the marks their ``WHEN`` reads (``is_announced``: the
    table has statement triggers; ``behind_comments``: ``query_starts_with``), and the
    one that refuses TRUNCATE."""
    preparer = dialect.identifier_preparer
    quoted = preparer.format_table(table)
    row_trigger, truncate_trigger = (preparer.quote(n) for n in capture_trigger_names(table))
    flushed_trigger = preparer.quote(flushed_trigger_name(table))
    # The rows an announced statement changes here, its cascades' and its triggers'
    # included, are its statement triggers'; those of a statement the session logs
    # itself (``FLUSHED``) are the flushed trigger's, which checks them against the
    # rows already written; every other change is the row trigger's, which logs it.
    flushed = query_starts_with(FLUSHED, behind_comments=behind_comments)
    if not is_announced:
        when = f"NOT {flushed}"
    elif behind_comments:  # one regular expression for both marks, not two
        either = query_starts_with(announcement(table, dialect), FLUSHED, behind_comments=True)
        when = f"NOT {either}"
    else:
        when = f"NOT {announced(table, dialect, behind_comments=False)} AND NOT {flushed}"
    row = "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    return [
        *drop_postgresql_trigger(table, CAPTURE_SUFFIX, dialect),
        f"CREATE CONSTRAINT TRIGGER {row_trigger} AFTER INSERT OR UPDATE OR DELETE "
        f"ON {quoted} {row} WHEN ({when}) EXECUTE FUNCTION {function}()",
        *drop_postgresql_trigger(table, FLUSHED_SUFFIX, dialect),
        f"CREATE CONSTRAINT TRIGGER {flushed_trigger} AFTER INSERT OR UPDATE OR DELETE "
        f"ON {quoted} {row} WHEN ({flushed}) EXECUTE FUNCTION {function}()",
        *drop_postgresql_trigger(table, _NO_TRUNCATE_SUFFIX, dialect),
        f"CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON {quoted} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _statement_triggers(
    table: Table, plan: ClassPlan, function: str, dialect: Dialect
) -> list[str]:
    preparer = dialect.identifier_preparer
    quoted = preparer.format_table(table)
    statements = []
    for verb, name in statement_trigger_names(table, plan).items():
        transition = {
            "INSERT": f"NEW TABLE AS {NEW_ROWS}",
            "UPDATE": f"OLD TABLE AS {OLD_ROWS} NEW TABLE AS {NEW_ROWS}",
            "DELETE": f"OLD TABLE AS {OLD_ROWS}",
        }[verb]
        statements += [
            *drop_postgresql_trigger(table, _statement_suffix(verb), dialect),
            f"CREATE TRIGGER {preparer.quote(name)} AFTER {verb} ON {quoted} "
            f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def _function_name(table: Table, suffix: str, dialect: Dialect) -> str:
    preparer = dialect.identifier_preparer
    schema = f"{preparer.quote(table.schema)}." if table.schema else ""
    return f"{schema}{preparer.quote(postgresql_name(table.name, f'_{suffix}'))}"


def single_table(mapper: Mapper[Any], plan: ClassPlan) -> bool:
    """Whether ``mapper``'s class lives in one table of its own (no inheritance), so that
    the table's triggers can log it."""
    table = mapper.local_table
    return (
        mapper.inherits is None
        and not (mapper.polymorphic_map.keys() - {mapper.polymorphic_identity})
        and all(c.column.table is table for c in (*plan.columns, *plan.primary_key))
    )


def _link_side(mapper: Mapper[Any], plan: ClassPlan, name: str) -> LinkSide | None:
    """The association table's view of one many-to-many relationship, when it links
    single-column keys (the only kind the flush logs too)."""
    relationship = mapper.relationships[name]
    pairs = relationship.synchronize_pairs
    far_pairs = relationship.secondary_synchronize_pairs or []
    if (
        not isinstance(relationship.secondary, Table)
        or len(pairs) != 1
        or len(far_pairs) != 1
        or len(plan.primary_key) != 1
    ):
        return None
    ((owner_key, owner),) = pairs
    ((_, related),) = far_pairs
    return LinkSide(
        name=name,
        plan=plan,
        table=mapper.local_table,  # type: ignore[arg-type]
        owner=owner,  # type: ignore[arg-type]
        related=related,  # type: ignore[arg-type]
        owner_key=owner_key,  # type: ignore[arg-type]
    )


def existing_tables(recorder: Recorder, connection: Connection) -> set[str]:
    """The audited and association tables that exist in the connected database."""
    inspector = inspect(connection)
    postgresql = connection.dialect.name == "postgresql"
    names: set[str] = set()
    for mapper in recorder.owned_mappers():
        tables = [mapper.local_table, *(r.secondary for r in mapper.relationships)]
        for table in tables:
            if not isinstance(table, Table):
                continue
            stored = postgresql_stored_name(table.name) if postgresql else table.name
            if inspector.has_table(stored, schema=table.schema):
                names.add(table.fullname)
    return names
