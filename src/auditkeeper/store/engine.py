"""Engine settings the log relies on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["configure_sqlite"]


def configure_sqlite(engine: Engine, *, wal: bool = True) -> Engine:
    """Turn on what SQLite leaves off: foreign keys (so deleting a user sets the log's
    ``user_id`` to null instead of leaving a dangling id) and WAL journaling (readers
    do not block the writer). Returns ``engine``; does nothing for other dialects."""
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA busy_timeout = 10000")
        finally:
            cursor.close()

    return engine
