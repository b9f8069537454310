"""What the capture triggers need to hear from the application's connections.

The triggers (``triggers/``) log changes made outside a flush. Before the application's
own SQL that may change data (raw SQL, Core or ORM-enabled INSERT / UPDATE / DELETE),
this module tells them who acts: on PostgreSQL in the transaction-local setting
``auditkeeper.actor``, on SQLite in the state row. It does so once per transaction and
again only when the actor changes; plain SELECTs never pay for it. On PostgreSQL a
flush's own audit INSERT sets the same setting (``actor_setting``), so that the
triggers log the database's cascades of the flush in its name.

On SQLite it also marks the statements of a flush or an audited bulk statement (a mark
row among the pending ones): the triggers then leave their rows pending, and
``take_pending`` hands the flush those it did not log itself. PostgreSQL needs no mark:
its triggers run at commit and see the flush's rows.

On a connection in AUTOCOMMIT it begins the transaction a change needs, and commits it
once the change is logged (below, "AUTOCOMMIT connections").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import uuid
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError

from ..model import values
from ..model.statements import regclass_text
from ..store.writer import OWN_STATEMENT
from . import carried, inserts, merged
from .context import actor_columns, current_actor
from .triggers import flush_rows_prefix
from .triggers.common import (
    ACTOR_SETTING,
    CAPTURE_SUFFIX,
    FLUSH_ROWS,
    FLUSHED,
    FLUSHED_AT,
    FLUSHED_SUFFIX,
)
from .triggers.sqlite import MARK_SEQ, PENDING, STATE

__all__ = [
    "actor_setting_to_send",
    "actor_to_announce",
    "begin_on_autocommit",
    "commit_begun",
    "flushing",
    "marked_connections",
    "note_actor_set",
    "take_pending",
    "transaction_uuid",
    "unwatch_engine",
    "watch_engine",
]

flushing: ContextVar[bool] = ContextVar("auditkeeper_flushing", default=False)
"""True while a flush or an audited bulk statement runs: it logs its statements itself."""

_marked: ContextVar[tuple[Connection, ...]] = ContextVar("auditkeeper_marked", default=())
_begun: ContextVar[tuple[Connection, ...]] = ContextVar("auditkeeper_begun", default=())

_SENT = "auditkeeper.actor_sent"
_MARKED = "auditkeeper.flush_marked"
_HAS_STATE = "auditkeeper.has_capture_state"
_TRANSACTION = "auditkeeper.transaction_uuid"
_LAST_ACTOR = "auditkeeper.last_actor"
_STATEMENT_TRIGGERS = "auditkeeper.statement_triggers_told"
_OWED = "auditkeeper.actor_owed"
_SCOPE = "auditkeeper.autocommit_scope"
_PER_TRANSACTION = (_SENT, _MARKED, _TRANSACTION, _LAST_ACTOR, _STATEMENT_TRIGGERS, _OWED)
"""What ``connection.info`` knows of the database transaction under way."""
_READY = (
    "EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
    "WHERE t.tgrelid = to_regclass(%s) AND t.tgname = %s AND t.tgenabled <> 'D' "
    "AND strpos(p.prosrc, %s) > 0)"
)
"""The statement trigger that logs a flush's own rows of a verb is there, enabled and of
this version (it knows ``FLUSH_ROWS``)."""
_NO_BEFORE_ROW_TRIGGER = (
    " AND NOT EXISTS (SELECT 1 FROM pg_trigger b WHERE b.tgrelid = to_regclass(%s) "
    "AND NOT b.tgisinternal AND b.tgtype & {mask} = {mask})"
)
"""For INSERTs and UPDATEs: no ``BEFORE`` row trigger of the verb may store something
else than the flush assigned (tgtype: row 1, before 2, insert 4, update 16); with one,
the flush logs its own rows, and the database's version is logged too
(docs/raw-sql.md). A deletion's rows are read from what was deleted, whatever such a
trigger did."""
_VERB_BITS = {"INSERT": 4, "UPDATE": 16}
_PG_SET = f"SELECT set_config('{ACTOR_SETTING}', %s, true)"
_SQLITE_SET = f"UPDATE {STATE} SET actor = ? WHERE id = 1"
_SQLITE_MARK = (
    f"INSERT INTO {PENDING} (seq, log_table, kind, entity_type, action, changed_objects, "
    f"changed) VALUES ({MARK_SEQ}, '', 'FLUSH', 0, 0, '{{}}', '[]')"
)
_PG_CAPTURE_PENDING = f"""DO $auditkeeper$
DECLARE
    names TEXT;
