"""Free-text search over audit rows: a substring of the document, the e-mail or the reason.

A support person looks for "the row where someone typed ACME-17", not for a field
name; this finds it anywhere in ``changed_objects`` (values and field names), in the
acting user's e-mail or in the reason, ignoring case.

The document is matched as JSON text: the needle is JSON-encoded the way a string value
is (``"`` as ``\\"``, a backslash doubled, control characters escaped), so a value
holding quotes is found as the user typed it. ``%`` and ``_`` in the needle are literal
characters, never LIKE wildcards (SQLAlchemy's ``autoescape``), and the needle is always
a bound parameter. Case folding is the database's ``lower()``: full Unicode on
PostgreSQL, ASCII letters only on SQLite.

No index serves a substring search: like "field F changed", a page walks the
``(created_at, id)`` index (or the index of the other filters given) and stops after
``limit`` matches.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, Text, cast, or_

from ..model import values

__all__ = ["text_matches"]


def text_matches(table: Table, text: str) -> ColumnElement[bool]:
    """Rows whose document, ``user_email`` or ``reason`` contains ``text`` (any case)."""
    in_json = values.dumps(text)[1:-1]  # the needle as it appears inside a JSON string
    return or_(
        cast(table.c.changed_objects, Text).icontains(in_json, autoescape=True),
        table.c.user_email.icontains(text, autoescape=True),
        table.c.reason.icontains(text, autoescape=True),
    )
