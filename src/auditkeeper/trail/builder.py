"""``trail()``: a record's audit trail, newest first, as Shesha's DataTable shows it.

The steps, each a bounded number of queries: the record's own rows (one indexed query),
the related options' rows (``related.py``), the names of referenced records (one query
per referenced class), the users' names (one call of the resolver). Then the rows after
the change that ends the trail are dropped, and the rest are filtered, sorted and paged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy.orm import Session

from ..capture.declaration import declaration_of
from ..capture.keeper import Auditkeeper
from ..errors import ConfigurationError
from .log import LogRow, dialect_of, read_rows, record_key
from .options import ClassSpec, NameSpec, Specs, keeper_of, specs_for
from .related import Item, Link, Shown, gather
from .render import OWN, Draft, RowKind, render
from .users import UserNames, resolve_users, user_text
from .values import FromLog, Names, text_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["SORT_FIELDS", "TrailPage", "TrailRow", "trail", "trail_async"]

SORT_FIELDS = ("date", "event", "description", "user", "entity")
"""What ``sort=`` accepts, each optionally prefixed with ``-`` for descending."""


@dataclass(frozen=True, slots=True)
class TrailRow:
    """One row of an audit trail: Type of event, Description, User, Date, and what the
    row is about."""

    event: str
    """Type of event: ``Created``, ``Updated``, ``"Member" added``, an event's name..."""
    description: str
    user: str
    """The acting user's name (and, when impersonated, who impersonated)."""
    date: dt.datetime
    kind: RowKind
    entity: str
    """The class of the record the row is about (the entity or a related record)."""
    entity_id: int | str
    """That record's key as the log stores it."""
    entry_id: int
    """The audit row it comes from."""
    impersonator: str | None = None


class TrailPage(Sequence[TrailRow]):
    """One page of a trail; ``total`` counts the rows that matched, on every page."""

    def __init__(self, rows: list[TrailRow], total: int) -> None:
        self.rows = rows
        self.total = total

    @overload
    def __getitem__(self, index: int) -> TrailRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[TrailRow]: ...
    def __getitem__(self, index: int | slice) -> TrailRow | Sequence[TrailRow]:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[TrailRow]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"<TrailPage rows={len(self.rows)} total={self.total}>"


def trail(
    session: Session,
    entity: type,
    id: Any,
    *,
    keeper: Auditkeeper | None = None,
    user_names: UserNames | None = None,
    related: bool = True,
    search: str | None = None,
    sort: str = "-date",
    skip: int = 0,
    limit: int | None = None,
) -> TrailPage:
    """The audit trail of the ``entity`` record whose primary key is ``id``.

    ``user_names`` names users (``User.full_name`` or a function of the ids); without
    it the User column shows the stored e-mail. ``related=False`` leaves out related
    records. ``search`` keeps rows whose texts contain it (any case); ``sort`` is one of
    ``SORT_FIELDS``, ``-`` for descending (default ``-date``: newest first); ``skip``
    and ``limit`` page the result, whose ``total`` counts every matching row.
    """
    keeper = keeper if keeper is not None else keeper_of(entity)
    order = _sort_key(sort)
    if skip < 0 or (limit is not None and limit < 0):
        raise ValueError(f"skip and limit must not be negative, got skip={skip}, limit={limit}")
    specs = specs_for(keeper, entity)
    table = keeper.table
    key = record_key(specs.own, id, dialect=dialect_of(session, specs.own))
    own_rows = read_rows(session, table, [specs.own], [key]).get((specs.own.cls, key), [])
    if related:
        items = gather(session, table, specs, id, own_rows)
    else:
        items = [Shown(specs.own, row, OWN) for row in own_rows]
    names = Names()
    _want_names(items, names)
    names.fetch(session, from_log=_last_names(session, keeper))
    cutoff = _cutoff(specs, own_rows, names)
    drafts = [d for d in _drafts(items, names) if cutoff is None or d.row.created_at <= cutoff]
    users = resolve_users(
        session,
        user_names,
        {d.row.user_id for d in drafts} | {d.row.impersonator_user_id for d in drafts},
    )
    rows = [(_trail_row(d, users), d.order) for d in drafts]
    if search:
        needle = search.casefold()
        rows = [r for r in rows if needle in _haystack(r[0])]
    field, descending = order
    rows.sort(key=_ordering(field), reverse=descending)
    total = len(rows)
    page = rows[skip:] if limit is None else rows[skip : skip + limit]
    return TrailPage([row for row, _ in page], total)