BEGIN
    SELECT string_agg(format('%I.%I', n.nspname, t.tgname), ', ') INTO names
      FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgconstraint <> 0 AND t.tginitdeferred
       AND (t.tgname LIKE '%{CAPTURE_SUFFIX}' OR t.tgname LIKE '%{FLUSHED_SUFFIX}');
    IF names IS NOT NULL THEN
        EXECUTE 'SET CONSTRAINTS ' || names || ' IMMEDIATE';
        EXECUTE 'SET CONSTRAINTS ' || names || ' DEFERRED';
    END IF;
END
$auditkeeper$"""
_CONTROL = ("PRAGMA", "SHOW", "BEGIN", "COMMIT", "ROLLBACK")
_CHANGES = ("INSERT", "UPDATE", "DELETE", "MERGE")
_NOTHING, _READS, _DML, _OTHER = "nothing", "reads", "dml", "other"
"""What raw SQL text does (``_text_kind``). A read may call a function that changes
rows (``_owe_actor``); only a DML statement gets a transaction of its own on an
AUTOCOMMIT connection: DDL, VACUUM or CALL may change data too, but some refuse to run
in a transaction."""
_LEADING_COMMENTS = re.compile(r"(?:\s+|/\*.*?\*/|--[^\n]*)*", re.DOTALL)
_DML_WORD = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


_watched: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines known to be watched: asked at every session transaction's start, where three
``event.contains`` lookups cost more than the rest of that hook."""


def watch_engine(engine: Engine) -> None:
    """Tell the capture triggers of ``engine``'s database who acts (idempotent)."""
    if engine in _watched or engine.dialect.name not in ("postgresql", "sqlite"):
        return
    _watched.add(engine)
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "rollback_savepoint", _forget)
        event.listen(engine, "commit", _before_commit)
        event.listen(engine, "after_cursor_execute", _after_execute)
        event.listen(engine, "handle_error", _on_error)
        event.listen(engine, "rollback", _before_rollback)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "before_cursor_execute", _mark_flushed, retval=True)


def unwatch_engine(engine: Engine) -> None:
    """Stop telling them."""
    _watched.discard(engine)
    if event.contains(engine, "before_cursor_execute", _before_execute):
        event.remove(engine, "before_cursor_execute", _before_execute)
        event.remove(engine, "rollback_savepoint", _forget)
        event.remove(engine, "commit", _before_commit)
        event.remove(engine, "after_cursor_execute", _after_execute)
        event.remove(engine, "handle_error", _on_error)
        event.remove(engine, "rollback", _before_rollback)
    if event.contains(engine, "before_cursor_execute", _mark_flushed):
        event.remove(engine, "before_cursor_execute", _mark_flushed)


def transaction_uuid(connection: Connection) -> uuid.UUID:
    """One id per transaction of ``connection``, shared by the flush's rows and the
    SQLite triggers' rows of that transaction."""
    transaction = connection.get_transaction()
    held = connection.info.get(_TRANSACTION)
    if held is not None and transaction is not None and held[0]() is transaction:
        found: uuid.UUID = held[1]
        return found
    fresh = uuid.uuid4()
    if transaction is not None:
        connection.info[_TRANSACTION] = (weakref.ref(transaction), fresh)
    return fresh


def marked_connections() -> tuple[Connection, ...]:
    """The SQLite connections whose statements were marked since the last call (a
    failed flush leaves its connection behind, closed or rolled back: skipped)."""
    found = _marked.get()
    _marked.set(())
    return tuple(c for c in found if not c.closed and c.info.get(_MARKED))


