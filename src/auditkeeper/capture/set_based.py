"""A flush's statements whose rows the table's own triggers log (PostgreSQL).

A record's documents, in full, are most of what a flush sends to the log, and the check
at commit of each row the flush logged is most of the rest. The table's triggers can
write the same rows from the stored rows instead, and no check at commit is needed for
rows a trigger wrote itself. Their documents equal the ones the flush would build when
every value, as assigned or as loaded, reads alike in Python and in SQL
(``sql_values.reads_alike``: a decimal at the column's scale, a datetime in the
session's offset, and so on). Before each flush, one of two kinds of statement may be
chosen (``choose``):

- its INSERTs, when every new audited object is of one table: the statement trigger
  logs their rows set-based, one ``INSERT ... SELECT`` for each batch of rows the flush
  sends (its updates and deletions of other records stay the flush's, and are logged
  after them, as before);
- else the UPDATE or DELETE of its one changed record, when it changes no other
  audited object: the table's flush-rows row trigger logs it as the statement runs.
  Only one: a row trigger's INSERT costs more a row than the flush's one statement
  and the check at commit together (bench/README.md, eighth round), but spares a
  transaction the check's start and the flush's documents.

The chosen statements start with the table's announcement and ``FLUSH_ROWS``
(``Choice.prefix``), once the transaction has checked that the triggers are there and
of this version, and has set the flush's time and its actor (trigger_state); the flush
builds no row for them. Any other change, or a table without its triggers, is logged by
the flush as before. The log keeps the flush's order: the triggers' rows come first, and
are the flush's first kind of row (creations) or its only one.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.base import instance_state
from sqlalchemy.sql.schema import Column

from ..model.sql_values import exact_twin, reads_alike
from .context import current_actor
from .document import values_of
from .events import has_annotations
from .plan import ClassPlan
from .triggers import (
    flush_rows_prefix,
    flush_rows_trigger_name,
    single_table,
    statement_trigger_names,
)
from .triggers.common import FLUSH_ROWS

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["Choice", "announced", "choose", "chosen", "forget", "note_announced", "stamp"]

_Test = Callable[[Any, dt.tzinfo | None], bool]
_VERBS = {"create": "INSERT", "update": "UPDATE", "delete": "DELETE"}
"""The flush's kinds of change, as the statements that make them."""


@dataclass(frozen=True, slots=True)
class Choice:
    """The statements of a flush whose rows the table's statement trigger logs."""

    verb: str
    """``INSERT``, ``UPDATE`` or ``DELETE``."""
    table: Table
    trigger: str
    """The name of the trigger that logs the rows."""
    marker: str
    """What the source of the trigger's function of this version has."""

    def prefix(self, connection: Connection) -> str:
        """What starts the chosen statements: the table's announcement, then
        ``FLUSH_ROWS``."""
        return flush_rows_prefix(self.table, connection.dialect)


@dataclass(frozen=True, slots=True)
class _ColumnTests:
    key: str
    test: _Test
    unassigned: bool
    """A new record's value not assigned reads alike (``_unassigned_reads_alike``)."""
    updated_by_flush: bool
    """An update's value set by the flush itself (``onupdate``) reads alike."""


_chosen: ContextVar[Choice | None] = ContextVar("auditkeeper_chosen", default=None)
_announced: ContextVar[frozenset[tuple[str, Table]]] = ContextVar(
    "auditkeeper_announced", default=frozenset()
)
_stamp: ContextVar[dt.datetime | None] = ContextVar("auditkeeper_flush_stamp", default=None)


def choose(recorder: Recorder, session: Session, stashed: Mapping[Any, Mapping[str, Any]]) -> None:
    """Before a flush: its time, and which of its statements the statement trigger may
    log (the module's docstring). ``stashed``: the values ``before_flush`` read for
    each state. Nothing is chosen when an actor is required and missing: the flush
    refuses that."""
    _stamp.set(dt.datetime.now(dt.UTC))
    _announced.set(frozenset())
    _chosen.set(None)
    if current_actor() is None and recorder.require_actor:
        return
    found = _changes(recorder, session)
    if found is None:
        return
    verb, states = found
    mapper = states[0].mapper
    plan = recorder.plan_for(mapper)
    tests = None if plan is None else _tests(mapper, plan, verb)
    if plan is None or tests is None:
        return
    connection = session.connection(bind_arguments={"mapper": mapper})
    zone = _session_zone(connection)
    if zone is None:
        return
    for state in states:
        if not _reads_alike(verb, plan, state, stashed.get(state, {}), tests, zone):
            return
    recorder.verify_catalogue(connection)  # as before the flush's own rows
    table = mapper.local_table
    assert isinstance(table, Table)  # _tests
    if verb == "INSERT":
        name = statement_trigger_names(table, plan)[verb]
        _chosen.set(Choice(verb, table, name, FLUSH_ROWS))
    else:
        name = flush_rows_trigger_name(table)
        _chosen.set(Choice(verb, table, name, name))


