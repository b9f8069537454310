"""A flush's UPDATEs or DELETEs of one table merged into one statement, which the
table's statement trigger logs set-based (PostgreSQL).

SQLAlchemy sends a flush's updates and deletions one statement per row (an
``executemany``); the flush then built each record's documents in Python, sent them,
and the row trigger checked each at commit. When a flush only updates, or only
deletes, records of one audited table, the statement trigger can log them instead:
the flush's ``executemany`` goes as one announced statement of the same rows
(``as_one_statement``),

- ``DELETE FROM t WHERE key = ANY(%(keys)s)``, or
- ``UPDATE t SET a = v.a, ... FROM unnest(%(keys)s, %(a)s, ...) AS v(...) WHERE key = v.key``,

and the trigger writes every row's documents from its transition tables in one
``INSERT ... SELECT``, as the flush's own rows (capture/triggers/postgresql.py). The
row count is the one the ``executemany`` had, so SQLAlchemy's check of it stands
(bench/README.md, fifteenth session).

The trigger's documents are the records as stored. They are the flush's when every
column's stored value reads alike in SQL and in Python (``inserts.set_based_target``) and,
for an update, every value the application assigned does too, in the session's time
zone: those are checked before the flush (``choose``). Everything else is left to the
flush, record by record: the rows of a statement not merged (one record's, an
assignment of an SQL expression, a column the flush sets that was not checked) are
logged by the flush as before.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.sql.schema import Column

from ..model.sql_values import reads_alike
from .context import current_actor
from .events import has_annotations
from .inserts import session_zone, set_based_target
from .triggers import flush_rows_prefix

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["as_one_statement", "choose", "chosen", "forget", "logged_by_trigger"]

_VALUES = "auditkeeper_values"
"""The name of the merged UPDATE's rows, and the start of its parameters' names."""


@dataclass
class _Choice:
    """The table whose flushed UPDATEs or DELETEs may be merged, and what is known of
    them."""

    table: Table
    verb: str
    trigger: str
    key: Column[Any]
    audited: frozenset[Column[Any]]
    checked: frozenset[Column[Any]]
    """For updates: the audited columns whose assigned values were checked."""
    sent: set[Any] = field(default_factory=set)
    """The keys of the records whose rows the statement trigger logged."""


_chosen: ContextVar[_Choice | None] = ContextVar("auditkeeper_merged", default=None)


def choose(
    recorder: Recorder,
    session: Session,
    new: list[InstanceState[Any]],
    dirty: list[InstanceState[Any]],
    deleted: list[InstanceState[Any]],
) -> None:
    """Before a flush: whether its UPDATEs or its DELETEs may be merged. Only when it
    does nothing else (so the log keeps its order), to two or more records of one
    audited class whose rows the statement trigger can write; not when an actor is
    required and missing: the flush refuses that."""
    _chosen.set(None)
    if new or (dirty and deleted) or (current_actor() is None and recorder.require_actor):
        return
    verb, states = ("UPDATE", dirty) if dirty else ("DELETE", deleted)
    mappers = {state.mapper for state in states}
    if len(states) < 2 or len(mappers) != 1:
        return
    (mapper,) = mappers
    plan = recorder.plan_for(mapper)
    target = None if plan is None else set_based_target(mapper, plan, verb)
    if (
        plan is None
        or target is None
        or mapper.version_id_col is not None
        or any(has_annotations(state) for state in states)
    ):
        return
    table, trigger, tests = target
    dialect = session.get_bind(mapper=mapper).dialect
    if dialect.name != "postgresql" or dialect.paramstyle not in ("pyformat", "format"):
        return
    connection = session.connection(bind_arguments={"mapper": mapper})
    columns = {audited.key: audited.column for audited in plan.columns}
    checked: set[Column[Any]] = set()
    if verb == "UPDATE":
        zone = session_zone(connection)
        if zone is None:
            return
        keys = {audited.key for audited in plan.primary_key}
        for state in states:
            given = state.dict
            for key, test, _ in tests:
                if key not in state.committed_state:
                    continue  # not changed
                if key in keys or not test(given.get(key), zone):
                    return
                checked.add(columns[key])
    recorder.verify_engine(connection)  # as before the flush's own rows
    _chosen.set(
        _Choice(
            table,
            verb,
            trigger,
            plan.primary_key[0].column,
            frozenset(columns.values()),
            frozenset(checked),
        )
    )


def chosen(table: Any, verb: str, executemany: bool) -> str | None:
    """The name of the statement trigger that may log this flush statement's rows (a
    ``verb`` on ``table``), or None when the flush logs them: always for one record's
    UPDATE, which the record's own statement may carry (capture/carried.py)."""
    choice = _chosen.get()
    if (
        choice is None
        or choice.table is not table
        or choice.verb != verb
        or (verb == "UPDATE" and not executemany)
    ):
        return None
    return choice.trigger