def take_pending(connection: Connection, log_table: str) -> list[dict[str, Any]]:
    """SQLite: end the flush's mark and take the rows its triggers left pending (the
    caller drops those it logs itself and writes the rest), in one statement. Without
    a mark, the triggers left nothing pending. ``changed_objects`` stays JSON text:
    most rows are dropped, and only the rest need their documents decoded."""
    if not connection.info.pop(_MARKED, None) or not connection.info.get(_HAS_STATE):
        return []
    cursor = connection.connection.cursor()
    try:
        cursor.execute(
            f"DELETE FROM {PENDING} WHERE seq = {MARK_SEQ} OR log_table = ? RETURNING seq, "
            "kind, entity_type, action, number_identifier, entity_key, changed_objects, "
            "changed",
            (log_table,),
        )
        names = [d[0] for d in cursor.description]
        taken = sorted(cursor.fetchall())  # RETURNING promises no order: by seq
    finally:
        cursor.close()
    rows = [dict(zip(names, row, strict=True)) for row in taken if row[0] != MARK_SEQ]
    for row in rows:
        row["changed"] = values.loads(row["changed"])
    return rows


def _mark_flushed(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """PostgreSQL: start the text of a change the session logs itself (a flush's, a
    Python-logged bulk statement's) with ``FLUSHED``, so that the triggers check its
    rows against those already written; any other change they log without looking. A
    flush's INSERT that the table's statement trigger may log (capture/inserts.py), or
    its UPDATEs or DELETEs merged into one statement (capture/merged.py), start with the
    table's announcement and ``FLUSH_ROWS`` instead. A one-record flush's UPDATE or
    DELETE may carry the record's audit row (capture/carried.py)."""
    if (
        flushing.get()
        and context is not None
        and (context.isinsert or context.isupdate or context.isdelete)
        and not context.execution_options.get(OWN_STATEMENT)
    ):
        table: Any = getattr(getattr(context.compiled, "statement", None), "table", None)
        if context.isinsert:
            trigger = inserts.chosen(table)
            if trigger is not None and _statement_trigger_ready(
                connection, cursor, table, trigger, "INSERT"
            ):
                inserts.note_announced(table)
                return f"{flush_rows_prefix(table, connection.dialect)} {statement}", parameters
        else:
            verb = "UPDATE" if context.isupdate else "DELETE"
            trigger = merged.chosen(table, verb, executemany)
            if trigger is not None and _statement_trigger_ready(
                connection, cursor, table, trigger, verb
            ):
                one = merged.as_one_statement(connection, context, parameters, executemany)
                if one is not None:
                    return one
        if not context.isinsert:
            statement, parameters = carried.carry(
                connection, statement, parameters, context, executemany
            )
        return f"{FLUSHED} {statement}", parameters
    return statement, parameters


@dataclass
class _StatementTriggersTold:
    """What a connection's transaction has told about the statement triggers that log
    a flush's own rows: whether each table's trigger of a verb is ready, and the flush
    time last set."""

    transaction: weakref.ref[Any]
    ready: dict[tuple[Any, str], bool] = field(default_factory=dict)
    stamp: dt.datetime | None = None


def _statement_trigger_ready(
    connection: Connection, cursor: Any, table: Any, trigger: str, verb: str
) -> bool:
    """Whether ``table``'s statement trigger of ``verb`` is there, enabled and of this
    version, asked once per transaction; and, before the statement it is to log, that
    the triggers know the flush's time and who acts: one round trip, when any of it is
    news."""
    transaction = connection.get_transaction()
    if transaction is None:
        return False
    known: _StatementTriggersTold | None = connection.info.get(_STATEMENT_TRIGGERS)
    if known is None or known.transaction() is not transaction:
        known = _StatementTriggersTold(weakref.ref(transaction))
        connection.info[_STATEMENT_TRIGGERS] = known
    ready = known.ready
    if ready.get((table, verb)) is False:
        return False  # the flush logs the rows: nothing to tell the triggers first
    stamp = inserts.stamp()
    actor = current_actor()
    setting = actor_setting_to_send(connection, actor)
    asked, parameters = [], []
    if (table, verb) not in ready:
        name = regclass_text(table, connection.dialect)
        asked.append(_READY)
        parameters += [name, trigger, FLUSH_ROWS]
        if verb in _VERB_BITS:
            asked[-1] += _NO_BEFORE_ROW_TRIGGER.format(mask=3 | _VERB_BITS[verb])
            parameters.append(name)
    if stamp is not None and stamp is not known.stamp:
        asked.append(f"set_config('{FLUSHED_AT}', %s, true)")
        parameters.append(stamp.isoformat())
    if setting is not None:
        asked.append(f"set_config('{ACTOR_SETTING}', %s, true)")
        parameters.append(setting)
    if asked:
        query = _positional(f"SELECT {', '.join(asked)}", connection.dialect.paramstyle)
        cursor.execute(query, parameters)
        answer = cursor.fetchone()
        if (table, verb) not in ready:
            ready[(table, verb)] = bool(answer[0])
        known.stamp = stamp
        if setting is not None:
            note_actor_set(connection, actor)
    return ready[(table, verb)]


def _before_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if context is not None and context.execution_options.get(OWN_STATEMENT):
        return
    if context is not None and not (
        context.is_text or context.isinsert or context.isupdate or context.isdelete
    ):
        return  # a compiled SELECT changes nothing
    kind = _DML
    if context is not None and context.is_text:
        kind = _text_kind(statement)
        if kind == _READS:
            _owe_actor(connection, cursor)
        if kind in (_NOTHING, _READS):
            return
    transaction = connection.get_transaction()
    if transaction is None:
        return
    sqlite = connection.dialect.name == "sqlite"
    if sqlite and not _has_state(connection, cursor):
        return
    if kind == _DML:
        _before_change_on_autocommit(connection, cursor, statement, context)
    actor = current_actor()
    if not sqlite:
        _log_pending_of_another_actor(connection, cursor, transaction, actor)
    sent_now, sent_actor = _sent(connection, transaction)
    has_it = sent_now and sent_actor is actor
    if flushing.get():
        if sqlite and not connection.info.get(_MARKED):
            cursor.execute(_SQLITE_MARK)
            connection.info[_MARKED] = True
            _marked.set((*_marked.get(), connection))
        if sqlite or not sent_now or has_it:
            # The flush logs its own rows, and on PostgreSQL they set the actor for
            # the triggers that log its cascades. Sent here only to replace another
            # actor's: a flush without rows of its own may still cascade.
            return
    elif has_it:
        return  # this transaction has it already (actors are immutable)
    query = _SQLITE_SET if sqlite else _positional(_PG_SET, connection.dialect.paramstyle)
    cursor.execute(query, (actor_setting(connection, actor),))
    note_actor_set(connection, actor)


_MARKERS = {"qmark": "?", "numeric": ":{}", "numeric_dollar": "${}"}
"""Positional placeholders other than ``%s``, numbered from 1 where they are numbered."""


@functools.lru_cache(maxsize=64)
def _positional(query: str, paramstyle: str) -> str:
    """``query``, written with ``%s`` placeholders for the driver's cursor (psycopg,
    psycopg2 and pg8000 take them), with the placeholders of ``paramstyle`` instead
    (asyncpg's ``$1``)."""
    marker = _MARKERS.get(paramstyle)
    if marker is None:
        return query
    first, *rest = query.split("%s")
    return first + "".join(marker.format(n) + part for n, part in enumerate(rest, start=1))


def _text_kind(statement: str) -> str:
    """``_NOTHING``, ``_READS``, ``_DML`` or ``_OTHER``, from the statement's first word
    after any comments. A ``WITH`` or an ``EXPLAIN`` is DML when it holds one (a
    data-modifying CTE, ``EXPLAIN ANALYZE UPDATE``), so its rows get the actor; a false
    alarm (the word in a literal) costs only the actor's round trip."""
    comments = _LEADING_COMMENTS.match(statement)  # matches always, maybe nothing
    start = comments.end() if comments else 0
    head = statement[start : start + 8].upper()
    if head.startswith(("WITH", "EXPLAIN")):
        return _DML if _DML_WORD.search(statement, start) else _READS
    if head.startswith("SELECT"):
        return _READS
    if head.startswith(_CONTROL):
        return _NOTHING
    return _DML if head.startswith(_CHANGES) else _OTHER


def _sent(connection: Connection, transaction: Any) -> tuple[bool, Any]:
    """Whether ``transaction`` has had an actor set, and which one."""
    sent = connection.info.get(_SENT)
    if sent is None or sent[0]() is not transaction:
        return False, None
    return True, sent[1]


def actor_setting(connection: Connection, actor: Any) -> str:
    """What the triggers read to learn who acts: the actor's columns and the
    transaction's id, as JSON."""
    return values.dumps(
        actor_columns(actor) | {"transaction_id": str(transaction_uuid(connection))}
    )


def actor_setting_to_send(connection: Connection, actor: Any) -> str | None:
    """PostgreSQL: ``actor_setting`` for auditkeeper's own statement to set, or None when
    this transaction's setting names ``actor`` already (then ``note_actor_set``)."""
    transaction = connection.get_transaction()
    if transaction is None or connection.dialect.name != "postgresql":
        return None
    sent_now, sent_actor = _sent(connection, transaction)
    if sent_now and sent_actor is actor:
        return None
    return actor_setting(connection, actor)


def actor_to_announce(connection: Connection) -> str | None:
    """PostgreSQL, before a statement whose changes the capture triggers will log: the
    ``actor_setting`` to send with the caller's own query (then ``note_actor_set``),
    or None when the triggers know the actor already. Changes still pending in another
    actor's name are logged first, as before any statement."""
    transaction = connection.get_transaction()
    if transaction is None or connection.dialect.name != "postgresql":
        return None
    actor = current_actor()
    cursor = connection.connection.cursor()
    try:
        _log_pending_of_another_actor(connection, cursor, transaction, actor)
    finally:
        cursor.close()
    return actor_setting_to_send(connection, actor)


def note_actor_set(connection: Connection, actor: Any) -> None:
    """PostgreSQL: auditkeeper's own statement (a flush's rows, a bulk statement's
    check) has set ``auditkeeper.actor`` to ``actor`` (``actor_setting``); statements
    in the same name need not send it again."""
    transaction = connection.get_transaction()
    if transaction is not None:
        connection.info[_SENT] = (weakref.ref(transaction), actor)


def _log_pending_of_another_actor(
    connection: Connection, cursor: Any, transaction: Any, actor: Any
) -> None:
    """PostgreSQL's deferred triggers read the actor at commit. Before this transaction
    changes data in another actor's name, the changes made so far are logged, in the
    name of the actor who made them."""
    last = connection.info.get(_LAST_ACTOR)
    if last is not None and last[0]() is transaction:
        if last[1] is actor:
            return  # every statement of a flush comes here: no new state for them
        _pay_owed_actor(connection, cursor)
        connection.info.pop(_OWED, None)  # its changes are logged now
        cursor.execute(_PG_CAPTURE_PENDING)
    connection.info[_LAST_ACTOR] = (weakref.ref(transaction), actor)


def _owe_actor(connection: Connection, cursor: Any) -> None:
    """PostgreSQL, before a raw read: a function it calls may change rows, which the
    deferred triggers log at commit in the name the setting then gives. The actor is
    told by then (``_pay_owed_actor``: at commit, or before another actor's changes are
    logged) rather than now, since most reads change nothing: a transaction that tells
    the actor anyway (a flush, a raw change) pays nothing more, a committed one that
    only reads pays one round trip at commit. On a connection in AUTOCOMMIT the read
    commits alone, before anything could be told: its changes have no actor."""
    transaction = connection.get_transaction()
    if (
        transaction is None
        or connection.dialect.name != "postgresql"
        or _idle_in_autocommit(connection)
    ):
        return
    actor = current_actor()
    sent_now, sent_actor = _sent(connection, transaction)
    if sent_now and sent_actor is actor:
        return
    _log_pending_of_another_actor(connection, cursor, transaction, actor)
    connection.info[_OWED] = (weakref.ref(transaction), actor)


def _pay_owed_actor(connection: Connection, cursor: Any) -> None:
    """Tell the triggers the actor of the raw reads since the actor last changed, if
    nothing has told them since (``_owe_actor``)."""
    owed = connection.info.get(_OWED)
    transaction = connection.get_transaction()
    if owed is None or transaction is None or owed[0]() is not transaction:
        return
    sent_now, sent_actor = _sent(connection, transaction)
    if sent_now and sent_actor is owed[1]:
        return
    query = _positional(_PG_SET, connection.dialect.paramstyle)
    cursor.execute(query, (actor_setting(connection, owed[1]),))
    note_actor_set(connection, owed[1])


def _has_state(connection: Connection, cursor: Any) -> bool:
    """Whether this SQLite database has capture triggers. Only a yes is kept for the
    connection: they may be installed later (``Auditkeeper.create_all`` on an engine
    already watched), and its changes must carry the actor from then on."""
    if connection.info.get(_HAS_STATE):
        return True
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE,))
    found = cursor.fetchone() is not None
    if found:
        connection.info[_HAS_STATE] = True
    return found


