"""Bulk ORM statements: ``session.execute(insert/update/delete(Model) ...)``.

They bypass the unit of work, so the flush hooks never see them. UPDATE and DELETE of a
table with capture triggers are left to the database, so that no row is read into
Python: on PostgreSQL the statement announces itself (a comment at the start of its
text), and the table's statement trigger logs its rows set-based (docs/bulk.md), or,
without a statement trigger, the row trigger logs them at commit; on SQLite the row
triggers log each row as it changes. A table without capture triggers gets them
wrapped: the rows they will touch are read (and locked, on PostgreSQL) with the
statement's own WHERE clause, the statement runs, updated rows are read again by primary
key, and the audit rows go out in one statement: at most three extra statements per bulk
statement, whatever the number of rows. INSERT gets a RETURNING clause for the audited
columns, so it costs one extra statement (the audit insert); on SQLite, a table with
capture triggers leaves its INSERTs to them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Insert, Table, event, select, tuple_
from sqlalchemy.engine import Connection, Result
from sqlalchemy.orm import Mapper, ORMExecuteState
from sqlalchemy.sql import ColumnElement

from ..errors import CaptureError
from .context import current_actor
from .document import build_row
from .plan import ClassPlan
from .trigger_state import actor_to_announce, begin_on_autocommit, flushing, note_actor_set
from .triggers import announcement, capture_triggers_enabled, statement_trigger_names

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["capture_bulk_statement"]


def capture_bulk_statement(recorder: Recorder, state: ORMExecuteState) -> Result[Any] | None:
    """Run an audited bulk UPDATE or DELETE and log each row it changed.

    Returns the statement's result, or None when the statement is not an audited bulk
    write (the session then runs it as usual).
    """
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    mapper = _target_mapper(recorder, state)
    if mapper is None:
        return None
    plan = recorder.plan_for(mapper)
    if plan is None:
        return None
    if state.is_insert:
        return _capture_insert(recorder, state, mapper, plan)
    verb = "update" if state.is_update else "delete"
    if verb == "delete" and plan.delete is None:
        return None
    if verb == "update" and plan.update is None and not plan.on_change:
        return None
    connection = state.session.connection(bind_arguments={"mapper": mapper})
    if current_actor() is None:
        recorder.require_an_actor([mapper])
    if connection.dialect.name == "postgresql":
        table = mapper.local_table
        # An UPDATE by primary key runs as many statements: left to the row trigger.
        by_key = isinstance(state.parameters, list)
        statement_trigger = (
            statement_trigger_names(table, plan).get(verb.upper())
            if isinstance(table, Table) and not by_key
            else None
        )
        logged, set_based = _left_to_trigger(connection, table, statement_trigger=statement_trigger)
        if set_based and isinstance(table, Table):
            # The table's statement trigger logs every row the statement changes, from its
            # transition tables; the statement announces itself (``announcement``).
            return _invoke_announced(state, connection, announcement(table, connection.dialect))
        if logged:
            return None  # the row trigger logs each row at commit
    elif _left_to_trigger(connection, mapper.local_table)[0]:
        return None  # SQLite's row triggers log each row as it changes, in SQL
    where = _criteria(state, plan)
    begin_on_autocommit(connection)  # the rows read are the rows changed
    before = _read(connection, plan, where, lock=True)
    result = _invoke(state)
    if not before:
        recorder.write(state.session, {})  # SQLite: rows its triggers left pending
        return result
    after = (
        _read(connection, plan, _by_keys(plan, list(before)), lock=False)
        if verb == "update"
        else {}
    )
    rows = []
    for key, old in before.items():
        row = build_row(plan, verb, old, after.get(key, old), key, dialect=connection.dialect.name)
        if row is not None:
            rows.append(row)
    recorder.write(state.session, {mapper: rows} if rows else {})
    return result


def _left_to_trigger(
    connection: Connection, table: Any, *, statement_trigger: str | None = None
) -> tuple[bool, bool]:
    """Whether ``table``'s capture triggers will log the statement, and whether its
    ``statement_trigger`` can (set-based): asked in the round trip that tells the
    triggers who acts, when they do not know yet (one statement)."""
    setting = actor_to_announce(connection)
    found = capture_triggers_enabled(
        connection, table, actor_setting=setting, statement_trigger=statement_trigger
    )
    if setting is not None:
        note_actor_set(connection, current_actor())
    return found


def _invoke_announced(
    state: ORMExecuteState, connection: Connection, comment: str, **kw: Any
) -> Result[Any]:
    """Run the statement (``kw``: as ``invoke_statement`` takes them) with ``comment``
    at the start of its text, where the triggers look for it: SQLAlchemy puts a
    statement's prefixes after its verb."""

    def put_first(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        return f"{comment} {statement}", parameters

    event.listen(connection, "before_cursor_execute", put_first, retval=True)
    try:
        return state.invoke_statement(**kw)
    finally:
        event.remove(connection, "before_cursor_execute", put_first)


def _invoke(state: ORMExecuteState, **kw: Any) -> Result[Any]:
    """Run the statement as a flush runs its own: it logs its rows itself, so SQLite's
    capture triggers keep theirs pending, for cascades only."""
    token = flushing.set(True)
    try:
        return state.invoke_statement(**kw)
    finally:
        flushing.reset(token)


def _capture_insert(
    recorder: Recorder, state: ORMExecuteState, mapper: Mapper[Any], plan: ClassPlan
) -> Result[Any] | None:
    """Run a bulk INSERT with RETURNING of the audited columns, and log each new row.
    Where the table has capture triggers, an upsert is left to them, and so is any
    INSERT on SQLite, and on PostgreSQL to the statement trigger, set-based."""
    statement = state.statement
    if plan.create is None or not isinstance(statement, Insert):
        return None
    if current_actor() is None:
        recorder.require_an_actor([mapper])
    connection = state.session.connection(bind_arguments={"mapper": mapper})
    if statement._post_values_clause is not None:  # ON CONFLICT
        if _left_to_trigger(connection, mapper.local_table)[0]:
            return None  # the capture trigger logs each inserted and each updated row
        raise CaptureError(
            f"INSERT ... ON CONFLICT on audited {plan.class_name} is audited only by the "
            "database's capture triggers (PostgreSQL, installed by create_all), which "
            f"{mapper.local_table.description} does not have; use session.merge() or "
            "separate inserts and updates"
        )
    if connection.dialect.name == "sqlite" and _left_to_trigger(connection, mapper.local_table)[0]:
        return None  # the row triggers log each new row
    asked = len(statement.returning_column_descriptions)
    pk = [c.column for c in plan.primary_key]
    table = mapper.local_table
    if connection.dialect.name == "postgresql" and isinstance(table, Table):
        trigger = statement_trigger_names(table, plan).get("INSERT")
        if trigger and _left_to_trigger(connection, table, statement_trigger=trigger)[1]:
            # The table's statement trigger logs each statement's new rows set-based.
            # A RETURNING clause has SQLAlchemy send many rows per statement
            # ("insertmanyvalues") rather than one statement per row.
            announced = statement if asked else statement.returning(*pk)
            comment = announcement(table, connection.dialect)
            return _invoke_announced(state, connection, comment, statement=announced)
    ours = statement.returning(*pk, *(c.column for c in plan.columns))
    frozen = _invoke(state, statement=ours).freeze()
    width = len(pk)
    rows = []
    for returned in frozen.data:
        values = returned[asked:]
        new = {c.key: v for c, v in zip(plan.columns, values[width:], strict=True)}
        row = build_row(
            plan, "create", {}, new, tuple(values[:width]), dialect=connection.dialect.name
        )
        if row is not None:
            rows.append(row)
    recorder.write(state.session, {mapper: rows} if rows else {})
    result = frozen()
    # Hand back only what the caller asked to be returned.
    return result.columns(*range(asked)) if asked else result


def _target_mapper(recorder: Recorder, state: ORMExecuteState) -> Mapper[Any] | None:
    """The audited mapper a statement writes to: its ORM entity, or the mapper of the
    table a Core statement names."""
    if state.bind_mapper is not None:
        return state.bind_mapper
    table = getattr(state.statement, "table", None)
    if not isinstance(table, Table):
        return None
    return recorder.mapper_for_table(table)


def _criteria(state: ORMExecuteState, plan: ClassPlan) -> ColumnElement[bool] | None:
    """The rows a statement touches: its WHERE clause, or the primary keys of an
    "UPDATE by primary key" executemany (``session.execute(update(M), [{...}, ...])``)."""
    parameters = state.parameters
    if isinstance(parameters, list) and parameters:
        keys = [tuple(p.get(c.key, p.get(c.name)) for c in plan.primary_key) for p in parameters]
        return _by_keys(plan, keys)
    whereclause: ColumnElement[bool] | None = getattr(state.statement, "whereclause", None)
    return whereclause


def _by_keys(plan: ClassPlan, keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
    columns: list[Column[Any]] = [c.column for c in plan.primary_key]
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return tuple_(*columns).in_(list(keys))


def _read(
    connection: Connection,
    plan: ClassPlan,
    where: ColumnElement[bool] | None,
    *,
    lock: bool,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """``{primary key: {attribute key: value}}`` of the rows matching ``where``."""
    pk = [c.column for c in plan.primary_key]
    query = select(*pk, *(c.column for c in plan.columns))
    if where is not None:
        query = query.where(where)
    if lock and connection.dialect.name == "postgresql":
        # Nobody may change these rows between this read and the statement.
        query = query.with_for_update(of=plan.columns[0].column.table)
    width = len(pk)
    return {
        tuple(row[:width]): {c.key: v for c, v in zip(plan.columns, row[width:], strict=True)}
        for row in connection.execute(query)
    }