def as_one_statement(
    connection: Connection, context: Any, parameters: Any, executemany: bool
) -> tuple[str, Any] | None:
    """The chosen table's flushed statement as one announced statement of the same rows,
    for the statement trigger to log (once ``chosen`` named its trigger and the
    transaction found it ready); None to send the statement as it is, its rows logged
    by the flush. The parameters are the driver's values already."""
    choice = _chosen.get()
    assert choice is not None
    compiled = context.compiled
    rows = parameters if executemany else [parameters]
    named = connection.dialect.paramstyle == "pyformat"
    positions = {name: i for i, name in enumerate(compiled.positiontup or ())}
    escaped = compiled.escaped_bind_names or {}

    def values_of(name: str) -> list[Any]:
        at: Any = escaped.get(name, name) if named else positions[name]
        return [row[at] for row in rows]

    dialect = connection.dialect
    if choice.verb == "DELETE":
        ((name, bind),) = compiled.binds.items()  # the key: the class has no version counter
        assert bind.key == choice.key.key, (bind.key, choice.key.key)
        keys = values_of(name)
        statement, arrays = _delete(choice, dialect), [keys]
    else:
        if compiled.effective_returning:
            return None  # the flush's, as SQLAlchemy reads what the statement returns
        merged = _merged_update(choice, compiled)
        if merged is None:
            return None
        key_name, assigned = merged
        keys = values_of(key_name)
        statement = _update(choice, dialect, [column for _, column in assigned])
        arrays = [keys, *(values_of(name) for name, _ in assigned)]
    if any(len({type(value) for value in values} - {type(None)}) > 1 for values in arrays):
        return None  # a driver sends an array of one type: one column got an int and a Decimal
    choice.sent.update(keys)
    sent: Any = (
        {f"{_VALUES}_{i}": values for i, values in enumerate(arrays)} if named else tuple(arrays)
    )
    statement = f"{flush_rows_prefix(choice.table, dialect)} {statement}"
    return statement, [sent] if executemany else sent


def _merged_update(
    choice: _Choice, compiled: Any
) -> tuple[str, list[tuple[str, Column[Any]]]] | None:
    """The name of the key's parameter and the assigned columns' (by the binds' names),
    when every audited column the statement sets was checked, and every other one is of
    a plain type (``unnest`` of an ``ARRAY`` column's arrays would flatten them)."""
    key_name = None
    assigned = []
    for name, bind in compiled.binds.items():
        if name == choice.key._label:
            key_name = name
            continue
        column = choice.table.c.get(bind.key)
        if column is None or (
            column not in choice.checked
            if column in choice.audited
            else reads_alike(column) is None  # an array of a type unnest may not give back
        ):
            return None
        assigned.append((name, column))
    if key_name is None or not assigned:
        return None
    return key_name, assigned


def _array(dialect: Dialect, column: Column[Any], index: int) -> str:
    """The ``index``-th parameter, an array of ``column``'s values."""
    placeholder = f"%({_VALUES}_{index})s" if dialect.paramstyle == "pyformat" else "%s"
    return f"CAST({placeholder} AS {column.type.compile(dialect=dialect)}[])"


def _key(choice: _Choice, dialect: Dialect) -> str:
    preparer = dialect.identifier_preparer
    return f"{preparer.format_table(choice.table)}.{preparer.format_column(choice.key)}"


def _delete(choice: _Choice, dialect: Dialect) -> str:
    table = dialect.identifier_preparer.format_table(choice.table)
    return (
        f"DELETE FROM {table} WHERE {_key(choice, dialect)} = ANY({_array(dialect, choice.key, 0)})"
    )


def _update(choice: _Choice, dialect: Dialect, columns: list[Column[Any]]) -> str:
    preparer = dialect.identifier_preparer
    arrays = ", ".join(
        _array(dialect, column, index) for index, column in enumerate([choice.key, *columns])
    )
    names = [f"{_VALUES}_{index}" for index in range(len(columns) + 1)]
    assignments = ", ".join(
        f"{preparer.format_column(column)} = {_VALUES}.{name}"
        for column, name in zip(columns, names[1:], strict=True)
    )
    return (
        f"UPDATE {preparer.format_table(choice.table)} SET {assignments} "
        f"FROM unnest({arrays}) AS {_VALUES}({', '.join(names)}) "
        f"WHERE {_key(choice, dialect)} = {_VALUES}.{names[0]}"
    )


def logged_by_trigger() -> tuple[Table | None, str, set[Any]]:
    """The table, verb and record keys whose rows the statement trigger logged in this
    flush (no table: none)."""
    choice = _chosen.get()
    if choice is None or not choice.sent:
        return None, "", set()
    return choice.table, choice.verb.lower(), choice.sent


def forget() -> None:
    """After a flush (or its failure)."""
    _chosen.set(None)
