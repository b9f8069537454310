"""A one-record flush's audit row, written by the record's own UPDATE or DELETE
(PostgreSQL).

A web request's transaction often changes one record: a SELECT, an UPDATE, a COMMIT.
The flush's audit INSERT is then a statement of its own, the largest part of what
auditing adds to that transaction: a round trip, and SQLAlchemy's and psycopg's work for
one more statement (bench/README.md). When a flush changes exactly one audited record
and creates none, its row rides on the record's own statement instead, as a
data-modifying common table expression::

    /* auditkeeper:flushed */ WITH auditkeeper_log AS (INSERT INTO audit_log ...)
    UPDATE item SET ... WHERE item.id = ...

The row is built as the statement leaves, after SQLAlchemy has set the foreign keys
that the flush synchronises, from the values the flush would log after the statement:
the row is the same. The change and its log are one statement, kept or refused
together. Where the row could differ (a value the database, an ``onupdate`` or a
version counter computes during the statement, an unloaded column, a record written by
several statements) or the statement is not plainly the record's, the flush writes the
row itself, as for any other flush (``Recorder.after_flush``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState

from ..store.writer import PARAMETER_PREFIX

__all__ = ["CTE_NAME", "Expected", "carried", "carry", "expect", "forget"]

CTE_NAME = "auditkeeper_log"

Build = Callable[[Connection], tuple[str, dict[str, Any]] | None]
"""Builds the record's audit INSERT as the driver receives it, and its parameters (named
with ``PARAMETER_PREFIX``), or None when the flush is to write the row itself."""


@dataclass
class Expected:
    """The one record whose row a flush may carry on its statement."""

    state: InstanceState[Any]
    connection: Connection
    """The flush's connection: a statement on any other is not the record's."""
    table: Table
    is_update: bool
    where: dict[str, Any]
    """The statement's key parameters (bind name: the record's stored key value)."""
    build: Build
    carried: bool = False
    tried: bool = False


_expected: ContextVar[Expected | None] = ContextVar("auditkeeper_carried", default=None)


def expect(expected: Expected) -> None:
    """Before a flush: its one record, whose statement may carry its row."""
    _expected.set(expected)


def carry(
    connection: Connection, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """``before_cursor_execute`` of a flush's UPDATE or DELETE: the statement with the
    expected record's audit INSERT in front, when it is that record's statement (its
    table, its verb, its key); otherwise the statement as it is."""
    expected = _expected.get()
    if (
        expected is None
        or expected.tried
        or connection is not expected.connection
        or executemany
        or not isinstance(parameters, dict)
        or bool(context.isupdate) is not expected.is_update
        or getattr(context.compiled.statement, "table", None) is not expected.table
        or not statement.startswith("UPDATE " if expected.is_update else "DELETE FROM ")
    ):
        return statement, parameters
    bound = context.compiled_parameters[0]
    if any(bound.get(name, _ABSENT) != value for name, value in expected.where.items()):
        return statement, parameters
    expected.tried = True
    if any(name.startswith(PARAMETER_PREFIX) for name in parameters):
        return statement, parameters  # a column so named: the INSERT's would clash
    built = expected.build(connection)  # the actor's setting is sent from here on
    if built is None:
        return statement, parameters
    insert, extra = built
    expected.carried = True
    return f"WITH {CTE_NAME} AS ({insert}) {statement}", {**parameters, **extra}


def carried() -> InstanceState[Any] | None:
    """After the flush's statements: the record whose row its statement carried."""
    expected = _expected.get()
    return expected.state if expected is not None and expected.carried else None


def forget() -> None:
    """Before a flush, after it, or after its failure."""
    _expected.set(None)


_ABSENT = object()
