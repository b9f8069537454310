"""What the capture triggers of both dialects share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table

from ...model.identifiers import postgresql_name
from ...model.sql_values import sql_literal
from ..plan import ClassPlan

__all__ = [
    "ACTOR_SETTING",
    "CAPTURE_SUFFIX",
    "CAPTURED_BY",
    "FLUSHED",
    "FLUSHED_AT",
    "FLUSH_ROWS",
    "FLUSHED_SUFFIX",
    "LEADING_COMMENTS",
    "MARK",
    "STATEMENT_MARK",
    "LinkSide",
    "flushed_trigger_name",
    "query_starts_with",
    "quote_column",
]

ACTOR_SETTING = "auditkeeper.actor"
"""The transaction-local PostgreSQL setting that carries the actor to the triggers."""

FLUSHED = "/* auditkeeper:flushed */"
"""PostgreSQL: the comment that starts the text of every statement whose changes the
session logs itself (a flush's, a Python-logged bulk statement's): only their changes
are checked at commit against the rows already written; any other change is logged."""

FLUSH_ROWS = "/* auditkeeper:flush-rows */"
"""PostgreSQL: after a table's announcement, the comment of a flush's INSERT, or of its
UPDATEs or DELETEs merged into one statement, whose rows the statement trigger logs as
the flush's own: at the flush's time (``FLUSHED_AT``), with the actor's context
unmarked (capture/inserts.py, capture/merged.py)."""

FLUSHED_AT = "auditkeeper.flushed_at"
"""PostgreSQL: the transaction-local setting that holds the running flush's time, for
the rows the statement trigger logs as the flush's own. In a setting rather than the
statement's text, which stays the same from flush to flush (prepared once)."""

CAPTURE_SUFFIX = "_audit_capture"
"""The end of every capture trigger's name (``<table>_audit_capture``)."""

FLUSHED_SUFFIX = "_audit_flushed"
"""The end of every flushed trigger's name (``flushed_trigger_name``)."""

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


def flushed_trigger_name(table: Table) -> str:
    """The PostgreSQL row trigger that takes the changes of statements marked
    ``FLUSHED``, and alone checks them against the rows already written."""
    return postgresql_name(table.name, FLUSHED_SUFFIX)


LEADING_COMMENTS = "^(?:/[*][^*]*[*]+(?:[^*/][^*]*[*]+)*/[[:space:]]*)+"
"""PostgreSQL: the regular expression of block comments (and the white space after
each) at the start of a query: what a tracer puts before a statement's text (Datadog's
database monitoring at the driver, an application's listener that runs after
auditkeeper's). Written without backslashes, which a server with
``standard_conforming_strings`` off would read as escapes, and without capturing groups,
which make PostgreSQL's matcher slower (7.4 against 4.2 µs a match on this machine)."""


def query_starts_with(*comments: str, behind_comments: bool = False) -> str:
    """The SQL condition that the current client query starts with one of ``comments``
    (with ``behind_comments``, or with block comments and then one of them): its text as
    the client sent it, which nothing the query does can change (false where there is no
    client query, as in a replication worker).

    Behind comments, the prefixes are compared first, and one regular expression for
    all of ``comments`` runs only for a query that starts with another comment than
    auditkeeper's. The longer condition is not free: a row trigger's ``WHEN`` is read
    and prepared again for each statement, and SQLAlchemy sends a flush's UPDATEs and
    DELETEs one row per statement (bench/README.md, "A tracer's comments before the
    marks"); hence the choice (``Auditkeeper(leading_comments=True)``). A comment nested
    in another is not looked past: its statement's changes are then logged as raw SQL's
    (a flush's a second time), never left unlogged."""
    prefixes = " OR ".join(f"starts_with(current_query(), {sql_literal(c)})" for c in comments)
    if not behind_comments:
        return f"coalesce({prefixes}, false)"
    marks = "|".join(_bracketed(comment) for comment in comments)
    pattern = sql_literal(f"{LEADING_COMMENTS}(?:{marks})")
    return (
        f"coalesce({prefixes} "
        "OR (NOT starts_with(current_query(), '/* auditkeeper:') "
        "AND starts_with(current_query(), '/*') "
        f"AND current_query() ~ {pattern}), false)"
    )


def _bracketed(comment: str) -> str:
    """``comment`` as a regular expression matching itself: each character other than
    a letter, digit, space, ``:``, ``-`` or ``_`` in brackets (the marks are made of
    ``/*``, ``*/``, words, colons, dashes and hexadecimal digits)."""
    if not re.fullmatch(r"[/* \w:-]+", comment, flags=re.ASCII):
        raise ValueError(f"not a mark auditkeeper puts on statements: {comment!r}")
    return "".join(c if c.isalnum() or c in " :-_" else f"[{c}]" for c in comment)
