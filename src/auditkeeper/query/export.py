"""Streaming export of the log to JSON Lines or CSV, in constant memory.

One query with the same filters as a page, read through a server-side cursor on
PostgreSQL (``yield_per``; SQLite's cursor is lazy anyway), written batch by batch. The
JSON documents (``changed_objects``, ``context``) are fetched as text and spliced into
each line as they are (``orjson.Fragment``): parsing and re-encoding them would cost
more than everything else together.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, TextIO

import orjson
from sqlalchemy import ColumnElement, Text, cast, func, select, type_coerce

from ..errors import QueryError
from .binding import Bind, dialect_name
from .filters import LogFilter, resolve
from .pagination import ordered_select

if TYPE_CHECKING:
    from ..capture.keeper import Auditkeeper

__all__ = ["EXPORT_COLUMNS", "EXPORT_FORMATS", "ExportFormat", "export_log"]

ExportFormat = Literal["jsonl", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "action",
    "action_name",
    "entity_type",
    "entity_type_name",
    "number_identifier",
    "entity_key",
    "user_id",
    "user_email",
    "is_impersonated",
    "impersonator_user_id",
    "impersonator_email",
    "tenant_id",
    "reason",
    "transaction_id",
    "context",
    "changed_objects",
)
"""The fields of every exported row, in order: the log's columns, plus the names of the
action and entity type codes (empty when the application's enum no longer has them)."""


def export_log(
    bind: Bind,
    keeper: Auditkeeper,
    out: TextIO,
    log_filter: LogFilter | None = None,
    *,
    format: ExportFormat = "jsonl",
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write the rows matching ``log_filter`` (default: every row, oldest first) to
    ``out`` and return how many were written; ``on_progress`` receives the running count
    after each batch."""
    if format not in EXPORT_FORMATS:
        raise QueryError(f"unknown export format {format!r}; choose one of {EXPORT_FORMATS}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise QueryError(f"batch_size must be a positive integer, got {batch_size!r}")
    resolved = resolve(log_filter or LogFilter(newest_first=False), keeper)
    table = keeper.table
    dialect = dialect_name(bind, keeper)
    columns = [
        table.c.id,
        _iso_text(table.c.created_at, dialect),
        table.c.action,
        table.c.entity_type,
        table.c.number_identifier,
        table.c.entity_key,
        table.c.user_id,
        table.c.user_email,
        table.c.is_impersonated,
        table.c.impersonator_user_id,
        table.c.impersonator_email,
        table.c.tenant_id,
        table.c.reason,
        table.c.transaction_id,
        cast(table.c.context, Text),
        cast(table.c.changed_objects, Text),
    ]
    statement = ordered_select(select(*columns), keeper, resolved, dialect)
    result = bind.execute(statement.execution_options(yield_per=batch_size))
    names = _Names(keeper.actions), _Names(keeper.entity_types)
    write = _JsonLines(out, names) if format == "jsonl" else _Csv(out, names)
    count = 0
    try:
        for partition in result.partitions():
            write(partition)
            count += len(partition)
            if on_progress is not None:
                on_progress(count)
    finally:
        result.close()
    return count


def _iso_text(column: Any, dialect: str) -> ColumnElement[str]:
    """``created_at`` as fixed-width ISO-8601 UTC text, made by the database: what SQLite
    stores already, and on PostgreSQL cheaper than a datetime per row in Python."""
    if dialect == "postgresql":
        utc = func.timezone("UTC", column)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"', type_=Text)
    return type_coerce(column, Text)


class _Names:
    """Code to name for one enum; a code the enum lost exports with an empty name."""

    def __init__(self, enum: type[IntEnum]) -> None:
        self._names = {int(member): name for name, member in enum.__members__.items()}

    def __call__(self, code: int) -> str | None:
        return self._names.get(code)


def _fields(row: Sequence[Any], names: tuple[_Names, _Names]) -> list[Any]:
    """The row's values in ``EXPORT_COLUMNS`` order."""
    actions, entity_types = names
    return [
        row[0],
        row[1],
        row[2],
        actions(row[2]),
        row[3],
        entity_types(row[3]),
        *row[4:],
    ]


class _JsonLines:
    """One JSON object per line; the stored documents embedded as stored."""

    def __init__(self, out: TextIO, names: tuple[_Names, _Names]) -> None:
        self.out = out
        self.names = names

    def __call__(self, rows: Sequence[Sequence[Any]]) -> None:
        # One dict literal per row: this loop is most of an export's Python time.
        action_name, entity_type_name = self.names
        dumps, fragment = orjson.dumps, orjson.Fragment
        lines = []
        for row in rows:
            context = row[14]
            lines.append(
                dumps(
                    {
                        "id": row[0],
                        "created_at": row[1],
                        "action": row[2],
                        "action_name": action_name(row[2]),
                        "entity_type": row[3],
                        "entity_type_name": entity_type_name(row[3]),
                        "number_identifier": row[4],
                        "entity_key": row[5],
                        "user_id": row[6],
                        "user_email": row[7],
                        "is_impersonated": row[8],
                        "impersonator_user_id": row[9],
                        "impersonator_email": row[10],
                        "tenant_id": row[11],
                        "reason": row[12],
                        "transaction_id": row[13],
                        "context": None if context is None else fragment(context),
                        "changed_objects": fragment(row[15]),
                    }
                )
            )
        self.out.write(b"\n".join(lines).decode("utf-8") + "\n")


class _Csv:
    """A header line, then one line per row: empty for null, ``true``/``false`` for
    booleans, ISO-8601 for times, JSON text for the documents."""

    def __init__(self, out: TextIO, names: tuple[_Names, _Names]) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.names = names
        self.writer.writerow(EXPORT_COLUMNS)

    def __call__(self, rows: Iterable[Sequence[Any]]) -> None:
        self.writer.writerows([_csv_value(v) for v in _fields(row, self.names)] for row in rows)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
