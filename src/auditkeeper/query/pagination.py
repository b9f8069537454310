"""Keyset pages of the log: stable while rows keep arriving, fast at any depth.

Rows are ordered by ``(created_at, id)``: the time, then the insertion order for rows
of the same instant. A page asks for the rows strictly after the last one shown,
``(created_at, id) < (:t, :id)`` newest first, which every index of the log that ends
in ``created_at`` (or ``created_at, id``) answers without counting the rows before it:
page 100 costs what page 1 costs. Rows inserted meanwhile never shift a page, so there
are no duplicates and no gaps (a new row newer than the first page is simply not part
of a newest-first walk that has started; an oldest-first walk reaches it at the end).

Pages also go back: a page read after a cursor carries a ``previous_cursor``, which
reads the rows strictly before its first row, in reverse order from the same index,
and shows them in the page's order. Going back to the start gives the first page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, literal, select, tuple_

from ..errors import QueryError
from ..model.tables import AuditEntry
from .binding import Bind, dialect_name, orm_session
from .cursor import Position, decode_cursor, encode_cursor
from .filters import LogFilter, ResolvedFilter, resolve
from .resolve import CodeRef

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..capture.keeper import Auditkeeper

__all__ = [
    "MAX_PAGE_SIZE",
    "LogPage",
    "history",
    "iter_entries",
    "read_page",
    "read_page_async",
    "ordered_select",
]

MAX_PAGE_SIZE = 10_000
"""The largest ``limit`` of one page; walk further with ``iter_entries``."""


@dataclass(frozen=True)
class LogPage:
    """One page of audit entries, the cursor of the next page (None on the last) and
    that of the previous page (None on the first)."""

    entries: Sequence[AuditEntry]
    next_cursor: str | None
    previous_cursor: str | None = None

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def read_page(
    bind: Bind,
    keeper: Auditkeeper,
    log_filter: LogFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> LogPage:
    """Up to ``limit`` entries matching ``log_filter``, after ``cursor`` (a page's
    ``next_cursor``, for the same filter and order), or before it (a page's
    ``previous_cursor``).

    ``InvalidFilterError`` names an unknown entity type or action; ``InvalidCursorError``
    refuses a malformed cursor or one made for another filter.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise QueryError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
    resolved = resolve(log_filter or LogFilter(), keeper)
    fingerprint = resolved.fingerprint()
    position = None if cursor is None else decode_cursor(cursor, fingerprint)
    with orm_session(bind) as session:
        statement = ordered_select(
            select(keeper.Entry), keeper, resolved, dialect_name(bind, keeper), position
        )
        rows = list(session.scalars(statement.limit(limit + 1)))
    more = len(rows) > limit
    if position is not None and position.before:
        if not more:  # nothing before these rows: this is the first page
            return read_page(bind, keeper, log_filter, limit=limit)
        entries = rows[:limit][::-1]
        return LogPage(
            entries, _cursor(entries[-1], fingerprint), _cursor(entries[0], fingerprint, True)
        )
    entries = rows[:limit]
    return LogPage(
        entries,
        _cursor(entries[-1], fingerprint) if more else None,
        _cursor(entries[0], fingerprint, True) if position is not None and entries else None,
    )


def _cursor(entry: AuditEntry, fingerprint: str, before: bool = False) -> str:
    return encode_cursor(Position(entry.created_at, entry.id, before), fingerprint)


async def read_page_async(
    session: AsyncSession,
    keeper: Auditkeeper,
    log_filter: LogFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> LogPage:
    """``read_page`` for an ``AsyncSession``."""
    return await session.run_sync(
        lambda sync: read_page(sync, keeper, log_filter, limit=limit, cursor=cursor)
    )


def iter_entries(
    bind: Bind,
    keeper: Auditkeeper,
    log_filter: LogFilter | None = None,
    *,
    batch_size: int = 500,
) -> Iterator[AuditEntry]:
    """Every entry matching ``log_filter``, in its order, read ``batch_size`` at a time
    by keyset: memory stays bounded and no transaction is held open between batches."""
    cursor: str | None = None
    while True:
        page = read_page(bind, keeper, log_filter, limit=batch_size, cursor=cursor)
        yield from page.entries
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def history(
    bind: Bind,
    keeper: Auditkeeper,
    entity_type: CodeRef,
    key: Any,
    *,
    newest_first: bool = False,
) -> list[AuditEntry]:
    """Every entry of one record, oldest first by default: who changed it, when, and
    from what (``entry.difference``)."""
    log_filter = LogFilter(entity_type=entity_type, record=key, newest_first=newest_first)
    return list(iter_entries(bind, keeper, log_filter))


def ordered_select(
    statement: Select[Any],
    keeper: Auditkeeper,
    resolved: ResolvedFilter,
    dialect: str,
    position: Position | None = None,
) -> Select[Any]:
    """``statement`` filtered by ``resolved``, in its ``(created_at, id)`` order, and
    strictly after ``position``; or, when ``position.before``, strictly before it and in
    the reverse order (nearest row first)."""
    table = keeper.table
    criteria: list[ColumnElement[bool]] = resolved.criteria(table, dialect)
    descending = resolved.newest_first
    if position is not None:
        key = tuple_(table.c.created_at, table.c.id)
        bound = tuple_(
            literal(position.created_at.astimezone(dt.UTC), table.c.created_at.type),
            literal(position.id, table.c.id.type),
        )
        descending = descending != position.before
        criteria.append(key < bound if descending else key > bound)
    if descending:
        order = (table.c.created_at.desc(), table.c.id.desc())
    else:
        order = (table.c.created_at.asc(), table.c.id.asc())
    return statement.where(*criteria).order_by(*order)
