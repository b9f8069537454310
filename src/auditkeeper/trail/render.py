"""One audit row into trail rows: the texts of DESIGN.md's table.

A row is a custom event (its document has ``"event"``), a creation (no ``previous``), a
deletion (no ``current``, or a declared soft-delete column turned on) or an update.
Rows written by the SQL procedures have neither ``previous`` nor ``current``; their
action tells the verb. An update shows one text per changed property, joined by ``"; "``;
a property with an event creator becomes its own row instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from .log import LogRow, classify, pair
from .options import ClassSpec, ColumnSpec
from .values import Names, python_value, text_of

__all__ = ["OWN", "Draft", "Frame", "RowKind", "property_text", "render", "states", "verb_of"]


class RowKind(enum.Enum):
    """What a trail row records (Shesha's ``HistoryItemType``)."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    ADDED = "added"
    REMOVED = "removed"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Frame:
    """How the rows of one record are labelled and filtered in this trail: the entity's
    own rows, or a related record's rows (``Parent added``, ``"Member" updated``)."""

    created: str | None
    updated: str | None
    deleted: str | None
    event: str
    """The Type of event of a custom event that has no name."""
    created_kind: RowKind = RowKind.CREATED
    deleted_kind: RowKind = RowKind.DELETED
    fields: frozenset[str] | None = None
    """Only these columns' changes (None: all)."""
    events: bool = True
    """Whether custom events are shown."""


OWN = Frame("Created", "Updated", "Deleted", "Event")


@dataclass(frozen=True, slots=True)
class Draft:
    """A trail row before its user is resolved."""

    event: str
    description: str
    kind: RowKind
    row: LogRow
    spec: ClassSpec
    order: int = 0
    """Position among the trail rows of the same audit row."""


def verb_of(spec: ClassSpec, row: LogRow) -> str:
    """``event``, ``create``, ``update`` or ``delete`` (read once, with the row)."""
    return row.verb or classify(spec, row.action, row.changed_objects)


def render(spec: ClassSpec, row: LogRow, frame: Frame, names: Names) -> list[Draft]:
    """The trail rows of one audit row, in the order they happened."""
    document = row.changed_objects
    verb = verb_of(spec, row)
    if verb == "event":
        if not frame.events:
            return []
        event = document["event"]
        name = event.get("name")
        return [
            Draft(name or frame.event, event.get("description") or "", RowKind.EVENT, row, spec)
        ]
    if verb == "create" or (
        verb == "delete"
        and document.get("previous") is not None
        and (document.get("current") is None)
    ):
        label = frame.created if verb == "create" else frame.deleted
        kind = frame.created_kind if verb == "create" else frame.deleted_kind
        return [] if label is None else [Draft(label, "", kind, row, spec)]
    drafts: list[Draft] = []
    texts: list[str] = []
    descriptions: dict[str, str] = document.get("descriptions") or {}
    comments: dict[str, str] = document.get("comments") or {}
    difference: dict[str, Any] = document.get("difference") or {}
    skip = spec.soft_delete.name if verb == "delete" and spec.soft_delete is not None else None
    for name in ordered(spec, difference):
        if name == skip or (frame.fields is not None and name not in frame.fields):
            continue
        column = spec.column(name)
        old, new = pair(difference[name])
        if column is not None and column.creator is not None:
            event, text = _created_event(spec, column, row, old, new)
            text = descriptions.get(name) or text
            if comments.get(name):
                text = f"{text} ({comments[name]})" if text else comments[name]
            drafts.append(
                Draft(event or frame.event, text, RowKind.EVENT, row, spec, order=len(drafts))
            )
            continue
        texts.append(
            property_text(column, name, old, new, descriptions.get(name), comments.get(name), names)
        )
    combined = "; ".join(texts)
    if verb == "update":
        if combined and frame.updated is not None:
            drafts.append(Draft(frame.updated, combined, RowKind.UPDATED, row, spec, len(drafts)))
    elif frame.deleted is not None:
        drafts.append(Draft(frame.deleted, combined, frame.deleted_kind, row, spec, len(drafts)))
    return drafts


def property_text(
    column: ColumnSpec | None,
    name: str,
    old: Any,
    new: Any,
    description: str | None,
    comment: str | None,
    names: Names,
) -> str:
    """The text of one property's change: the description if one was given, else the
    boolean text, else the default; then `` ({comment})``."""
    display = column.display if column is not None else name
    if description:
        text = description
    elif column is not None and column.true_text is not None:
        text = column.true_text if new is True else (column.false_text or "")
    elif column is not None and column.redacted:
        text = f'"{display}" was changed'
    else:
        text = (
            f'"{display}" was changed from "{text_of(column, old, names)}" '
            f'to "{text_of(column, new, names)}"'
        )
    return f"{text} ({comment})" if comment else text


def ordered(spec: ClassSpec, difference: dict[str, Any]) -> list[str]:
    """Column names in the class's column order (JSONB does not keep key order)."""
    if len(difference) < 2:
        return list(difference)
    far = len(spec.columns)

    def position(name: str) -> tuple[int, str]:
        column = spec.column(name)
        return (column.position if column is not None else far, name)

    return sorted(difference, key=position)


def states(
    spec: ClassSpec, rows: list[LogRow]
) -> list[tuple[LogRow, dict[str, Any] | None, dict[str, Any] | None]]:
    """``(row, values before, values after)`` of a record's rows, oldest first; None
    when the record did not exist (or was deleted). Rows written by SQL carry only the
    changed values, which are applied to the values known before them."""
    result: list[tuple[LogRow, dict[str, Any] | None, dict[str, Any] | None]] = []
    known: dict[str, Any] | None = None
    for row in rows:
        document = row.changed_objects
        verb = verb_of(spec, row)
        if verb == "event":
            result.append((row, known, known))
            continue
        previous, current = document.get("previous"), document.get("current")
        difference = document.get("difference") or {}
        if verb == "create":
            before = None
        elif previous is not None:
            before = previous
        else:
            before = dict(known or {}) | {k: pair(v)[0] for k, v in difference.items()}
        if verb == "delete":
            after = None
        elif current is not None:
            after = current
        else:
            after = dict(before or {}) | {k: pair(v)[1] for k, v in difference.items()}
        result.append((row, before, after))
        known = after
    return result


def _created_event(
    spec: ClassSpec, column: ColumnSpec, row: LogRow, old: Any, new: Any
) -> tuple[str | None, str]:
    """Run the column's event creator; a failure names the class, property and creator."""
    from ..capture.declaration import PropertyChange

    creator = column.creator
    if creator is None:  # pragma: no cover - callers check
        return None, ""
    change = PropertyChange(
        entity_class=spec.cls,
        property=column.key,
        old_value=python_value(column, old),
        new_value=python_value(column, new),
        entity_id=row.key,
    )
    where = f"the event creator {column.creator_label} of {spec.cls.__name__}.{column.key}"
    try:
        result = creator(change)
    except Exception as error:
        raise ConfigurationError(
            f"{where} raised {error!r} for the change from {change.old_value!r} to "
            f"{change.new_value!r} (audit row {row.id})"
        ) from error
    if (
        not isinstance(result, tuple)
        or len(result) != 2
        or not all(part is None or isinstance(part, str) for part in result)
    ):
        raise ConfigurationError(
            f"{where} returned {result!r}; it must return (event name, description), "
            "e.g. self.event(name, description)"
        )
    name, description = result
    return name, description or ""
