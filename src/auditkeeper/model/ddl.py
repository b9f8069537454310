"""Append-only protection in the database itself, for both dialects.

The triggers reject ``UPDATE``, ``DELETE`` and ``TRUNCATE`` of audit rows whoever issues
them (ORM, Core, raw SQL, another connection). The one update they let through is the
users foreign key's own ``ON DELETE SET NULL``: a ``user_id`` or ``impersonator_user_id``
may become null only when that user no longer exists and nothing else in the row changes.
The catalogue of codes is append-only too.
"""

from __future__ import annotations

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Dialect

from .identifiers import drop_postgresql_trigger, postgresql_name
from .statements import execute_text
from .tables import AuditTables

__all__ = [
    "attach_to_metadata",
    "install_statements",
    "install_triggers",
    "refusal_message",
    "transaction_id_function",
]

_USER_COLUMNS = ("user_id", "impersonator_user_id")


def refusal_message(operation: str, table: str) -> str:
    """The text of the error the database raises; tests and docs rely on its start."""
    return f"auditkeeper: {operation} on {table} is refused: audit logs are append-only"


def install_statements(
    tables: AuditTables, dialect: Dialect, *, only: Table | None = None
) -> list[str]:
    """The SQL that installs the append-only triggers (of one table with ``only``),
    for an Alembic ``op.execute``. Every statement can run again: it replaces."""
    if dialect.name == "postgresql":
        build = _postgresql
    elif dialect.name == "sqlite":
        build = _sqlite
    else:
        raise NotImplementedError(
            f"auditkeeper supports SQLite and PostgreSQL, not {dialect.name!r}"
        )
    statements: list[str] = []
    for table in (tables.log, tables.catalogue):
        if only is None or only is table:
            statements += build(tables, table, dialect)
    return statements


def install_triggers(
    tables: AuditTables, connection: Connection, *, only: Table | None = None
) -> None:
    """Create (or replace) the triggers on an open connection, in its transaction."""
    for statement in install_statements(tables, connection.dialect, only=only):
        execute_text(connection, statement)


def attach_to_metadata(tables: AuditTables) -> None:
    """Have ``metadata.create_all`` (and ``Table.create``) install each table's
    triggers right after creating it."""
    for table in (tables.log, tables.catalogue):

        def after_create(target: Table, connection: Connection, **kw: object) -> None:
            install_triggers(tables, connection, only=target)

        event.listen(table, "after_create", after_create)


def transaction_id_function(tables: AuditTables, dialect: Dialect) -> str:
    """The (quoted) PostgreSQL function that names the current database transaction.

    Every writer of audit rows on PostgreSQL (the flush, bulk statements, the capture
    triggers, the history procedures) stamps rows with it, so that the rows of one
    transaction share one ``transaction_id`` whichever path wrote them, and the capture
    triggers can see which changes another path already logged.
    """
    preparer = dialect.identifier_preparer
    log = tables.log
    schema_prefix = f"{preparer.quote(log.schema)}." if log.schema else ""
    return f"{schema_prefix}{preparer.quote(postgresql_name(log.name, '_transaction_id'))}"


def _transaction_id_statement(tables: AuditTables, dialect: Dialect) -> str:
    # A 64-bit transaction id never repeats in one cluster's life (databases share it);
    # the server's start time keeps ids of other clusters and restores apart. No random
    # part: installing again must not change the function.
    return (
        f"CREATE OR REPLACE FUNCTION {transaction_id_function(tables, dialect)}() "
        "RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS "
        "$auditkeeper$SELECT md5(pg_postmaster_start_time()::text || ':' "
        "|| pg_current_xact_id()::text)::uuid$auditkeeper$"
    )


def _quote(dialect: Dialect, table: Table) -> str:
    preparer = dialect.identifier_preparer
    return preparer.format_table(table)


