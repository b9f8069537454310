"""Hand the current actor to PostgreSQL before the application's own SQL.

The capture triggers (``triggers.py``) log changes made outside a flush; they read who
acts from the transaction-local setting ``auditkeeper.actor``. This module sets it, once
per transaction and again only when the actor changes, before a statement that may
change data: raw SQL and Core or ORM-enabled INSERT / UPDATE / DELETE. A flush's own
statements and plain SELECTs never pay the round trip: the flush logs its rows itself,
and the triggers take the actor of a cascade from them.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..model import values
from .context import Actor, actor_columns, current_actor
from .trigger_sql import ACTOR_SETTING

__all__ = ["actor_document", "flushing", "unwatch_engine", "watch_engine"]

_SENT = "auditkeeper.actor_sent"
_SET = f"SELECT set_config('{ACTOR_SETTING}', %s, true)"

flushing: ContextVar[bool] = ContextVar("auditkeeper_flushing", default=False)
"""True while a flush of an audited session runs: its statements need no setting."""


def actor_document(actor: Actor | None) -> str:
    """The setting's value: the actor's columns as JSON ('' for a system action)."""
    return "" if actor is None else values.dumps(actor_columns(actor))


def watch_engine(engine: Engine) -> None:
    """Send the actor before data-changing statements on ``engine`` (PostgreSQL only;
    idempotent)."""
    if engine.dialect.name != "postgresql":
        return
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "rollback_savepoint", _forget)


def unwatch_engine(engine: Engine) -> None:
    """Stop sending the actor on ``engine``."""
    if event.contains(engine, "before_cursor_execute", _before_execute):
        event.remove(engine, "before_cursor_execute", _before_execute)
        event.remove(engine, "rollback_savepoint", _forget)


def _before_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if flushing.get():
        return
    if context is not None and not (
        context.is_text or context.isinsert or context.isupdate or context.isdelete
    ):
        return  # a compiled SELECT changes nothing
    transaction = connection.get_transaction()
    if transaction is None:
        return  # autocommit: a transaction-local setting would not outlive the statement
    document = actor_document(current_actor())
    sent = connection.info.get(_SENT)
    if sent is not None and sent[0]() is transaction and sent[1] == document:
        return
    cursor.execute(_SET, (document,))
    connection.info[_SENT] = (weakref.ref(transaction), document)


def _forget(connection: Connection, name: Any, context: Any) -> None:
    """A rolled-back savepoint takes the setting back with it."""
    connection.info.pop(_SENT, None)