def _before_commit(connection: Connection) -> None:
    if _SCOPE in connection.info:
        _end(connection, commit=True)
    elif _OWED in connection.info:
        cursor = connection.connection.cursor()
        try:
            _pay_owed_actor(connection, cursor)
        finally:
            cursor.close()
            connection.info.pop(_OWED, None)
    else:
        _forget_sqlite_actor(connection)


def _forget_sqlite_actor(connection: Connection) -> None:
    """SQLite: the actor must not outlive the transaction: another program's raw SQL
    would be logged in this user's name."""
    sent = connection.info.pop(_SENT, None)
    if connection.dialect.name == "sqlite" and sent is not None:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(_SQLITE_SET, (None,))
        finally:
            cursor.close()


# -- AUTOCOMMIT connections ---------------------------------------------------------
#
# On a connection in AUTOCOMMIT each statement commits alone: a flush's change would
# commit before its audit row (PostgreSQL's check at commit would then log it a second
# time, without the actor), and the actor told to the triggers would outlive, or die
# with, the statement that told it. So a change on such a connection runs in a
# transaction auditkeeper begins just before it and commits as soon as the change is
# logged: a flush or an audited bulk statement after its audit rows (``commit_begun``),
# a raw statement right after it. Statements that are not changes (SELECT, VACUUM, DDL
# run as text) stay outside, as the application asked.
#
# One exception: SQLite cannot commit while a statement's RETURNING rows are still to
# be read, and they are read after the statement's hooks. Its changes (and its triggers'
# rows) are all made when it runs, though, and its capture triggers run inside it; so
# such a statement runs alone, as sent, and the actor told for it is taken back right
# after it (``_ALONE``).

