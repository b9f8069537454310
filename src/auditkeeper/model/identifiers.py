"""Names of the database objects auditkeeper makes for a table, within PostgreSQL's limit.

PostgreSQL cuts an identifier longer than 63 bytes, silently (a notice): the triggers
and functions made for a table with a long name would then share one name, and each
``CREATE`` would replace the one before, leaving raw SQL on the table unlogged. Such a
name is shortened here instead, keeping its suffix whole (the capture state finds the
triggers by it) and a hash of the table's name (so names stay apart).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

__all__ = [
    "POSTGRESQL_NAME_LIMIT",
    "drop_postgresql_trigger",
    "postgresql_name",
    "postgresql_stored_name",
]

POSTGRESQL_NAME_LIMIT = 63
"""Bytes in a PostgreSQL identifier (``NAMEDATALEN`` - 1)."""


def postgresql_name(base: str, suffix: str) -> str:
    """``base + suffix``, or where that is longer than PostgreSQL keeps, ``base`` cut
    short and followed by eight hex digits of its hash, then ``suffix``."""
    name = base + suffix
    if len(name.encode()) <= POSTGRESQL_NAME_LIMIT:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    room = POSTGRESQL_NAME_LIMIT - len(suffix.encode()) - len(digest) - 1
    cut = base.encode()[:room].decode("utf-8", "ignore")  # never half a character
    return f"{cut}_{digest}{suffix}"


def postgresql_stored_name(name: str) -> str:
    """``name`` as PostgreSQL keeps it: cut to 63 bytes, at a character's end. A table
    SQLAlchemy names in full (it counts characters, not bytes) is found by this name."""
    return name.encode()[:POSTGRESQL_NAME_LIMIT].decode("utf-8", "ignore")


def drop_postgresql_trigger(table: Table, suffix: str, dialect: Dialect) -> list[str]:
    """``DROP TRIGGER IF EXISTS`` of ``table``'s trigger named for ``suffix``: under
    ``postgresql_name``'s name, and where that is shortened, under the full name too,
    which PostgreSQL cuts to the name an earlier version's trigger got."""
    preparer = dialect.identifier_preparer
    quoted = preparer.format_table(table)
    name = postgresql_name(table.name, suffix)
    names = (name,) if name == table.name + suffix else (name, table.name + suffix)
    return [f"DROP TRIGGER IF EXISTS {preparer.quote(each)} ON {quoted}" for each in names]
