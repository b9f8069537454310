"""The audit-log table, its catalogue of enum codes, and the read-only mapped class."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Uuid,
    event,
    false,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import registry
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from ..errors import ReadOnlyLogError
from .statements import execute_text
from .types import JSONDocument, UTCDateTime

__all__ = [
    "AuditEntry",
    "AuditTables",
    "CatalogueKind",
    "build_tables",
    "map_entry_class",
    "record_key_expression",
    "storage_statements",
    "UtcNow",
]


class UtcNow(FunctionElement[dt.datetime]):
    """The database's current time, stored as ``created_at`` stores it on each dialect."""

    type = UTCDateTime()
    inherit_cache = True
    name = "UtcNow"


@compiles(UtcNow)
def _utc_now_default(element: UtcNow, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(UtcNow, "sqlite")
def _utc_now_sqlite(element: UtcNow, compiler: Any, **kw: Any) -> str:
    # Same fixed-width ISO-8601 text as UTCDateTime writes, so text order is time order.
    return "(strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))"


class CatalogueKind:
    """The two enums whose codes the catalogue records."""

    ACTION = "action"
    ENTITY_TYPE = "entity_type"


@dataclass(frozen=True)
class AuditTables:
    """The Core tables of one audit log: ``log`` holds the rows, ``catalogue`` the codes."""

    log: Table
    catalogue: Table
    users: str | None
    """The ``table.column`` that ``user_id`` references, or None without a users table."""


def build_tables(
    metadata: MetaData,
    *,
    name: str = "audit_log",
    users: str | None = None,
    user_id_type: TypeEngine[Any] | None = None,
    schema: str | None = None,
) -> AuditTables:
    """Define the audit-log and catalogue tables in ``metadata``.

    ``users`` is the ``"table.column"`` of the application's users key; ``user_id`` and
    ``impersonator_user_id`` reference it with ``ON DELETE SET NULL`` so that deleting a
    user keeps every log row (and its copied e-mail). Without it, ``user_id_type``
    (default BIGINT) types the plain id columns.
    """
    big = BigInteger().with_variant(Integer(), "sqlite")
    small = SmallInteger().with_variant(Integer(), "sqlite")

    def user_column(column_name: str) -> Column[Any]:
        if users is None:
            return Column(column_name, user_id_type if user_id_type is not None else big)
        target = users if schema is None or users.count(".") > 1 else f"{schema}.{users}"
        fk = ForeignKey(target, ondelete="SET NULL", name=f"fk_{name}_{column_name}")
        if user_id_type is not None:
            return Column(column_name, user_id_type, fk)
        return Column(column_name, fk)

    log = Table(
        name,
        metadata,
        Column("id", big, Identity(), primary_key=True),
        Column("action", small, nullable=False),
        Column("entity_type", small, nullable=False),
        Column("number_identifier", big),
        Column("entity_key", Text),
        Column("changed_objects", JSONDocument(), nullable=False),
        user_column("user_id"),
        Column("user_email", Text),
        Column("is_impersonated", Boolean, nullable=False, server_default=false()),
        user_column("impersonator_user_id"),
        Column("impersonator_email", Text),
        Column("tenant_id", Text),
        Column("reason", Text),
        Column("transaction_id", Uuid()),
        Column("context", JSONDocument()),
        Column(
            "created_at",
            UTCDateTime(),
            nullable=False,
            server_default=UtcNow(),
        ),
        Index(f"ix_{name}_record", "entity_type", "number_identifier", "created_at"),
        Index(
            f"ix_{name}_record_key",
            "entity_type",
            "entity_key",
            "created_at",
            postgresql_where=text("entity_key IS NOT NULL"),
            sqlite_where=text("entity_key IS NOT NULL"),
        ),
        Index(f"ix_{name}_user", "user_id", "created_at", "id"),
        Index(f"ix_{name}_created_at", "created_at", postgresql_using="brin"),
        # For the query layer (docs/query.md, "Indexes"): pages in (created_at, id)
        # order, a transaction's rows, and the selective filters; the partial ones cost
        # nothing for rows they leave out (no tenant, not impersonated).
        Index(f"ix_{name}_created", "created_at", "id"),
        Index(
            f"ix_{name}_email",
            "user_email",
            "created_at",
            "id",
            postgresql_where=text("user_email IS NOT NULL"),
            sqlite_where=text("user_email IS NOT NULL"),
        ),
        Index(
            f"ix_{name}_impersonated",
            "impersonator_user_id",
            "created_at",
            "id",
            postgresql_where=text("is_impersonated"),
            sqlite_where=text("is_impersonated"),
        ),
        Index(
            f"ix_{name}_tenant",
            "tenant_id",
            "created_at",
            "id",
            postgresql_where=text("tenant_id IS NOT NULL"),
            sqlite_where=text("tenant_id IS NOT NULL"),
        ),
        schema=schema,
        comment="auditkeeper: append-only audit log (one row per audited change)",
    )
    # A transaction's rows, and one record's among them: the capture triggers look a
    # record up there for each change they might log twice (docs/raw-sql.md), by its
    # type and key as one text (``record_key_expression``), so that no other index can
    # serve that lookup: the record's own index would read its whole history, or a
    # plan made on a near-empty log every row of the type, at each change.
    Index(f"ix_{name}_transaction", log.c.transaction_id, record_key_expression(log))
    event.listen(log, "after_create", _set_storage)

    catalogue = Table(
        f"{name}_catalogue",
        metadata,
        Column("kind", Text, nullable=False),
        Column("code", Integer, nullable=False),
        Column("name", Text, nullable=False),
        Column("first_seen", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("kind", "code", name=f"pk_{name}_catalogue"),
        CheckConstraint("kind IN ('action', 'entity_type')", name=f"ck_{name}_catalogue_kind"),
        schema=schema,
        comment="auditkeeper: every action and entity-type code the log has used",
    )
    return AuditTables(log=log, catalogue=catalogue, users=users)


def record_key_expression(log: FromClause) -> ColumnElement[str]:
    """A record as one text, ``<entity type>:<key>``, whichever column holds the key (an
    entity type has one kind of key): the second column of the transaction index."""
    return _RecordKey(log.c.entity_type, log.c.number_identifier, log.c.entity_key)


class _RecordKey(FunctionElement[str]):
    type = Text()
    inherit_cache = True
    name = "record_key"


@compiles(_RecordKey)
def _record_key_default(element: _RecordKey, compiler: Any, **kw: Any) -> str:
    kind, number, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST({kind} AS TEXT) || ':' || coalesce(CAST({number} AS TEXT), {key})"


@compiles(_RecordKey, "postgresql")
def _record_key_postgresql(element: _RecordKey, compiler: Any, **kw: Any) -> str:
    # Byte-wise: the index is only ever searched for equality, and the database's
    # collation would cost a locale comparison at every step down the index.
    return f'({_record_key_default(element, compiler, **kw)}) COLLATE "C"'


def storage_statements(log: Table, dialect_name: str) -> list[str]:
    """The SQL that sets the log's storage options, for ``create_all`` and migrations;
    every statement can run again.

    On PostgreSQL, ``changed_objects`` is compressed with lz4 where the server has it
    (PostgreSQL 14+ built ``--with-lz4``; elsewhere the statement does nothing): every
    document passes the 2 KB TOAST threshold, and lz4 measured 20-24 µs a row cheaper
    to write than the default pglz, for about 14 % more bytes
    (``shared/reference/perf-anchors.md``, bench/README.md).
    """
    if dialect_name != "postgresql":
        return []
    preparer = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]
    table = preparer.format_table(log)
    return [
        "DO $auditkeeper$ BEGIN\n"
        "  IF EXISTS (SELECT FROM pg_settings WHERE name = 'default_toast_compression'"
        " AND 'lz4' = ANY (enumvals)) THEN\n"
        f"    ALTER TABLE {table} ALTER COLUMN changed_objects SET COMPRESSION lz4;\n"
        "  END IF;\n"
        "END $auditkeeper$"
    ]


def _set_storage(log: Table, connection: Connection, **kw: object) -> None:
    for statement in storage_statements(log, connection.dialect.name):
        execute_text(connection, statement)


class AuditEntry:
    """One stored audit row, read-only.

    Instances come from queries (``select(keeper.Entry)``); setting an attribute, and
    flushing an update, delete or insert of an entry, raise ``ReadOnlyLogError``.
    """

    id: int
    action: int
    entity_type: int
    number_identifier: int | None
    entity_key: str | None
    changed_objects: dict[str, Any]
    user_id: Any
    user_email: str | None
    is_impersonated: bool
    impersonator_user_id: Any
    impersonator_email: str | None
    tenant_id: str | None
    reason: str | None
    transaction_id: uuid.UUID | None
    context: dict[str, Any] | None
    created_at: dt.datetime

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_sa_"):
            object.__setattr__(self, key, value)
            return
        raise ReadOnlyLogError(f"audit log entries are read-only: cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise ReadOnlyLogError(f"audit log entries are read-only: cannot delete {key!r}")

    @property
    def previous(self) -> dict[str, Any] | None:
        """The full record before the change (None for a creation)."""
        result: dict[str, Any] | None = self.changed_objects.get("previous")
        return result

    @property
    def current(self) -> dict[str, Any] | None:
        """The full record after the change (None for a deletion)."""
        result: dict[str, Any] | None = self.changed_objects.get("current")
        return result

    @property
    def difference(self) -> dict[str, list[Any]]:
        """``{column: [old, new]}`` for the columns that changed."""
        result: dict[str, list[Any]] = self.changed_objects.get("difference") or {}
        return result

    def __repr__(self) -> str:
        key = self.number_identifier if self.number_identifier is not None else self.entity_key
        return (
            f"<AuditEntry id={self.id} action={self.action} entity_type={self.entity_type} "
            f"key={key!r} user_id={self.user_id!r}>"
        )


def map_entry_class(log: Table) -> type[AuditEntry]:
    """Map a fresh read-only subclass of ``AuditEntry`` to ``log``."""
    entry_class: type[AuditEntry] = type("AuditEntry", (AuditEntry,), {"__module__": __name__})
    registry().map_imperatively(entry_class, log)
    return entry_class