_FLUSH = "flush"
"""A transaction begun for a flush or an audited bulk statement: ``commit_begun``."""
_STATEMENT = "statement"
"""A transaction begun for one raw change: committed after it."""
_ALONE = "alone"
"""SQLite, a change that returns rows: no transaction, its actor taken back after it."""


def begin_on_autocommit(connection: Connection) -> None:
    """Begin the transaction of a flush or an audited bulk statement now, if
    ``connection`` is in AUTOCOMMIT, rather than at its first change: reads made for
    its log (old values, locks) then belong to it. ``commit_begun`` ends it."""
    if _SCOPE not in connection.info and _idle_in_autocommit(connection):
        cursor = connection.connection.cursor()
        try:
            _begin(connection, cursor, _FLUSH)
        finally:
            cursor.close()


def commit_begun() -> None:
    """Commit the transactions begun for the flush or bulk statement that just wrote
    its audit rows (nothing on a connection that is not in AUTOCOMMIT)."""
    begun = _begun.get()
    if begun:
        _begun.set(())
        for connection in begun:
            if not connection.closed and connection.info.get(_SCOPE) == _FLUSH:
                _end(connection, commit=True)


def _before_change_on_autocommit(
    connection: Connection, cursor: Any, statement: str, context: Any
) -> None:
    """``_before_execute``, for an INSERT, UPDATE, DELETE or MERGE."""
    if _SCOPE in connection.info or context is None or not _idle_in_autocommit(connection):
        return
    if flushing.get():
        _begin(connection, cursor, _FLUSH)
    elif connection.dialect.name == "sqlite" and _returns_rows(statement, context):
        _forget_transaction(connection)
        connection.info[_SCOPE] = _ALONE
    else:
        _begin(connection, cursor, _STATEMENT)


