"""Related records in a trail: children, generic children, many-to-many and many-to-one.

Each option costs a fixed number of queries whatever the number of rows: the records
related now (one query on the application's table), the records related before (one
query on the log, by the value their ``previous`` document held), and the rows of all of
them (one indexed query). Who was related when is then read from the rows themselves,
so a child that moved shows as removed from its old owner and added to its new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, Table, inspect, select
from sqlalchemy.orm import Mapper, Session

from ..capture.plan import coerce
from ..model import values
from .log import (
    LogRow,
    RecordKey,
    Request,
    Rows,
    read_many,
    related_keys,
    stored_key,
)
from .options import (
    ChildSpec,
    ClassSpec,
    ColumnSpec,
    GenericSpec,
    ManyToManySpec,
    ManyToOneSpec,
    NameSpec,
    Specs,
)
from .render import OWN, Frame, RowKind, states

__all__ = ["Link", "Shown", "gather"]

_Values = dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Shown:
    """An audit row rendered with a frame (the entity's own, or a related record's)."""

    spec: ClassSpec
    row: LogRow
    frame: Frame


@dataclass(frozen=True, slots=True)
class Link:
    """A related record added or removed: its description is the record's name, read
    from the row (``name``) or looked up (``ref``)."""

    event: str
    kind: RowKind
    spec: ClassSpec
    row: LogRow
    name: str | None = None
    ref: tuple[NameSpec, Any] | None = None
    order: int = 0


Item = Shown | Link


Finish = Callable[[Rows], "tuple[list[Item], _Pending | None]"]


@dataclass(frozen=True, slots=True)
class _Pending:
    """An option waiting for rows: what it needs, and what it does with them (which may
    be to ask for more rows: a many-to-many option's related records' history)."""

    requests: list[Request]
    finish: Finish


def gather(
    session: Session, table: Table, specs: Specs, key_value: Any, own_rows: list[LogRow]
) -> list[Item]:
    """The entity's own rows and every related option's rows and links. The options'
    rows are read together: one query per round (two rounds at most)."""
    items: list[Item] = [Shown(specs.own, row, OWN) for row in own_rows]
    pending: list[_Pending] = []
    for option in specs.related:
        if isinstance(option, ChildSpec):
            pending.append(_children(specs.own, option, own_rows))
        elif isinstance(option, GenericSpec):
            pending.append(_generic(session, table, option, key_value))
        elif isinstance(option, ManyToManySpec):
            pending.append(_many_to_many(session, table, option, key_value))
        else:
            pending.append(_many_to_one(session, table, option, key_value))
    while pending:
        rows = read_many(session, table, [r for p in pending for r in p.requests])
        following: list[_Pending] = []
        for waiting in pending:
            found, more = waiting.finish(rows)
            items += found
            if more is not None:
                following.append(more)
        pending = following
    return items


# -- a child through a reference of the entity ----------------------------------------------


def _children(own: ClassSpec, option: ChildSpec, own_rows: list[LogRow]) -> _Pending:
    """Each record the reference pointed at: its rows until the reference left it."""
    name = option.column.name
    until: dict[RecordKey, dt.datetime | None] = {}
    for row, before, after in states(own, own_rows):
        old = stored_key(option.child, (before or {}).get(name))
        new = stored_key(option.child, (after or {}).get(name))
        if old is not None and old != new:
            until[old] = row.created_at
        if new is not None:
            until[new] = None
    words = option.words
    frame = Frame(
        created=f"{option.display} added" if "Created" in words else None,
        updated=f"{option.display} updated" if "Updated" in words else None,
        deleted=f"{option.display} removed" if "Deleted" in words else None,
        event=f"{option.display} event",
        created_kind=RowKind.ADDED,
        deleted_kind=RowKind.REMOVED,
        fields=option.fields,
        events=option.fields is None,
    )

    def finish(rows: Rows) -> tuple[list[Item], _Pending | None]:
        items: list[Item] = []
        for key, end in until.items():
            for row in rows.get((option.child.cls, key), []):
                if end is None or row.created_at <= end:
                    items.append(Shown(option.child, row, frame))
        return items, None

    return _Pending([([option.child], list(until))], finish)


# -- generic children (owner id + owner type) ------------------------------------------------


def _generic(session: Session, table: Table, option: GenericSpec, key_value: Any) -> _Pending:
    child = option.child
    owner_id = _json(option.owner_id, key_value)

    def linked(state: _Values) -> bool:
        return (
            state is not None
            and state.get(option.owner_id.name) == owner_id
            and state.get(option.owner_type.name) in option.owner_types
        )

    now = [
        option.owner_id.column == _as_column(key_value, option.owner_id),
        option.owner_type.column.in_(sorted(option.owner_types)),
    ]
    keys = related_keys(session, table, child, now, option.owner_id, owner_id)
    quoted = f'"{option.display}"'

    def finish(rows: Rows) -> tuple[list[Item], _Pending | None]:
        items: list[Item] = []
        for key in sorted(keys, key=str):
            for row, before, after in states(child, rows.get((child.cls, key), [])):
                was, now = linked(before), linked(after)
                if now and not was:
                    name = _name(option.name_key, after, before, child, key)
                    items.append(Link(f"{quoted} added", RowKind.ADDED, child, row, name))
                elif was and not now:
                    word = "deleted" if after is None else "removed"
                    kind = RowKind.DELETED if after is None else RowKind.REMOVED
                    name = _name(option.name_key, before, after, child, key)
                    items.append(Link(f"{quoted} {word}", kind, child, row, name))
        return items, None

    return _Pending([([child], keys)], finish)


# -- many-to-many through a relation entity ----------------------------------------------------


def _many_to_many(
    session: Session, table: Table, option: ManyToManySpec, key_value: Any
) -> _Pending:
    relation = option.relation
    own_value = _json(option.own, key_value)
    related = option.related.name

    def linked(state: _Values) -> bool:
        return state is not None and state.get(option.own.name) == own_value

    now = [option.own.column == _as_column(key_value, option.own)]
    keys = related_keys(session, table, relation, now, option.own, own_value)
    quoted = f'"{option.display}"'

    def finish(rows: Rows) -> tuple[list[Item], _Pending | None]:
        found: list[tuple[LogRow, RowKind, Any]] = []
        for key in sorted(keys, key=str):
            for row, before, after in states(relation, rows.get((relation.cls, key), [])):
                was, now = linked(before), linked(after)
                old = (before or {}).get(related) if was else None
                new = (after or {}).get(related) if now else None
                if was and (not now or old != new):
                    found.append((row, RowKind.REMOVED, old))
                if now and (not was or old != new):
                    found.append((row, RowKind.ADDED, new))
        allowed = _of_type(session, option, {value for _, _, value in found})
        items: list[Item] = []
        spans: dict[Any, list[list[dt.datetime | None]]] = {}
        for order, (row, kind, value) in enumerate(found):
            if value is None or (allowed is not None and _plain(value) not in allowed):
                continue
            word = "added" if kind is RowKind.ADDED else "removed"
            items.append(
                Link(
                    f"{quoted} {word}", kind, relation, row, ref=(option.target, value), order=order
                )
            )
            if kind is RowKind.ADDED:
                spans.setdefault(value, []).append([row.created_at, None])
            elif spans.get(value):
                spans[value][-1][1] = row.created_at
        history = _related_history(option, spans) if option.history and spans else None
        return items, history

    return _Pending([([relation], keys)], finish)


def _of_type(session: Session, option: ManyToManySpec, values_: set[Any]) -> set[Any] | None:
    """With ``related_type``: the related keys that are of that class (one query)."""
    if option.only_type is None:
        return None
    wanted = [coerce(v, option.target.key_column().type) for v in values_ if v is not None]
    if not wanted:
        return set()
    mapper: Mapper[Any] = inspect(option.only_type)
    # The subclass's own attribute: it brings the single-table inheritance criteria.
    key_attribute = getattr(
        option.only_type, mapper.get_property_by_column(mapper.primary_key[0]).key
    )
    statement = select(key_attribute).where(key_attribute.in_(wanted))
    return {_plain(values.to_json_value(k)) for k in session.scalars(statement)}


def _related_history(
    option: ManyToManySpec, spans: dict[Any, list[list[dt.datetime | None]]]
) -> _Pending:
    """The related records' own rows while they were related, with ``audited_fields``."""
    quoted = f'"{option.display}"'
    frame = Frame(
        created=f"{quoted} created" if "Created" in option.words else None,
        updated=f"{quoted} updated" if "Updated" in option.words else None,
        deleted=f"{quoted} deleted" if "Deleted" in option.words else None,
        event=f"{quoted} event",
        fields=option.fields,
        events=False,
    )
    base = option.history[0]
    periods_by_key: dict[RecordKey, list[list[dt.datetime | None]]] = {}
    for value, periods in spans.items():
        key = stored_key(base, value)
        if key is not None:
            periods_by_key[key] = periods

    def finish(rows: Rows) -> tuple[list[Item], _Pending | None]:
        items: list[Item] = []
        for spec in option.history:
            for key, periods in periods_by_key.items():
                for row in rows.get((spec.cls, key), []):
                    if _within(row.created_at, periods):
                        items.append(Shown(spec, row, frame))
        return items, None

    return _Pending([(list(option.history), list(periods_by_key))], finish)


