"""How ``logs``, ``show`` and ``as-of`` print: Rich tables for people, JSON for programs.

Stored values are printed with ``Text`` (never as markup) and as JSON (``show_value``),
so ``"[redacted]"`` and ``null`` print as they are stored. A code the application's enum
no longer has prints as its number with a question mark instead of failing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..capture.keeper import Auditkeeper
from ..model.tables import AuditEntry
from ..query import EXPORT_COLUMNS, RecordState, RecordStatus
from .render import code_name, show_value

__all__ = ["entries_table", "entry_record", "entry_view", "state_record", "state_view"]


def entry_record(entry: AuditEntry, keeper: Auditkeeper) -> dict[str, Any]:
    """One entry as a JSON object with the fields (and order) of an export."""
    names = {
        "action_name": code_name(keeper.actions, entry.action),
        "entity_type_name": code_name(keeper.entity_types, entry.entity_type),
    }
    record = {}
    for column in EXPORT_COLUMNS:
        value = names[column] if column in names else getattr(entry, column)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif column in ("transaction_id", "user_id", "impersonator_user_id") and not (
            value is None or isinstance(value, int | str)
        ):
            value = str(value)
        record[column] = value
    return record


def state_record(state: RecordState, entity_type: str, key: Any) -> dict[str, Any]:
    """A point-in-time state as a JSON object."""
    entry = state.entry
    return {
        "entity_type": entity_type,
        "key": key,
        "status": state.status.value,
        "fields": None if state.fields is None else dict(state.fields),
        "last_entry_id": None if entry is None else entry.id,
        "last_changed_at": None if entry is None else entry.created_at.isoformat(),
    }


def entries_table(
    entries: Iterable[AuditEntry], keeper: Auditkeeper, *, ascii_only: bool = False
) -> Table:
    """One line per entry: id, when, action, record, who, and what changed."""
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
            _when(entry.created_at),
            code_name(keeper.actions, entry.action),
            _record(entry, keeper),
            Text(_by(entry)),
            Text("\n".join(_change_lines(entry, arrow))),
        )
    return table


def entry_view(entry: AuditEntry, keeper: Auditkeeper) -> RenderableType:
    """One entry in full: its columns, then each field's previous and current value."""
    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold", no_wrap=True)
    about.add_column(overflow="fold")
    context = entry.context
    for label, value in (
        ("id", str(entry.id)),
        ("when (UTC)", _when(entry.created_at, precise=True)),
        ("action", f"{code_name(keeper.actions, entry.action)} ({entry.action})"),
        ("record", _record(entry, keeper)),
        ("by", _by(entry).replace("\n", "; ")),
        ("tenant", entry.tenant_id or ""),
        ("transaction", "" if entry.transaction_id is None else str(entry.transaction_id)),
        ("context", "" if context is None else show_value(context)),
    ):
        about.add_row(label, Text(value))
    parts: list[RenderableType] = [about, Text("")]
    document = entry.changed_objects
    previous, current = document.get("previous"), document.get("current")
    fields = Table(expand=True)
    fields.add_column("field", no_wrap=True)
    if previous is None and current is None:
        # Written by SQL: only the difference is known.
        fields.add_column("old", overflow="fold", ratio=1)
        fields.add_column("new", overflow="fold", ratio=1)
        for name, change in entry.difference.items():
            fields.add_row(Text(name), Text(show_value(change[0])), Text(show_value(change[1])))
    else:
        fields.add_column("previous", overflow="fold", ratio=1)
        fields.add_column("current", overflow="fold", ratio=1)
        fields.add_column("changed", no_wrap=True)
        for name in dict.fromkeys([*(previous or {}), *(current or {})]):
            fields.add_row(
                Text(name),
                Text("" if previous is None else show_value(previous.get(name))),
                Text("" if current is None else show_value(current.get(name))),
                "yes" if name in entry.difference else "",
            )
    parts.append(fields)
    for key, label in (("descriptions", "description"), ("comments", "comment")):
        for name, note in (document.get(key) or {}).items():
            parts.append(Text(f"{label} of {name}: {note}"))
    event = document.get("event")
    if event:
        parts.append(
            Text(f"event: {event.get('name') or 'Event'}: {event.get('description') or ''}")
        )
    return Group(*parts)


def state_view(state: RecordState, keeper: Auditkeeper, title: str) -> RenderableType:
    """A record's status at the moment, the row that last changed it, and its fields."""
    lines: list[RenderableType] = [Text(f"{title}: {state.status.value}")]
    entry = state.entry
    if entry is not None:
        lines.append(
            Text(
                f"last changed by row {entry.id} ({code_name(keeper.actions, entry.action)}) "
                f"at {_when(entry.created_at, precise=True)} UTC, by "
                f"{_by(entry).replace(chr(10), '; ')}"
            )
        )
    if state.fields is not None:
        table = Table()
        table.add_column("field", no_wrap=True)
        deleted = state.status is RecordStatus.DELETED
        table.add_column("value when deleted" if deleted else "value", overflow="fold")
        for name, value in state.fields.items():
            table.add_row(Text(name), Text(show_value(value)))
        lines.append(table)
    return Group(*lines)


def _when(moment: dt.datetime, *, precise: bool = False) -> str:
    shown = moment.astimezone(dt.UTC)
    return shown.strftime("%Y-%m-%d %H:%M:%S.%f" if precise else "%Y-%m-%d %H:%M:%S")


def _record(entry: AuditEntry, keeper: Auditkeeper) -> str:
    key = entry.number_identifier if entry.number_identifier is not None else entry.entity_key
    return f"{code_name(keeper.entity_types, entry.entity_type)} {key}"


def _by(entry: AuditEntry) -> str:
    """The acting user as stored (a deleted user keeps her e-mail), the impersonator and
    the reason."""
    if entry.user_email is None and entry.user_id is None:
        lines = ["system"]
    else:
        lines = [entry.user_email or f"user {entry.user_id}"]
        if entry.user_id is None:
            lines.append("user_id: null")  # the user was deleted; the e-mail stays
    if entry.is_impersonated:
        lines.append(f"impersonated by {entry.impersonator_email or entry.impersonator_user_id}")
    if entry.reason is not None:
        lines.append(f"reason: {entry.reason}")
    return "\n".join(lines)


def _change_lines(entry: AuditEntry, arrow: str) -> list[str]:
    document = entry.changed_objects
    lines = []
    for name, change in entry.difference.items():
        old, new = [*change, None, None][:2] if isinstance(change, list) else (None, change)
        if document.get("previous") is None and document.get("current") is not None:
            lines.append(f"{name}: {show_value(new)}")
        elif document.get("current") is None and document.get("previous") is not None:
            lines.append(f"{name}: {show_value(old)}")
        else:
            lines.append(f"{name}: {show_value(old)} {arrow} {show_value(new)}")
    event = document.get("event")
    if event:
        lines.append(_event_line(event))
    return lines


def _event_line(event: dict[str, Any]) -> str:
    return f"event: {event.get('name') or 'Event'}: {event.get('description') or ''}"