def _users_ref(tables: AuditTables, dialect: Dialect) -> tuple[str, str] | None:
    if tables.users is None:
        return None
    fk = next(iter(tables.log.c.user_id.foreign_keys))
    column = fk.column
    preparer = dialect.identifier_preparer
    return preparer.format_table(column.table), preparer.quote(column.name)


def _postgresql(tables: AuditTables, table: Table, dialect: Dialect) -> list[str]:
    preparer = dialect.identifier_preparer
    quoted = _quote(dialect, table)
    schema_prefix = f"{preparer.quote(table.schema)}." if table.schema else ""
    function = f"{schema_prefix}{preparer.quote(postgresql_name(table.name, '_append_only'))}"
    users = _users_ref(tables, dialect) if table is tables.log else None
    if users is None:
        unlink = "FALSE"
    else:
        users_table, users_key = users
        unlink = (
            "(to_jsonb(NEW) - 'user_id' - 'impersonator_user_id') = "
            "(to_jsonb(OLD) - 'user_id' - 'impersonator_user_id')"
            " AND (NEW.user_id IS DISTINCT FROM OLD.user_id"
            " OR NEW.impersonator_user_id IS DISTINCT FROM OLD.impersonator_user_id)"
            + "".join(
                f" AND (NEW.{col} IS NOT DISTINCT FROM OLD.{col} OR (NEW.{col} IS NULL AND "
                f"NOT EXISTS (SELECT 1 FROM {users_table} u WHERE u.{users_key} = OLD.{col})))"
                for col in _USER_COLUMNS
            )
        )
    body = f"""
BEGIN
  IF TG_OP = 'UPDATE' AND {unlink} THEN
    RETURN NEW;  -- the users foreign key's own ON DELETE SET NULL
  END IF;
  RAISE EXCEPTION 'auditkeeper: % on % is refused: audit logs are append-only',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
"""
    row_trigger = preparer.quote(postgresql_name(table.name, _ROW_SUFFIX))
    truncate_trigger = preparer.quote(postgresql_name(table.name, _TRUNCATE_SUFFIX))

    extra = [_transaction_id_statement(tables, dialect)] if table is tables.log else []
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$auditkeeper${body}$auditkeeper$",
        *drop_postgresql_trigger(table, _ROW_SUFFIX, dialect),
        f"CREATE TRIGGER {row_trigger} BEFORE UPDATE OR DELETE ON {quoted} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        *drop_postgresql_trigger(table, _TRUNCATE_SUFFIX, dialect),
        f"CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON {quoted} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        *extra,
    ]


_ROW_SUFFIX = "_append_only_row"
_TRUNCATE_SUFFIX = "_append_only_truncate"


def _sqlite(tables: AuditTables, table: Table, dialect: Dialect) -> list[str]:
    preparer = dialect.identifier_preparer
    name = table.name
    users = _users_ref(tables, dialect) if table is tables.log else None
    when = ""
    if users is not None:
        users_table, users_key = users
        unchanged = " AND ".join(
            f"NEW.{c.name} IS OLD.{c.name}" for c in table.c if c.name not in _USER_COLUMNS
        )
        per_user = " AND ".join(
            f"(NEW.{col} IS OLD.{col} OR (NEW.{col} IS NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {users_table} WHERE {users_key} = OLD.{col})))"
            for col in _USER_COLUMNS
        )
        some_change = " OR ".join(f"NEW.{col} IS NOT OLD.{col}" for col in _USER_COLUMNS)
        when = f" WHEN NOT ({unchanged} AND ({some_change}) AND {per_user})"
    statements = []
    for operation in ("UPDATE", "DELETE"):
        trigger = preparer.quote(f"{name}_no_{operation.lower()}")
        message = refusal_message(operation, name).replace("'", "''")
        condition = when if operation == "UPDATE" else ""
        statements += [
            f"DROP TRIGGER IF EXISTS {trigger}",
            f"CREATE TRIGGER {trigger} BEFORE {operation} ON {preparer.quote(name)}{condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    return statements
