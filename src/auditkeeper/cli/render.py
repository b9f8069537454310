"""Rich output that reads the same in a terminal and in a captured CI log."""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

from rich.console import Console
from sqlalchemy.exc import DBAPIError

__all__ = ["NON_TERMINAL_WIDTH", "code_name", "make_console", "one_line", "show_value"]

NON_TERMINAL_WIDTH = 132
"""Columns when stdout is not a terminal: Rich would assume 80, too narrow for the log;
132 is the classic wide terminal."""


def make_console() -> Console:
    """A console for stdout: styled in a terminal, plain text at a fixed width elsewhere."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = NON_TERMINAL_WIDTH
    return console


def show_value(value: Any) -> str:
    """A stored JSON value as JSON text: strings quoted, ``null`` for None."""
    return json.dumps(value, ensure_ascii=False)


def one_line(error: BaseException) -> str:
    """An error as one line: the driver's own message for a database error, without the
    SQL, the parameters and the context lines that SQLAlchemy and PostgreSQL append."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def code_name(enum: type[IntEnum], code: int) -> str:
    """The member's name, or ``"12?"`` for a code the enum does not have (any more)."""
    try:
        return enum(code).name
    except ValueError:
        return f"{code}?"
