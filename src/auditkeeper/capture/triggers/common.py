"""What the capture triggers of both dialects share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table

from ..plan import ClassPlan

__all__ = [
    "ACTOR_SETTING",
    "CAPTURE_SUFFIX",
    "CAPTURED_BY",
    "MARK",
    "STATEMENT_MARK",
    "LinkSide",
    "quote_column",
]

ACTOR_SETTING = "auditkeeper.actor"
"""The transaction-local PostgreSQL setting that carries the actor to the triggers."""

CAPTURE_SUFFIX = "_audit_capture"
"""The end of every capture trigger's name (``<table>_audit_capture``)."""

CAPTURED_BY = "captured_by"
"""The ``context`` key that marks rows written by a capture trigger."""

MARK = '{"captured_by": "database trigger"}'
"""What a trigger adds to a row's ``context``."""

STATEMENT_MARK = '{"captured_by": "database statement trigger"}'
"""What a PostgreSQL statement trigger adds instead (a bulk statement's rows)."""


@dataclass(frozen=True, slots=True)
class LinkSide:
    """One audited side of a many-to-many association table."""

    name: str
    """The relationship's name: the key of the change in ``difference``."""
    plan: ClassPlan
    table: Table
    """The side's own (audited) table."""
    owner: Column[Any]
    """The association table's column that holds this side's key."""
    related: Column[Any]
    """The association table's column that holds the other side's key."""
    owner_key: Column[Any]
    """This side's key column in its own table."""


def quote_column(name: str) -> str:
    """A column name as a quoted identifier (they may be mixed-case or reserved)."""
    return '"' + name.replace('"', '""') + '"'
