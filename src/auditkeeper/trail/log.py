"""Reading audit rows for a trail: a bounded number of indexed queries.

Rows of records are read by ``(entity_type, number_identifier | entity_key)``, which the
log's indexes ``ix_audit_log_record`` / ``ix_audit_log_record_key`` (both ending in
``created_at``) serve, for many records at once with ``IN``. Records that used to be
related (a child moved elsewhere, a deleted relation) are found by the value their
stored ``previous`` document held.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CompoundSelect,
    Float,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from ..capture.document import encode_key, identify
from ..model import values
from .indexes import SECTIONS, lookup_expression
from .options import ClassSpec, ColumnSpec

__all__ = [
    "LogRow",
    "classify",
    "pair",
    "RecordKey",
    "Request",
    "Rows",
    "former_statement",
    "read_many",
    "read_rows",
    "dialect_of",
    "record_key",
    "related_keys",
    "stored_key",
]

RecordKey = int | str
"""A record's key as the log stores it: ``number_identifier`` or ``entity_key``."""

_COLUMNS = (
    "id",
    "action",
    "entity_type",
    "number_identifier",
    "entity_key",
    "changed_objects",
    "user_id",
    "user_email",
    "is_impersonated",
    "impersonator_user_id",
    "impersonator_email",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One stored audit row, as the trail reads it."""

    id: int
    action: int
    entity_type: int
    number_identifier: int | None
    entity_key: str | None
    changed_objects: dict[str, Any]
    user_id: Any
    user_email: str | None
    is_impersonated: bool
    impersonator_user_id: Any
    impersonator_email: str | None
    created_at: dt.datetime
    verb: str = ""
    """``event``, ``create``, ``update`` or ``delete``: see ``classify``."""

    @property
    def key(self) -> RecordKey:
        return (
            self.number_identifier if self.number_identifier is not None else str(self.entity_key)
        )


def classify(spec: ClassSpec, action: int, document: dict[str, Any]) -> str:
    """What a row records: ``event`` (its document has one), ``create`` (no
    ``previous``), ``delete`` (no ``current``, or the soft-delete column turned on) or
    ``update``. Rows written by SQL have neither document: their action tells."""
    if document.get("event") is not None:
        return "event"
    previous, current = document.get("previous"), document.get("current")
    if previous is None and current is not None:
        return "create"
    if previous is not None and current is None:
        return "delete"
    if previous is None:
        if action == spec.plan.create:
            return "create"
        if action == spec.plan.delete:
            return "delete"
        return "update"
    soft = spec.soft_delete
    difference = document.get("difference") or {}
    if soft is not None and soft.name in difference:
        old, new = pair(difference[soft.name])
        if not old and new:
            return "delete"
    return "update"


def pair(value: Any) -> tuple[Any, Any]:
    """A ``difference`` entry as ``(old, new)``."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, value


def dialect_of(session: Session, spec: ClassSpec) -> str:
    """The name of the dialect of the database that stores ``spec``'s class (and its
    log, which the session writes through the same connection)."""
    return session.get_bind(mapper=spec.mapper).dialect.name


def record_key(spec: ClassSpec, value: Any, *, dialect: str) -> RecordKey:
    """The stored key of the record whose primary key is ``value`` (a tuple for a
    composite key), in a log stored by ``dialect``."""
    parts = list(value) if isinstance(value, tuple) else [value]
    number, key = identify(spec.plan, parts, dialect=dialect)
    if number is not None:
        return number
    return str(key)


def stored_key(spec: ClassSpec, value: Any) -> RecordKey | None:
    """The record key of a reference value found in a document (None stays None)."""
    if value is None:
        return None
    if spec.plan.integer_key:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return encode_key([value])  # JSON already, as the document keeps it


Request = tuple[Sequence[ClassSpec], Collection[RecordKey]]
"""Rows wanted: the records ``keys`` of any of these classes."""

Rows = dict[tuple[type, RecordKey], list[LogRow]]
"""Rows by ``(class, key)``, oldest first."""


def read_rows(
    session: Session, table: Table, specs: Iterable[ClassSpec], keys: Collection[RecordKey]
) -> Rows:
    """The rows of the records ``keys`` of any of ``specs``' classes (one query)."""
    return read_many(session, table, [(list(specs), keys)])


def read_many(session: Session, table: Table, requests: Sequence[Request]) -> Rows:
    """The rows of every request, in one query: each request is a condition on the
    ``(entity_type, number_identifier | entity_key)`` indexes."""
    result: Rows = defaultdict(list)
    by_type: dict[int, ClassSpec] = {}
    kinds: list[str] = []
    parameters: dict[str, list[Any]] = {}
    for specs, keys in requests:
        if not specs or not keys:
            continue
        types = sorted({spec.plan.entity_type for spec in specs})
        by_type.update({spec.plan.entity_type: spec for spec in specs})
        for kind, wanted in (
            ("number", sorted({k for k in keys if isinstance(k, int)})),
            ("text", sorted({k for k in keys if isinstance(k, str)})),
        ):
            if wanted:
                parameters[f"types_{len(kinds)}"] = types
                parameters[f"keys_{len(kinds)}"] = wanted
                kinds.append(kind)
    if not kinds:
        return result
    mapper = next(iter(by_type.values())).mapper
    dialect = dialect_of(session, next(iter(by_type.values())))
    statement = _rows_statement(table, dialect, tuple(kinds))
    # Core execution on the session's connection: the ORM adds nothing to a Core SELECT.
    connection = session.connection(bind_arguments={"mapper": mapper})
    raw_rows = connection.execute(statement, parameters).all()
    loads = values.loads
    for raw in raw_rows:
        spec = by_type.get(raw[2])
        if spec is None:
            continue
        document = raw[5]
        if isinstance(document, str | bytes):
            document = loads(document)
        row = LogRow(
            raw[0],
            raw[1],
            raw[2],
            raw[3],
            raw[4],
            document,
            raw[6],
            raw[7],
            raw[8],
            raw[9],
            raw[10],
            raw[11],
            classify(spec, raw[1], document),
        )
        result[(spec.cls, row.key)].append(row)
    return result


_STATEMENTS: weakref.WeakKeyDictionary[Table, dict[tuple[str, tuple[str, ...]], Any]] = (
    weakref.WeakKeyDictionary()
)


def _rows_statement(table: Table, dialect: str, kinds: tuple[str, ...]) -> Any:
    """The SELECT of ``read_many`` for conditions of these kinds, built once: only
    its parameters (expanding ``IN`` lists) change from one trail to the next."""
    cache = _STATEMENTS.setdefault(table, {})
    found = cache.get((dialect, kinds))
    if found is not None:
        return found
    conditions = [
        and_(
            table.c.entity_type.in_(bindparam(f"types_{number}", expanding=True)),
            (table.c.number_identifier if kind == "number" else table.c.entity_key).in_(
                bindparam(f"keys_{number}", expanding=True)
            ),
        )
        for number, kind in enumerate(kinds)
    ]
    statement = (
        select(*_columns(table, dialect))
        .where(conditions[0] if len(conditions) == 1 else or_(*conditions))
        .order_by(table.c.created_at, table.c.id)
    )
    cache[(dialect, kinds)] = statement
    return statement


def _columns(table: Table, dialect: str) -> list[ColumnElement[Any]]:
    """The columns a trail reads; on PostgreSQL the document as text, which orjson
    decodes several times faster than the driver's JSON decoder."""
    columns: list[ColumnElement[Any]] = [table.c[name] for name in _COLUMNS]
    if dialect == "postgresql":
        columns[5] = cast(table.c.changed_objects, Text).label("changed_objects")
    return columns


def related_keys(
    session: Session,
    table: Table,
    spec: ClassSpec,
    related_now: Sequence[ColumnElement[bool]],
    column: ColumnSpec,
    value: Any,
) -> set[RecordKey]:
    """Keys of ``spec``'s records related to an owner now (``related_now``: conditions on
    the application's table) or before: their rows held ``value`` in ``column`` before a
    change (in ``previous``, or the old side of ``difference`` for rows written by SQL).
    One query for integer keys, two otherwise; the log part is served by the indexes of
    ``create_trail_indexes`` when they exist."""
    mapper = spec.mapper
    dialect = dialect_of(session, spec)
    before = former_statement(table, dialect, spec, column, value)
    primary = spec.names.key_column()
    found: set[RecordKey] = set()
    if spec.plan.integer_key:
        now = select(primary.label("number_identifier"), null().label("entity_key"))
        statement: Any = union(now.where(*related_now), *before.selects)
    else:
        now_keys = session.scalars(
            select(primary).where(*related_now), bind_arguments={"mapper": mapper}
        )
        found.update(record_key(spec, key, dialect=dialect) for key in now_keys)
        statement = before
    connection = session.connection(bind_arguments={"mapper": mapper})
    for number, key in connection.execute(statement):
        if number is not None:
            found.add(int(number))
        elif key is not None:
            found.add(str(key))
    return found


def former_statement(
    table: Table, dialect: str, spec: ClassSpec, column: ColumnSpec, value: Any
) -> CompoundSelect[int | None, str | None]:
    """The query of ``related_keys``'s "before" part: one ``SELECT`` per place a former
    value is kept, each matching one index exactly, united."""
    compared = _json_compare(dialect, value)
    selects = _former_selects(
        table, dialect, int(spec.plan.entity_type), column.name, _bind_type(compared)
    )
    return union(*(select_.params(former=compared) for select_ in selects))


_FORMER: weakref.WeakKeyDictionary[Table, dict[tuple[str, int, str, type], Any]] = (
    weakref.WeakKeyDictionary()
)


def _bind_type(value: Any) -> type[TypeEngine[Any]]:
    if isinstance(value, bool):
        return Boolean
    if isinstance(value, int):
        return BigInteger
    if isinstance(value, float):
        return Float
    return Text


def _former_selects(
    table: Table, dialect: str, entity_type: int, column: str, bind_type: type[TypeEngine[Any]]
) -> Any:
    """The ``SELECT``s of ``former_statement``, built once per lookup."""
    cache = _FORMER.setdefault(table, {})
    key = (dialect, entity_type, column, bind_type)
    found = cache.get(key)
    if found is None:
        # A literal entity type, so that the partial indexes' WHERE clause is seen to apply.
        literal_type: ColumnElement[Any] = literal_column(str(entity_type))
        found = [
            select(table.c.number_identifier, table.c.entity_key).where(
                table.c.entity_type == literal_type,
                lookup_expression(table, dialect, section, column)
                == bindparam("former", type_=bind_type()),
            )
            for section in SECTIONS
        ]
        cache[key] = found
    return found


def _json_compare(dialect: str, value: Any) -> Any:
    """``value`` as the JSON field expression returns it on this dialect."""
    value = values.to_json_value(value)
    if dialect != "postgresql":
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
