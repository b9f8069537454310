"""A flush's DELETEs logged by the table's statement trigger, set-based (PostgreSQL).

SQLAlchemy deletes a flush's records one statement per row (an ``executemany``), and
the flush then writes a document of each, which the row trigger checks at commit. When
a flush only deletes records, all of one audited table, the table's statement trigger
can log them instead: the flush sends its rows' keys in one announced statement,
``DELETE FROM t WHERE key = ANY(...)`` (``as_one_statement``), the trigger writes every
deleted row's document from its transition table in one ``INSERT ... SELECT``, and
nothing is built in Python or checked at commit (bench/README.md, fifteenth session).

A deleted record's document is the record as stored, which is what the trigger reads.
So a class qualifies when every audited column's stored value reads alike in SQL and in
Python (``inserts.set_based_tests``): the trigger's document is then the one the flush
would build from a fresh copy. Everything else is left to the flush as before: a flush
that also creates or updates records (its rows keep their order), a single deletion
(capture/carried.py sends it with the record's own statement), a class with a version
counter, a composite key, annotations, or no statement trigger of this version.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.sql.schema import Column

from .context import current_actor
from .events import has_annotations
from .inserts import set_based_tests
from .triggers import flush_rows_prefix, statement_trigger_names

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["as_one_statement", "choose", "chosen", "forget", "logged_by_trigger"]

_PARAMETER = "auditkeeper_keys"


@dataclass
class _Choice:
    table: Table
    trigger: str
    key: Column[Any]
    sent: bool = False
    """Whether a DELETE of this flush went to the statement trigger."""


_chosen: ContextVar[_Choice | None] = ContextVar("auditkeeper_chosen_deletions", default=None)


def choose(
    recorder: Recorder,
    session: Session,
    changed: list[InstanceState[Any]],
    deleted: list[InstanceState[Any]],
) -> None:
    """Before a flush: whether the statement trigger may log its deletions. Not when an
    actor is required and missing: the flush refuses that."""
    _chosen.set(None)
    if changed or len(deleted) < 2 or (current_actor() is None and recorder.require_actor):
        return
    mappers = {state.mapper for state in deleted}
    if len(mappers) != 1:
        return
    (mapper,) = mappers
    plan = recorder.plan_for(mapper)
    if (
        plan is None
        or plan.delete is None
        or mapper.version_id_col is not None
        or set_based_tests(mapper, plan) is None
        or any(has_annotations(state) for state in deleted)
    ):
        return
    connection = session.connection(bind_arguments={"mapper": mapper})
    if connection.dialect.name != "postgresql" or connection.dialect.paramstyle not in (
        "pyformat",
        "format",
    ):
        return
    recorder.verify_engine(connection)  # as before the flush's own rows
    table = mapper.local_table
    assert isinstance(table, Table)  # set_based_tests
    trigger = statement_trigger_names(table, plan)["DELETE"]
    _chosen.set(_Choice(table, trigger, plan.primary_key[0].column))


def chosen(table: Any) -> str | None:
    """The name of the statement trigger that may log this flush's DELETEs from
    ``table``, or None when the flush logs them."""
    choice = _chosen.get()
    return choice.trigger if choice is not None and choice.table is table else None


def as_one_statement(
    connection: Connection, context: Any, parameters: Any, executemany: bool
) -> tuple[str, Any]:
    """The flush's DELETE of the chosen table's rows by their keys, as one announced
    statement for the statement trigger to log (once ``chosen`` named its trigger and
    the transaction found it ready). Its row count is the rows deleted, as the
    ``executemany`` counted them; the keys are the driver's values already."""
    choice = _chosen.get()
    assert choice is not None
    compiled = context.compiled
    ((name, bind),) = compiled.binds.items()  # the key: the class has no version counter
    assert bind.key == choice.key.key, (bind.key, choice.key.key)
    name = (compiled.escaped_bind_names or {}).get(name, name)
    rows = parameters if executemany else [parameters]
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    table, column = preparer.format_table(choice.table), preparer.format_column(choice.key)
    array = f"{choice.key.type.compile(dialect=dialect)}[]"
    sent: dict[str, list[Any]] | tuple[list[Any]]
    if dialect.paramstyle == "pyformat":
        placeholder, sent = f"%({_PARAMETER})s", {_PARAMETER: [row[name] for row in rows]}
    else:
        placeholder, sent = "%s", ([row[0] for row in rows],)
    choice.sent = True
    statement = (
        f"{flush_rows_prefix(choice.table, dialect)} DELETE FROM {table} "
        f"WHERE {column} = ANY(CAST({placeholder} AS {array}))"
    )
    return statement, [sent] if executemany else sent


def logged_by_trigger() -> Table | None:
    """The table whose deletions of this flush the statement trigger logged."""
    choice = _chosen.get()
    return choice.table if choice is not None and choice.sent else None


def forget() -> None:
    """After a flush (or its failure)."""
    _chosen.set(None)
