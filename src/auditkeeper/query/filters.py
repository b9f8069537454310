"""``LogFilter``: which audit rows a query wants, and the SQL conditions that find them.

A ``LogFilter`` is a frozen value that holds what the user said (names or codes, keys as
given); ``resolve()`` checks it against an ``Auditkeeper`` (unknown names are errors) and
returns a ``ResolvedFilter`` of stored codes, which builds the ``WHERE`` conditions and a
fingerprint that page cursors carry, so a cursor cannot be replayed on another query.

Every condition but ``text`` is one that an index of the log serves on PostgreSQL, alone
or with the ``(created_at, id)`` order of a page (docs/query.md, "Indexes"); a text
search walks the rows the other conditions select until the page is full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Table, false, true

from ..errors import CaptureError, InvalidFilterError
from ..model import values
from .fields import field_changed
from .resolve import (
    CodeRef,
    RecordIdentity,
    column_name,
    entity_plans,
    resolve_codes,
    resolve_record,
)
from .text import text_matches

if TYPE_CHECKING:
    from ..capture.keeper import Auditkeeper

__all__ = ["UNSET", "LogFilter", "ResolvedFilter", "Unset", "resolve"]


class Unset(enum.Enum):
    """The type of ``UNSET``: "not given", where ``None`` is a meaningful value."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset.UNSET
"""``changed_to`` not given (``changed_to=None`` means "changed to null")."""


@dataclass(frozen=True)
class LogFilter:
    """Which audit rows to read; every given criterion must hold (they combine with AND).

    ::

        LogFilter(entity_type="LEAD", record=42)                  # one record's rows
        LogFilter(user_id=7, since=march_1, until=april_1)        # what user 7 did in March
        LogFilter(entity_type="LEAD", field="status", changed_to="won")

    ``entity_type`` and ``action`` take an enum member, a code or a name (any case), or a
    list of them. ``record`` (the record's primary key: an int, str, UUID, or a tuple for
    a composite key) needs exactly one ``entity_type``. ``since`` is inclusive and
    ``until`` exclusive; both must be timezone-aware. ``field`` is a column name: rows
    whose ``difference`` lists it (creations and deletions list every non-null field);
    ``changed_to`` narrows those to rows whose new value is the given one (``None``: set
    to null). ``text`` keeps rows whose document (values and field names), user e-mail or
    reason contains it, in any case (``%`` and ``_`` are plain characters).
    ``newest_first=False`` reads oldest first.
    """

    entity_type: CodeRef | tuple[CodeRef, ...] | None = None
    record: Any = None
    action: CodeRef | tuple[CodeRef, ...] | None = None
    user_id: Any = None
    user_email: str | None = None
    impersonated: bool | None = None
    impersonator_id: Any = None
    impersonator_email: str | None = None
    tenant_id: str | int | None = None
    transaction_id: uuid.UUID | str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    field: str | None = None
    changed_to: Any = UNSET
    text: str | None = None
    newest_first: bool = True

    def __post_init__(self) -> None:
        for name in ("entity_type", "action"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | int | tuple):
                object.__setattr__(self, name, tuple(_items(name, value)))
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is None:
                continue
            if not isinstance(moment, dt.datetime):
                raise InvalidFilterError(f"{name} must be a datetime, got {moment!r}")
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise InvalidFilterError(
                    f"{name}={moment!r} has no time zone: give one (e.g. tzinfo=datetime.UTC) "
                    "so the range does not depend on the server's clock"
                )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidFilterError(
                f"since ({self.since.isoformat()}) must be before until "
                f"({self.until.isoformat()}): the range is empty"
            )
        if self.transaction_id is not None and not isinstance(self.transaction_id, uuid.UUID):
            try:
                object.__setattr__(self, "transaction_id", uuid.UUID(str(self.transaction_id)))
            except ValueError:
                raise InvalidFilterError(
                    f"transaction_id {self.transaction_id!r} is not a UUID"
                ) from None
        if self.field is not None and (not isinstance(self.field, str) or not self.field):
            raise InvalidFilterError(f"field must be a column name, got {self.field!r}")
        if self.text is not None and (not isinstance(self.text, str) or not self.text):
            raise InvalidFilterError(f"text must be a non-empty string, got {self.text!r}")
        if self.changed_to is not UNSET and self.field is None:
            raise InvalidFilterError("changed_to needs field: which field changed to that value?")
        single_type = self.entity_type is not None and not (
            isinstance(self.entity_type, tuple) and len(self.entity_type) != 1
        )
        if self.record is not None and not single_type:
            raise InvalidFilterError(
                f"record={self.record!r} needs exactly one entity_type: keys are per entity type"
            )
        impersonator_given = self.impersonator_id is not None or self.impersonator_email
        if impersonator_given and self.impersonated is False:
            raise InvalidFilterError(
                "impersonated=False contradicts an impersonator: only impersonated rows have one"
            )


