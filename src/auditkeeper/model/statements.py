"""Running SQL text that auditkeeper generates (DDL, function bodies) as it is."""

from __future__ import annotations

import re

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect

__all__ = ["as_sent", "execute_text", "regclass_text"]

_QUOTED = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)
"""A comment, a string literal or a quoted identifier (their quotes doubled inside),
read in order, so that an apostrophe in a comment starts no string."""


def as_sent(statement: str, dialect: Dialect) -> str:
    """``statement`` as the database is to read it. SQLAlchemy's identifier preparer
    doubles a ``%`` in a quoted name for a driver whose placeholders are ``%s``, which
    that driver undoes only in a statement sent with parameters; auditkeeper's are sent
    without (``execute_text``), so the names take their one ``%`` back here. String
    literals, where a ``%`` is the text's own, are left as they are."""
    if not getattr(dialect.identifier_preparer, "_double_percents", False) or "%%" not in statement:
        return statement

    def undouble(match: re.Match[str]) -> str:
        token = match.group(0)
        return token.replace("%%", "%") if token.startswith('"') else token

    return _QUOTED.sub(undouble, statement)


def execute_text(connection: Connection, statement: str) -> None:
    """Run ``statement`` unchanged on ``connection``: handed to the driver without a
    parameter list (``no_parameters``), so that no driver reads a ``%`` in a function
    body as a placeholder, whatever its placeholders are (psycopg's ``%s``, asyncpg's
    ``$1``, pg8000's, SQLite's ``?``)."""
    connection.exec_driver_sql(
        as_sent(statement, connection.dialect), execution_options={"no_parameters": True}
    )


def regclass_text(table: Table, dialect: Dialect) -> str:
    """``table``'s name as ``to_regclass`` reads it when given as a parameter: quoted
    where needed, schema included, a ``%`` in it single (``as_sent``)."""
    return as_sent(dialect.identifier_preparer.format_table(table), dialect)