def _idle_in_autocommit(connection: Connection) -> bool:
    """Whether ``connection`` commits each statement alone, and no transaction is
    open on it: asked of the driver (SQLAlchemy's ``isolation_level`` sets its
    AUTOCOMMIT, and execution options can change it per connection)."""
    pooled = connection.connection
    adapted: Any = pooled.dbapi_connection  # as SQLAlchemy adapts the driver's
    if connection.dialect.name == "sqlite":
        return getattr(adapted, "isolation_level", "") is None and not getattr(
            pooled.driver_connection,
            "in_transaction",
            False,  # sqlite3's, aiosqlite's
        )
    if getattr(adapted, "autocommit", False) is not True:
        return False  # every statement of a transaction asks: the answer comes first
    driver: Any = pooled.driver_connection
    status = getattr(getattr(driver, "info", None), "transaction_status", None)  # psycopg 3
    if status is None and hasattr(adapted, "get_transaction_status"):  # psycopg2
        status = adapted.get_transaction_status()
    return status in (None, 0)  # 0: idle, in libpq's terms


def _returns_rows(statement: str, context: Any) -> bool:
    compiled = context.compiled
    if compiled is not None and not context.is_text:
        return bool(getattr(compiled, "effective_returning", None))
    return _RETURNING.search(statement) is not None