@dataclass(frozen=True)
class ResolvedFilter:
    """A ``LogFilter`` in stored codes and keys, checked against one ``Auditkeeper``."""

    source: LogFilter
    entity_types: tuple[int, ...] | None
    actions: tuple[int, ...] | None
    record: RecordIdentity | None
    field: str | None
    """The column name of ``source.field`` (an attribute name is translated)."""
    _canonical: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    @property
    def newest_first(self) -> bool:
        return self.source.newest_first

    def criteria(self, table: Table, dialect: str) -> list[ColumnElement[bool]]:
        """The ``WHERE`` conditions, for ``dialect`` ("sqlite" or "postgresql")."""
        f = self.source
        c = table.c
        found: list[ColumnElement[bool]] = []
        if self.entity_types is not None:
            found.append(_one_of(c.entity_type, self.entity_types))
        if self.record is not None:
            if self.record.number_identifier is not None:
                found.append(c.number_identifier == self.record.number_identifier)
            else:
                found.append(c.entity_key == self.record.entity_key_in(dialect))
        if self.actions is not None:
            found.append(_one_of(c.action, self.actions))
        if f.user_id is not None:
            found.append(c.user_id == f.user_id)
        if f.user_email is not None:
            found.append(c.user_email == f.user_email)
        impersonator = f.impersonator_id is not None or f.impersonator_email is not None
        if f.impersonated or impersonator:
            # Written as the partial index's own predicate, so the planner can use it.
            found.append(c.is_impersonated == true())
        elif f.impersonated is False:
            found.append(c.is_impersonated == false())
        if f.impersonator_id is not None:
            found.append(c.impersonator_user_id == f.impersonator_id)
        if f.impersonator_email is not None:
            found.append(c.impersonator_email == f.impersonator_email)
        if f.tenant_id is not None:
            found.append(c.tenant_id == str(f.tenant_id))
        if f.transaction_id is not None:
            found.append(c.transaction_id == f.transaction_id)
        if f.since is not None:
            found.append(c.created_at >= f.since)
        if f.until is not None:
            found.append(c.created_at < f.until)
        if self.field is not None:
            found.append(
                field_changed(
                    table,
                    dialect,
                    self.field,
                    to=None if f.changed_to is UNSET else f.changed_to,
                    match_value=f.changed_to is not UNSET,
                )
            )
        if f.text is not None:
            found.append(text_matches(table, f.text))
        return found

    def fingerprint(self) -> str:
        """A short digest of the resolved filter and its order: equal for equal queries,
        in any process, so a page cursor can tell which query made it."""
        digest = hashlib.sha256(orjson.dumps(self._canonical, option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()[:16]


def resolve(log_filter: LogFilter, keeper: Auditkeeper) -> ResolvedFilter:
    """Check ``log_filter`` against ``keeper``'s enums and classes; raise
    ``InvalidFilterError`` naming the first unknown value."""
    f = log_filter
    entity_types = (
        None
        if f.entity_type is None
        else resolve_codes("entity type", keeper.entity_types, f.entity_type)
    )
    actions = None if f.action is None else resolve_codes("action", keeper.actions, f.action)
    plans = entity_plans(keeper) if f.record is not None or f.field is not None else {}
    record = None
    if f.record is not None and entity_types is not None:
        record = resolve_record(plans.get(entity_types[0]), f.record)
    field_name = f.field
    if field_name is not None and entity_types is not None:
        field_name = column_name([plans.get(code) for code in entity_types], field_name)
    canonical = {
        "entity_types": entity_types,
        "actions": actions,
        "record": (
            None
            if record is None
            else [record.number_identifier, record.entity_key, record.sqlite_entity_key]
        ),
        "user_id": _json(f.user_id),
        "user_email": f.user_email,
        "impersonated": f.impersonated,
        "impersonator_id": _json(f.impersonator_id),
        "impersonator_email": f.impersonator_email,
        "tenant_id": None if f.tenant_id is None else str(f.tenant_id),
        "transaction_id": None if f.transaction_id is None else str(f.transaction_id),
        "since": _instant(f.since),
        "until": _instant(f.until),
        "field": field_name,
        "changed_to": "UNSET" if f.changed_to is UNSET else [_json(f.changed_to)],
        "text": f.text,
        "newest_first": f.newest_first,
    }
    return ResolvedFilter(f, entity_types, actions, record, field_name, canonical)


def _items(name: str, value: Any) -> Iterable[Any]:
    if isinstance(value, Iterable):
        return value
    raise InvalidFilterError(f"{name} must be a name, a code or a list of them, got {value!r}")


def _one_of(column: Any, codes: tuple[int, ...]) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column == codes[0] if len(codes) == 1 else column.in_(codes)
    return result


def _json(value: Any) -> Any:
    try:
        return values.to_json_value(value)
    except CaptureError:  # a value JSON cannot hold still gets a stable fingerprint
        return repr(value)


def _instant(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()
