"""Writing audit rows: one batched statement per flush, on the flush's own connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnElement

from ..errors import StoreError

__all__ = ["OWN_STATEMENT", "write_rows"]

OWN_STATEMENT = "auditkeeper_own"
"""Execution option on auditkeeper's own writes to the log, which connection hooks (the
capture triggers' actor and flush marks) leave alone."""


def write_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    computed: Mapping[str, ColumnElement[Any]] | None = None,
) -> None:
    """Insert ``rows`` in the connection's current transaction with a single executemany.

    ``computed`` gives columns whose value the database computes for every row (a SQL
    expression, such as the current transaction's id).

    psycopg 3 pipelines executemany, which measured faster than a rendered multi-row
    INSERT at flush sizes (``shared/reference/perf-anchors.md``). Failure raises
    ``StoreError``; the caller's flush then rolls back, so no change goes unaudited.
    """
    if not rows:
        return
    try:
        statement = table.insert().execution_options(**{OWN_STATEMENT: True})
        if computed:
            statement = statement.values(dict(computed))
        connection.execute(statement, list(rows))
    except DBAPIError as error:
        raise StoreError(
            f"could not write {len(rows)} audit row(s) to {table.fullname}, so the change was "
            f"not saved either: {error.orig}. Is the audit table installed "
            f"(Auditkeeper.create_all) and writable?"
        ) from error
