"""The flush's INSERTs logged by the table's statement trigger, set-based (PostgreSQL).

A created record's document, in full and against null, is most of what a flush sends
to the log. The table's statement trigger can write it from the stored row instead, in
one ``INSERT ... SELECT`` per statement, and no check at commit is needed for rows a
trigger wrote itself. Its document equals the one the flush would build when every
value the application assigned reads alike in Python and in SQL
(``sql_values.reads_alike``: a decimal at the column's scale, a datetime in the
session's offset, and so on). So before a flush whose new rows are of one table and
all read alike, that table is chosen (``choose``). Its INSERT statements then start with
the table's announcement and ``FLUSH_ROWS`` (``flush_rows_prefix``), once the
transaction has checked that the triggers are there and of this version, and has set
the flush's time and its actor (trigger_state); the flush builds no row for them. Any
other new row, or a table without its triggers, is logged by the flush as before
(bench/README.md, seventh round).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.sql.schema import Column

from ..model.sql_values import exact_twin, reads_alike
from .context import current_actor
from .plan import ClassPlan
from .triggers import single_table, statement_trigger_names

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = [
    "announced",
    "choose",
    "chosen",
    "forget",
    "note_announced",
    "session_zone",
    "set_based_target",
    "stamp",
]

_Test = Callable[[Any, dt.tzinfo | None], bool]

_chosen: ContextVar[tuple[Table, str] | None] = ContextVar("auditkeeper_chosen", default=None)
"""The table a flush leaves its new rows to the statement trigger of, and that trigger."""
_announced: ContextVar[frozenset[Table]] = ContextVar("auditkeeper_announced", default=frozenset())
_stamp: ContextVar[dt.datetime | None] = ContextVar("auditkeeper_flush_stamp", default=None)


def choose(recorder: Recorder, session: Session, new: list[InstanceState[Any]]) -> None:
    """Before a flush: its time, and whether the statement trigger may log its ``new``
    rows: when they are all of one audited table (so that the log keeps the flush's
    order, creations first, in the order the objects were added) and each value reads
    alike. Not when an actor is required and missing: the flush refuses that."""
    _stamp.set(dt.datetime.now(dt.UTC))
    _announced.set(frozenset())
    _chosen.set(None)
    if current_actor() is None and recorder.require_actor:
        return
    created = [
        (state, plan)
        for state in new
        if (plan := recorder.plan_for(state.mapper)) is not None and plan.create is not None
    ]
    mappers = {state.mapper for state, _ in created}
    if len(mappers) != 1:
        return
    (mapper,) = mappers
    target = set_based_target(mapper, created[0][1], "INSERT")
    if target is None:
        return
    table, trigger, tests = target
    connection = session.connection(bind_arguments={"mapper": mapper})
    zone = session_zone(connection)
    if zone is None:
        return
    for state, _ in created:
        given = state.dict
        for key, test, default_reads_alike in tests:
            if not (test(given[key], zone) if key in given else default_reads_alike):
                return
    recorder.verify_engine(connection)  # as before the flush's own rows
    _chosen.set((table, trigger))


def chosen(table: Any) -> str | None:
    """The name of the statement trigger that may log this flush's INSERTs into
    ``table``, or None when the flush logs them."""
    chosen = _chosen.get()
    return chosen[1] if chosen is not None and chosen[0] is table else None


def note_announced(table: Table) -> None:
    _announced.set(_announced.get() | {table})


def announced() -> frozenset[Table]:
    """The tables whose INSERTs of this flush the statement trigger logged."""
    return _announced.get()


def stamp() -> dt.datetime | None:
    """The running flush's time: its rows' ``created_at``, whoever writes them."""
    return _stamp.get()


def forget() -> None:
    """After a flush (or its failure)."""
    _chosen.set(None)
    _announced.set(frozenset())
    _stamp.set(None)


def set_based_target(
    mapper: Mapper[Any], plan: ClassPlan, verb: str
) -> tuple[Table, str, tuple[tuple[str, _Test, bool], ...]] | None:
    """The table whose statement trigger of ``verb`` may log ``mapper``'s rows, that
    trigger's name, and the tests of the values (``_set_based_tests``); None when the
    class's rows of that verb cannot be left to it."""
    tests = _set_based_tests(mapper, plan)
    table = mapper.local_table
    if tests is None or not isinstance(table, Table):  # _set_based_tests: never a join
        return None
    trigger = statement_trigger_names(table, plan).get(verb)
    return None if trigger is None else (table, trigger, tests)


@functools.lru_cache(maxsize=512)
def _set_based_tests(
    mapper: Mapper[Any], plan: ClassPlan
) -> tuple[tuple[str, _Test, bool], ...] | None:
    """Per audited column: its key, the test of an assigned value, and whether a value
    not assigned reads alike (None, a scalar default that does, a value the database
    or an SQL expression computes, which the flush too would read back; not a Python
    function's, unless any value of the type reads alike). None when the class cannot
    be left to its table's statement triggers at all: no statement triggers (a
    partitioned table), not one table of its own, a composite key, collections, or a
    column whose values may read otherwise in SQL."""
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or plan.collections
        or len(plan.primary_key) != 1
        or not single_table(mapper, plan)
        or not statement_trigger_names(table, plan)
    ):
        return None
    tests = []
    for audited in plan.columns:
        column: Column[Any] = audited.column
        test = reads_alike(column)
        if test is None:
            return None
        tests.append((audited.key, test, _unassigned_reads_alike(column, test)))
    return tuple(tests)


def _unassigned_reads_alike(column: Column[Any], test: _Test) -> bool:
    default = column.default
    if default is None:
        return True
    if getattr(default, "is_scalar", False):
        return test(getattr(default, "arg", None), None) or exact_twin(column)
    if getattr(default, "is_callable", False):
        return exact_twin(column)
    return True  # an SQL expression, run by the database


def session_zone(connection: Connection) -> dt.tzinfo | None:
    """The session's time zone as psycopg tracks it (the server reports every change of
    it); None where that is not known, or not PostgreSQL."""
    if connection.dialect.name != "postgresql":
        return None
    info = getattr(connection.connection.driver_connection, "info", None)
    zone = getattr(info, "timezone", None)
    return zone if isinstance(zone, dt.tzinfo) else None
