"""The API's response models: what each endpoint returns, as typed JSON (and OpenAPI).

Stored values (``previous``, ``current``, ``difference``, ``context``) are already JSON
in the log, so they pass through as they are; codes come with their enum names so a
client needs no copy of the application's enums.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from ..capture.keeper import Auditkeeper
from ..model.tables import AuditEntry
from ..query import LogPage, RecordState
from ..trail import TrailPage, TrailRow

__all__ = [
    "CatalogueOut",
    "CodeName",
    "EntityTypeOut",
    "EntryDetail",
    "EntrySummary",
    "LogPageOut",
    "RecordStateOut",
    "TrailPageOut",
    "TrailRowOut",
    "enum_name",
]


class EntrySummary(BaseModel):
    """One audit log as the list shows it: who did what to which record, and when."""

    id: int
    action: int
    action_name: str
    entity_type: int
    entity_type_name: str
    record_id: int | str | None = Field(description="number_identifier, else entity_key")
    user_id: Any = None
    user_email: str | None = None
    is_impersonated: bool
    impersonator_user_id: Any = None
    impersonator_email: str | None = None
    tenant_id: str | None = None
    reason: str | None = None
    transaction_id: str | None = None
    created_at: dt.datetime
    changed_fields: list[str] = Field(description="the fields of difference, in order")

    @classmethod
    def of(cls, entry: AuditEntry, keeper: Auditkeeper) -> EntrySummary:
        return cls(**_summary_fields(entry, keeper))


class EntryDetail(EntrySummary):
    """One audit log with its documents: the record before, after, and what changed."""

    previous: dict[str, Any] | None
    current: dict[str, Any] | None
    difference: dict[str, Any]
    context: dict[str, Any] | None = None

    @classmethod
    def of(cls, entry: AuditEntry, keeper: Auditkeeper) -> EntryDetail:
        return cls(
            **_summary_fields(entry, keeper),
            previous=entry.previous,
            current=entry.current,
            difference=entry.difference,
            context=entry.context,
        )


class LogPageOut(BaseModel):
    """A keyset page: pass ``next_cursor`` (or ``previous_cursor``) back as ``cursor``,
    with the same filters, for the page after (or before) this one."""

    items: list[EntrySummary]
    next_cursor: str | None
    previous_cursor: str | None = None

    @classmethod
    def of(cls, page: LogPage, keeper: Auditkeeper) -> LogPageOut:
        return cls(
            items=[EntrySummary.of(entry, keeper) for entry in page],
            next_cursor=page.next_cursor,
            previous_cursor=page.previous_cursor,
        )


class TrailRowOut(BaseModel):
    """A trail row: the seed's four columns, and the record and audit log behind it."""

    event: str
    description: str
    user: str
    date: dt.datetime
    kind: str
    entity: str
    entity_id: int | str
    entry_id: int
    impersonator: str | None = None

    @classmethod
    def of(cls, row: TrailRow) -> TrailRowOut:
        return cls(
            event=row.event,
            description=row.description,
            user=row.user,
            date=row.date,
            kind=str(getattr(row.kind, "value", row.kind)),
            entity=row.entity,
            entity_id=row.entity_id,
            entry_id=row.entry_id,
            impersonator=row.impersonator,
        )


class TrailPageOut(BaseModel):
    """A page of a trail; ``total`` counts every matching row."""

    rows: list[TrailRowOut]
    total: int
    skip: int
    limit: int

    @classmethod
    def of(cls, page: TrailPage, *, skip: int, limit: int) -> TrailPageOut:
        return cls(rows=[TrailRowOut.of(r) for r in page], total=page.total, skip=skip, limit=limit)


class RecordStateOut(BaseModel):
    """A record as of an instant: ``not created``, ``exists`` or ``deleted``."""

    status: str
    fields: dict[str, Any] | None
    entry: EntrySummary | None

    @classmethod
    def of(cls, state: RecordState, keeper: Auditkeeper) -> RecordStateOut:
        return cls(
            status=state.status.value,
            fields=None if state.fields is None else dict(state.fields),
            entry=None if state.entry is None else EntrySummary.of(state.entry, keeper),
        )


class CodeName(BaseModel):
    code: int
    name: str


class EntityTypeOut(CodeName):
    entity_class: str | None = Field(description="the audited class, if this process maps one")


class CatalogueOut(BaseModel):
    """The application's actions and entity types: codes and names."""

    actions: list[CodeName]
    entity_types: list[EntityTypeOut]


def enum_name(enum: Any, code: int) -> str:
    """The member name of ``code``, or the code itself when the enum no longer has it."""
    try:
        return str(enum(code).name)
    except ValueError:
        return str(code)


def _summary_fields(entry: AuditEntry, keeper: Auditkeeper) -> dict[str, Any]:
    return {
        "id": entry.id,
        "action": entry.action,
        "action_name": enum_name(keeper.actions, entry.action),
        "entity_type": entry.entity_type,
        "entity_type_name": enum_name(keeper.entity_types, entry.entity_type),
        "record_id": (
            entry.number_identifier if entry.number_identifier is not None else entry.entity_key
        ),
        "user_id": entry.user_id,
        "user_email": entry.user_email,
        "is_impersonated": bool(entry.is_impersonated),
        "impersonator_user_id": entry.impersonator_user_id,
        "impersonator_email": entry.impersonator_email,
        "tenant_id": entry.tenant_id,
        "reason": entry.reason,
        "transaction_id": None if entry.transaction_id is None else str(entry.transaction_id),
        "created_at": entry.created_at,
        "changed_fields": list(entry.difference),
    }