# -- many-to-one: records whose reference points at the entity ----------------------------------


def _many_to_one(session: Session, table: Table, option: ManyToOneSpec, key_value: Any) -> _Pending:
    child = option.child
    owner = _json(option.column, key_value)

    def linked(state: _Values) -> bool:
        return state is not None and state.get(option.column.name) == owner

    now = [option.column.column == _as_column(key_value, option.column)]
    keys = related_keys(session, table, child, now, option.column, owner)
    quoted = f'"{option.display}"'

    def finish(rows: Rows) -> tuple[list[Item], _Pending | None]:
        items: list[Item] = []
        for key in sorted(keys, key=str):
            for row, before, after in states(child, rows.get((child.cls, key), [])):
                was, now = linked(before), linked(after)
                if now and not was:
                    name = _name(option.name_key, after, before, child, key)
                    items.append(Link(f"{quoted} added", RowKind.ADDED, child, row, name))
                elif was and not now:
                    name = _name(option.name_key, before, after, child, key)
                    items.append(Link(f"{quoted} removed", RowKind.REMOVED, child, row, name))
                elif was and now:
                    items.append(Shown(child, row, _updates_frame(option, after, before, key)))
        return items, None

    return _Pending([([child], keys)], finish)


def _updates_frame(option: ManyToOneSpec, after: _Values, before: _Values, key: RecordKey) -> Frame:
    """How a linked many-to-one record's own rows read: ``{name} updated``."""
    name = _name(option.name_key, after, before, option.child, key)
    return Frame(
        created=None,
        updated=f"{name} updated" if "Updated" in option.words else None,
        deleted=f"{name} deleted" if "Deleted" in option.words else None,
        event=f"{name} event",
        fields=option.fields,
        events=option.fields is None,
    )


# -- helpers ----------------------------------------------------------------------------------


def _as_column(key_value: Any, column: ColumnSpec) -> Any:
    """The owner's key as ``column`` holds it (a UUID key in a text column as text)."""
    coerced = coerce(key_value, column.column_type)
    if isinstance(column.column_type, String) and not isinstance(coerced, str):
        return str(values.to_json_value(coerced))
    return coerced


def _json(column: ColumnSpec, key_value: Any) -> Any:
    """The owner's key as ``column`` stores it in a document."""
    return values.to_json_value(_as_column(key_value, column))


def _name(
    name_key: str | None, first: _Values, second: _Values, spec: ClassSpec, key: RecordKey
) -> str:
    """A related record's name from its stored values, else ``{Label} {id}``."""
    if name_key is not None:
        for state in (first, second):
            if state is not None and state.get(name_key) is not None:
                return str(state[name_key])
    return f"{spec.label} {key}"


def _plain(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _within(moment: dt.datetime, periods: Iterable[list[dt.datetime | None]]) -> bool:
    return any(
        start is not None and start <= moment and (end is None or moment <= end)
        for start, end in periods
    )
