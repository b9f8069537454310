"""Point in time: a record's state as of an instant or a transaction, and one field's story.

Every row written through the ORM carries the full record after the change (``current``)
or, for a deletion, before it (``previous``). So the state at a moment is the newest such
snapshot at or before it, patched by any later rows that carry only a ``difference``
(changes recorded by SQL procedures, whose ``previous`` and ``current`` are null). The
record's rows are read newest first, a few at a time, until a snapshot is found: one
short indexed query in the usual case, however long the record's history.

Only what the log holds is reconstructed: excluded columns are absent, redacted ones
read ``"[redacted]"``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, literal, select, tuple_

from ..errors import QueryError
from ..model.tables import AuditEntry
from .binding import Bind, dialect_name, orm_session
from .cursor import Position
from .filters import LogFilter, resolve
from .pagination import iter_entries, ordered_select
from .resolve import CodeRef, entity_plans

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from ..capture.keeper import Auditkeeper

__all__ = [
    "FieldChange",
    "RecordState",
    "RecordStatus",
    "as_of",
    "as_of_async",
    "field_history",
]

_BATCH = 16


class RecordStatus(enum.Enum):
    """What the log says about a record at a moment."""

    NOT_CREATED = "not created"
    """No row of the record at or before the moment: not created yet (or never audited)."""
    EXISTS = "exists"
    DELETED = "deleted"


@dataclass(frozen=True)
class RecordState:
    """A record as of a moment: its status, its audited fields, and the row that last
    changed it (who, when, why)."""

    status: RecordStatus
    fields: Mapping[str, Any] | None
    """``{column: value}``; for a deleted record, its values when it was deleted; None
    when not created."""
    entry: AuditEntry | None
    """The newest row of the record at or before the moment."""

    @property
    def exists(self) -> bool:
        return self.status is RecordStatus.EXISTS


@dataclass(frozen=True)
class FieldChange:
    """One change of one field: its old and new value, and the row that recorded it."""

    old: Any
    new: Any
    entry: AuditEntry

    @property
    def at(self) -> dt.datetime:
        return self.entry.created_at


def as_of(
    bind: Bind,
    keeper: Auditkeeper,
    entity_type: CodeRef,
    key: Any,
    *,
    at: dt.datetime | None = None,
    transaction_id: uuid.UUID | str | None = None,
) -> RecordState:
    """The state of one record ``at`` an instant (rows up to and including it), or just
    after the transaction ``transaction_id`` (rows up to its last one), or now.

    ``key`` is the record's primary key as the application knows it.
    """
    if at is not None and transaction_id is not None:
        raise QueryError("give at= or transaction_id=, not both")
    if at is not None and (not isinstance(at, dt.datetime) or at.utcoffset() is None):
        raise QueryError(f"at={at!r} must be a timezone-aware datetime")
    resolved = resolve(LogFilter(entity_type=entity_type, record=key), keeper)
    dialect = dialect_name(bind, keeper)
    with orm_session(bind) as session:
        bound = _bound(session, keeper, at, transaction_id)
        rows: list[AuditEntry] = []
        after: Position | None = None
        while True:
            statement = ordered_select(select(keeper.Entry), keeper, resolved, dialect, after)
            if bound is not None:
                statement = statement.where(bound)
            batch = list(session.scalars(statement.limit(_BATCH)))
            snapshot = next((i for i, row in enumerate(batch) if _is_snapshot(row)), None)
            rows.extend(batch if snapshot is None else batch[: snapshot + 1])
            if snapshot is not None or len(batch) < _BATCH:
                break
            after = Position(batch[-1].created_at, batch[-1].id)
    return _replay(keeper, list(reversed(rows)))


async def as_of_async(
    session: AsyncSession,
    keeper: Auditkeeper,
    entity_type: CodeRef,
    key: Any,
    *,
    at: dt.datetime | None = None,
    transaction_id: uuid.UUID | str | None = None,
) -> RecordState:
    """``as_of`` for an ``AsyncSession``."""
    return await session.run_sync(
        lambda sync: as_of(sync, keeper, entity_type, key, at=at, transaction_id=transaction_id)
    )


def field_history(
    bind: Bind,
    keeper: Auditkeeper,
    entity_type: CodeRef,
    key: Any,
    field: str,
    *,
    newest_first: bool = False,
) -> list[FieldChange]:
    """Every change of ``field`` (a column or attribute name) of one record, oldest first
    by default: its creation value, each update, and its deletion."""
    log_filter = LogFilter(
        entity_type=entity_type, record=key, field=field, newest_first=newest_first
    )
    resolved = resolve(log_filter, keeper)
    column = resolved.field or field
    changes = []
    for entry in iter_entries(bind, keeper, log_filter):
        old, new = entry.difference[column]
        changes.append(FieldChange(old, new, entry))
    return changes


def _bound(
    session: Session,
    keeper: Auditkeeper,
    at: dt.datetime | None,
    transaction_id: uuid.UUID | str | None,
) -> ColumnElement[bool] | None:
    """The condition "at or before the moment" on ``(created_at, id)``."""
    table = keeper.table
    if at is not None:
        return table.c.created_at <= at
    if transaction_id is None:
        return None
    try:
        wanted = (
            transaction_id
            if isinstance(transaction_id, uuid.UUID)
            else uuid.UUID(str(transaction_id))
        )
    except ValueError:
        raise QueryError(f"transaction_id {transaction_id!r} is not a UUID") from None
    last = session.execute(
        select(table.c.created_at, table.c.id)
        .where(table.c.transaction_id == wanted)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        raise QueryError(f"no audit row has transaction_id {wanted}: is it the right one?")
    bound = tuple_(
        literal(last.created_at, table.c.created_at.type), literal(last.id, table.c.id.type)
    )
    return tuple_(table.c.created_at, table.c.id) <= bound


def _is_snapshot(entry: AuditEntry) -> bool:
    """Whether the row holds the full record (written by the ORM), after or before."""
    document = entry.changed_objects
    return document.get("current") is not None or document.get("previous") is not None


def _replay(keeper: Auditkeeper, rows: list[AuditEntry]) -> RecordState:
    """Apply ``rows`` (oldest first; the first may be a snapshot) to an unknown record."""
    status = RecordStatus.NOT_CREATED
    fields: dict[str, Any] | None = None
    verbs: _Verbs | None = None
    for entry in rows:
        document = entry.changed_objects
        current, previous = document.get("current"), document.get("previous")
        if current is not None:
            status, fields = RecordStatus.EXISTS, dict(current)
            continue
        if previous is not None:
            status, fields = RecordStatus.DELETED, dict(previous)
            continue
        verbs = verbs or _Verbs(keeper)
        verb = verbs.of(entry)
        if verb == "update" and not entry.difference:
            # A custom history event: it changes nothing, but shows the record exists.
            if status is RecordStatus.NOT_CREATED:
                status, fields = RecordStatus.EXISTS, {}
            continue
        patched = dict(fields or {})
        for column, change in entry.difference.items():
            if verb != "delete" and isinstance(change, list) and len(change) == 2:
                patched[column] = change[1]
        fields = patched
        status = RecordStatus.DELETED if verb == "delete" else RecordStatus.EXISTS
    return RecordState(status, fields, rows[-1] if rows else None)


class _Verbs:
    """Create / update / delete of rows that carry no snapshot, by their action code:
    the only thing that tells a procedure's "created" row from an "updated" one."""

    def __init__(self, keeper: Auditkeeper) -> None:
        self.creates: set[tuple[int, int]] = set()
        self.deletes: set[tuple[int, int]] = set()
        for code, plan in entity_plans(keeper).items():
            if plan.create is not None:
                self.creates.add((code, plan.create))
            if plan.delete is not None:
                self.deletes.add((code, plan.delete))

    def of(self, entry: AuditEntry) -> str:
        pair = (entry.entity_type, entry.action)
        if pair in self.deletes:
            return "delete"
        return "create" if pair in self.creates else "update"