def _begin(connection: Connection, cursor: Any, scope: str) -> None:
    _forget_transaction(connection)  # all it knew was of transactions already committed
    cursor.execute("BEGIN")
    connection.info[_SCOPE] = scope
    if scope == _FLUSH:
        _begun.set((*_begun.get(), connection))


def _end(connection: Connection, *, commit: bool) -> None:
    """End what was begun for a change on ``connection``: commit it (or roll it back)
    and forget the actor told for it."""
    scope = connection.info.pop(_SCOPE)
    try:
        if commit or scope == _ALONE:
            _forget_sqlite_actor(connection)
        if scope != _ALONE:
            _send_end(connection, "COMMIT" if commit else "ROLLBACK")
    finally:
        _forget_transaction(connection)


def _send_end(connection: Connection, statement: str) -> None:
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statement)
    except connection.dialect.loaded_dbapi.Error as error:
        # As SQLAlchemy raises a failed COMMIT (the check at commit refusing).
        raise DBAPIError.instance(
            statement, None, error, connection.dialect.loaded_dbapi.Error
        ) from error
    finally:
        cursor.close()


def _forget_transaction(connection: Connection) -> None:
    for key in _PER_TRANSACTION:
        connection.info.pop(key, None)


def _after_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    """A raw change on an AUTOCOMMIT connection, logged: commit it."""
    if connection.info.get(_SCOPE) in (_STATEMENT, _ALONE):
        _end(connection, commit=True)


def _on_error(context: ExceptionContext) -> None:
    """A failed statement ends the transaction begun for it, or for its flush: in
    AUTOCOMMIT nobody else would roll it back."""
    connection = context.connection
    if (
        connection is not None
        and not context.is_disconnect
        and not connection.closed
        and _SCOPE in connection.info
    ):
        # The statement's own error is the one to raise; a connection that cannot
        # even roll back is one SQLAlchemy is about to discard.
        with contextlib.suppress(DBAPIError):
            _end(connection, commit=False)


def _before_rollback(connection: Connection) -> None:
    """A failed flush's rollback: in AUTOCOMMIT the driver's own rollback may send
    nothing (psycopg2), so the transaction begun for the flush is rolled back here."""
    connection.info.pop(_OWED, None)
    if _SCOPE in connection.info:
        _end(connection, commit=False)


def _forget(connection: Connection, name: Any, context: Any) -> None:
    """A rolled-back savepoint takes the setting (and the flush's mark) back with it."""
    connection.info.pop(_SENT, None)
    connection.info.pop(_MARKED, None)