async def trail_async(
    session: AsyncSession,
    entity: type,
    id: Any,
    *,
    keeper: Auditkeeper | None = None,
    user_names: UserNames | None = None,
    related: bool = True,
    search: str | None = None,
    sort: str = "-date",
    skip: int = 0,
    limit: int | None = None,
) -> TrailPage:
    """``trail()`` for an ``AsyncSession``."""

    def run(sync_session: Session) -> TrailPage:
        return trail(
            sync_session,
            entity,
            id,
            keeper=keeper,
            user_names=user_names,
            related=related,
            search=search,
            sort=sort,
            skip=skip,
            limit=limit,
        )

    return await session.run_sync(run)


def _want_names(items: list[Item], names: Names) -> None:
    """Ask for every referenced record's name the rows will print."""
    for item in items:
        if isinstance(item, Link):
            if item.ref is not None:
                names.want(item.ref[0], [item.ref[1]])
            continue
        references = item.spec.references
        if not references:
            continue
        document = item.row.changed_objects
        previous, current = document.get("previous"), document.get("current")
        if (previous is None) != (current is None):
            continue  # a creation or a deletion prints no values
        difference = document.get("difference") or {}
        for name in references.keys() & difference.keys():
            reference = references[name].reference
            pair = difference[name]
            if reference is not None:
                names.want(reference, pair if isinstance(pair, list) else [pair])


def _last_names(session: Session, keeper: Auditkeeper) -> FromLog:
    """Names of deleted records from their last audit rows (when their class is audited
    and its name column too)."""

    def from_log(spec: NameSpec, keys: list[Any]) -> dict[Any, str]:
        if spec.name_key is None or declaration_of(spec.cls) is None:
            return {}
        owner = specs_for(keeper, spec.cls).own
        dialect = dialect_of(session, owner)
        stored = [record_key(owner, key, dialect=dialect) for key in keys]
        rows = read_rows(session, keeper.table, [owner], stored)
        found: dict[Any, str] = {}
        for key, record in zip(keys, stored, strict=True):
            for row in reversed(rows.get((owner.cls, record), [])):
                document = row.changed_objects
                values = document.get("current") or document.get("previous") or {}
                if values.get(spec.name_key) is not None:
                    found[key] = str(values[spec.name_key])
                    break
        return found

    return from_log


def _drafts(items: list[Item], names: Names) -> list[Draft]:
    drafts: list[Draft] = []
    for item in items:
        if isinstance(item, Shown):
            drafts += render(item.spec, item.row, item.frame, names)
        else:
            description = item.name if item.ref is None else names.name(item.ref[0], item.ref[1])
            drafts.append(
                Draft(item.event, description or "", item.kind, item.row, item.spec, item.order)
            )
    return drafts


def _cutoff(specs: Specs, own_rows: list[LogRow], names: Names) -> dt.datetime | None:
    """When the entity's stop property first changed to its stop value, if it did."""
    own = specs.own
    if not own.stops:
        return None
    for row in own_rows:
        difference = row.changed_objects.get("difference") or {}
        for column, value in own.stops:
            pair = difference.get(column.name)
            if pair is None:
                continue
            new = pair[1] if isinstance(pair, list) and len(pair) == 2 else pair
            if new is None:
                continue
            if value in (text_of(column, new, names), str(new).strip("\"'`")):
                return row.created_at
    return None


def _trail_row(draft: Draft, users: Any) -> TrailRow:
    row = draft.row
    user = user_text(row.user_id, row.user_email, users)
    impersonator = None
    if row.is_impersonated:
        if row.impersonator_user_id is not None or row.impersonator_email:
            impersonator = user_text(row.impersonator_user_id, row.impersonator_email, users)
            user = f"{user} (impersonated by {impersonator})"
        else:
            user = f"{user} (impersonated)"
    return TrailRow(
        event=draft.event,
        description=draft.description,
        user=user,
        date=row.created_at,
        kind=draft.kind,
        entity=_entity_name(draft.spec),
        entity_id=row.key,
        entry_id=row.id,
        impersonator=impersonator,
    )


def _entity_name(spec: ClassSpec) -> str:
    return spec.cls.__name__


def _haystack(row: TrailRow) -> str:
    return "\n".join((row.event, row.description, row.user, row.date.isoformat())).casefold()


def _sort_key(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    field = sort.removeprefix("-").strip().lower()
    if field not in SORT_FIELDS:
        raise ConfigurationError(
            f"sort={sort!r} is not one of {', '.join(SORT_FIELDS)} (prefix - for descending)"
        )
    return field, descending


def _ordering(field: str) -> Callable[[tuple[TrailRow, int]], Any]:
    """Sort key: the field, then time, audit row and position within it (the order in
    which things happened)."""

    def by_date(item: tuple[TrailRow, int]) -> Any:
        row, position = item
        return (row.date, row.entry_id, position)

    if field == "date":
        return by_date

    def by_text(item: tuple[TrailRow, int]) -> Any:
        row, position = item
        return (str(getattr(row, field)).casefold(), row.date, row.entry_id, position)

    return by_text