def chosen(table: Any, verb: str) -> Choice | None:
    """The choice of this flush's ``verb`` statements of ``table``, if any."""
    choice = _chosen.get()
    if choice is None or choice.table is not table or choice.verb != verb:
        return None
    return choice


def note_announced(choice: Choice) -> None:
    _announced.set(_announced.get() | {(choice.verb, choice.table)})


def announced(table: Any, change: str) -> bool:
    """Whether the statement trigger logged this flush's ``change`` (``create``,
    ``update`` or ``delete``) of ``table``'s records."""
    return (_VERBS[change], table) in _announced.get()


def stamp() -> dt.datetime | None:
    """The running flush's time: its rows' ``created_at``, whoever writes them."""
    return _stamp.get()


def forget() -> None:
    """After a flush (or its failure)."""
    _chosen.set(None)
    _announced.set(frozenset())
    _stamp.set(None)


def _changes(recorder: Recorder, session: Session) -> tuple[str, list[InstanceState[Any]]] | None:
    """The kind of change the triggers may log and its objects, all of one class: the
    flush's creations; else its one update or deletion, when it has no other."""
    created = []
    for obj in session.new:
        state = instance_state(obj)
        plan = recorder.plan_for(state.mapper)
        if plan is not None and plan.create is not None:
            created.append(state)
    if created:
        return _of_one_mapper("INSERT", created)
    changed = []
    for verb, objects in (("DELETE", session.deleted), ("UPDATE", session.dirty)):
        for obj in objects:
            state = instance_state(obj)
            if recorder.plan_for(state.mapper) is not None:
                changed.append((verb, state))
                if len(changed) > 1:
                    return None
    if not changed:
        return None
    ((verb, state),) = changed
    return verb, [state]


def _of_one_mapper(
    verb: str, states: list[InstanceState[Any]]
) -> tuple[str, list[InstanceState[Any]]] | None:
    mapper = states[0].mapper
    return (verb, states) if all(s.mapper is mapper for s in states) else None


def _reads_alike(
    verb: str,
    plan: ClassPlan,
    state: InstanceState[Any],
    stashed: Mapping[str, Any],
    tests: tuple[_ColumnTests, ...],
    zone: dt.tzinfo,
) -> bool:
    """Whether the flush's row of ``state`` would be the trigger's."""
    if verb == "INSERT":
        given = state.dict
        return all(t.test(given[t.key], zone) if t.key in given else t.unassigned for t in tests)
    if verb == "UPDATE" and has_annotations(state):
        return False  # texts that join the update's row
    old, new = values_of(plan, state, stashed)
    if not all(t.test(old[t.key], zone) for t in tests):
        return False
    # A column the application did not assign gets its ``onupdate`` from the flush.
    assigned = state.committed_state
    return verb == "DELETE" or all(
        t.test(new[t.key], zone) and (t.key in assigned or t.updated_by_flush) for t in tests
    )


@functools.lru_cache(maxsize=512)
def _tests(mapper: Mapper[Any], plan: ClassPlan, verb: str) -> tuple[_ColumnTests, ...] | None:
    """Per audited column, what tells whether its values read alike (``_ColumnTests``).
    None when the class's ``verb`` statements cannot be left to the statement trigger
    at all."""
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or plan.collections
        or len(plan.primary_key) != 1
        or not single_table(mapper, plan)
        or verb not in statement_trigger_names(table, plan)
    ):
        return None
    tests = []
    for audited in plan.columns:
        column: Column[Any] = audited.column
        test = reads_alike(column)
        if test is None:
            return None
        tests.append(
            _ColumnTests(
                audited.key,
                test,
                _unassigned_reads_alike(column.default, column, test),
                _unassigned_reads_alike(column.onupdate, column, test),
            )
        )
    return tuple(tests)


def _unassigned_reads_alike(default: Any, column: Column[Any], test: _Test) -> bool:
    """Whether the value that ``default`` (a column's ``default`` or ``onupdate``) gives
    reads alike: None, a scalar that does, a value the database or an SQL expression
    computes, which the flush too would read back; not a Python function's, unless any
    value of the type reads alike."""
    if default is None:
        return True
    if getattr(default, "is_scalar", False):
        return test(getattr(default, "arg", None), None) or exact_twin(column)
    if getattr(default, "is_callable", False):
        return exact_twin(column)
    return True  # an SQL expression, run by the database


def _session_zone(connection: Connection) -> dt.tzinfo | None:
    """The session's time zone as psycopg tracks it (the server reports every change of
    it); None where that is not known, or not PostgreSQL."""
    if connection.dialect.name != "postgresql":
        return None
    info = getattr(connection.connection.driver_connection, "info", None)
    zone = getattr(info, "timezone", None)
    return zone if isinstance(zone, dt.tzinfo) else None
