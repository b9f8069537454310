"""What the templates show: audit rows and documents turned into plain, typed values.

Templates only lay out; every decision about a value (how a null, a number or a nested
document reads, who "the user" is, which fields changed) is made here, where it can
be tested without a browser. Nothing here escapes HTML: Jinja2's autoescape does that
for every value the templates print.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..api.models import enum_name
from ..capture.keeper import Auditkeeper
from ..model.tables import AuditEntry

__all__ = ["FieldRow", "LogRow", "Shown", "field_rows", "log_row", "shown", "when"]

_CHANGED_SHOWN = 3
"""How many changed field names a row of the log table lists before "+N more"."""


@dataclass(frozen=True)
class Shown:
    """A stored JSON value as text, and its kind (``text``, ``null``, ``json``) for the
    template's styling: a null must not read like the text "null"."""

    text: str
    kind: str


@dataclass(frozen=True)
class FieldRow:
    """One field of a log's difference view: its value before and after (None where the
    record did not exist), and whether the change touched it."""

    name: str
    before: Shown | None
    after: Shown | None
    changed: bool


@dataclass(frozen=True)
class LogRow:
    """One audit log as the page lists and heads it."""

    id: int
    created_at: dt.datetime
    action: str
    entity_type: str
    record: str
    user: str
    impersonator: str | None
    reason: str | None
    tenant: str | None
    transaction: str | None
    changed: list[str]

    @property
    def changed_summary(self) -> str:
        """The changed fields, at most a few of them by name."""
        names = self.changed[:_CHANGED_SHOWN]
        more = len(self.changed) - len(names)
        return ", ".join(names) + (f" +{more} more" if more else "")


def log_row(entry: AuditEntry, keeper: Auditkeeper) -> LogRow:
    """``entry`` as the page shows it: names for codes, the user (or System)."""
    record = entry.number_identifier if entry.number_identifier is not None else entry.entity_key
    return LogRow(
        id=entry.id,
        created_at=entry.created_at,
        action=enum_name(keeper.actions, entry.action),
        entity_type=enum_name(keeper.entity_types, entry.entity_type),
        record="" if record is None else str(record),
        user=_person(entry.user_email, entry.user_id),
        impersonator=(
            _person(entry.impersonator_email, entry.impersonator_user_id)
            if entry.is_impersonated
            else None
        ),
        reason=entry.reason,
        tenant=entry.tenant_id,
        transaction=None if entry.transaction_id is None else str(entry.transaction_id),
        changed=list(entry.difference),
    )


def field_rows(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    difference: Mapping[str, Any],
) -> list[FieldRow]:
    """Every field of the record, before and after, in the record's own order (the
    current state's, then fields only the previous state or the difference has).

    A creation has no "before" and a deletion no "after" (None, not null). A row made
    by the SQL procedures has neither document, only the difference: it gives both."""
    only_difference = previous is None and current is None
    names = _unique([*(current or {}), *(previous or {}), *difference])
    return [
        FieldRow(
            name=name,
            before=_side(previous, name, difference, 0, only_difference),
            after=_side(current, name, difference, 1, only_difference),
            changed=name in difference,
        )
        for name in names
    ]


def shown(value: Any) -> Shown:
    """A stored JSON value as the page prints it: text as itself, null as ``null``
    (styled apart), anything else as compact JSON (``true``, ``40``, ``{"a": 1}``)."""
    if value is None:
        return Shown("null", "null")
    if isinstance(value, str):
        return Shown(value, "text")
    return Shown(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(), "json")


def when(moment: dt.datetime) -> str:
    """A log's time as people read it: to the second, in UTC, and saying so."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _side(
    document: Mapping[str, Any] | None,
    name: str,
    difference: Mapping[str, Any],
    index: int,
    only_difference: bool,
) -> Shown | None:
    """A field's value on one side (0 before, 1 after), None where there is none."""
    if document is not None and name in document:
        return shown(document[name])
    if (document is not None or only_difference) and name in difference:
        return shown(difference[name][index])
    return None


def _person(email: str | None, user_id: Any) -> str:
    if email:
        return email
    return "System" if user_id is None else f"User {user_id}"


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
