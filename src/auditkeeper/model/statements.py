"""Running SQL text that auditkeeper generates (DDL, function bodies) as it is."""

from __future__ import annotations

from sqlalchemy.engine import Connection

__all__ = ["execute_text"]


def execute_text(connection: Connection, statement: str) -> None:
    """Run ``statement`` unchanged on ``connection``: handed to the driver without a
    parameter list (``no_parameters``), so that no driver reads a ``%`` in a function
    body as a placeholder, whatever its placeholders are (psycopg's ``%s``, asyncpg's
    ``$1``, pg8000's, SQLite's ``?``)."""
    connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
