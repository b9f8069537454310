"""Rich output that reads the same in a terminal and in a captured CI log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import DBAPIError

from ..model.tables import AuditEntry

__all__ = ["NON_TERMINAL_WIDTH", "code_name", "log_table", "make_console", "one_line", "show_value"]

NON_TERMINAL_WIDTH = 132
"""Columns when stdout is not a terminal: Rich would assume 80, too narrow for the log;
132 is the classic wide terminal."""


def make_console() -> Console:
    """A console for stdout: styled in a terminal, plain text at a fixed width elsewhere."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = NON_TERMINAL_WIDTH
    return console


def log_table(
    entries: Iterable[AuditEntry],
    *,
    actions: type[IntEnum],
    entity_types: type[IntEnum],
    ascii_only: bool = False,
) -> Table:
    """One line per audit row: when, what, on which record (entity type and key), by
    whom, and the changes.

    Stored values are shown with ``Text`` (never as markup), so a value such as
    ``[redacted]`` prints as it is stored.
    """
    table = Table(show_lines=True, expand=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("record", no_wrap=True)
    table.add_column("by", overflow="fold", ratio=1, min_width=19)
    table.add_column("changes", overflow="fold", ratio=2)
    arrow = "->" if ascii_only else "→"
    for entry in entries:
        table.add_row(
            str(entry.id),
            entry.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            code_name(actions, entry.action),
            f"{code_name(entity_types, entry.entity_type)} {_key(entry)}",
            _by(entry),
            _changes(entry, arrow),
        )
    return table


def show_value(value: Any) -> str:
    """A stored JSON value as JSON text: strings quoted, ``null`` for None."""
    return json.dumps(value, ensure_ascii=False)


def one_line(error: BaseException) -> str:
    """An error as one line: the driver's own message for a database error, without the
    SQL, the parameters and the context lines that SQLAlchemy and PostgreSQL append."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def _key(entry: AuditEntry) -> str:
    return str(entry.number_identifier if entry.number_identifier is not None else entry.entity_key)


def _by(entry: AuditEntry) -> Text:
    """The acting user as the log keeps it (a deleted user's e-mail stays, its id is null),
    the impersonator, and the reason when one was given."""
    if entry.user_email is None:
        lines = ["system"]
    elif entry.user_id is None:
        lines = [entry.user_email, "user_id: null"]
    else:
        lines = [entry.user_email]
    if entry.is_impersonated:
        lines.append(f"impersonated by {entry.impersonator_email or entry.impersonator_user_id}")
    if entry.reason is not None:
        lines.append(f"reason: {entry.reason}")
    return Text("\n".join(lines))


def _changes(entry: AuditEntry, arrow: str) -> Text:
    """``field: old → new`` for an update; the fields themselves for a create or delete."""
    lines = []
    for field, (old, new) in entry.difference.items():
        if entry.previous is None:
            lines.append(f"{field}: {show_value(new)}")
        elif entry.current is None:
            lines.append(f"{field}: {show_value(old)}")
        else:
            lines.append(f"{field}: {show_value(old)} {arrow} {show_value(new)}")
    return Text("\n".join(lines))


def code_name(enum: type[IntEnum], code: int) -> str:
    """The member's name, or ``"12?"`` for a code the enum does not have (any more)."""
    try:
        return enum(code).name
    except ValueError:
        return f"{code}?"
