"""What to record for one mapped class, resolved once from its mapper and declaration."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    CHAR,
    NCHAR,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.dialects.postgresql.ranges import (
    AbstractMultiRange,
    AbstractRange,
    MultiRange,
    Range,
)
from sqlalchemy.orm import Mapper
from sqlalchemy.types import TypeEngine

from ..errors import ConfigurationError
from ..model import ranges, values
from ..model.sql_values import is_float4
from .declaration import Audited, column_options, declaration_of, is_secret_name

__all__ = ["AuditedColumn", "ClassPlan", "build_plan", "coerce", "json_converter"]

_Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class AuditedColumn:
    """One column that reaches the log."""

    key: str
    """The mapped attribute."""
    name: str
    """The table column, used as the key in the stored documents (a plain str: SQLAlchemy
    hands mixed-case names out as a str subclass, which JSON encoders refuse as keys)."""
    column: Column[Any]
    redact: bool
    volatile: bool
    """Set by the flush itself (``onupdate`` / ``server_onupdate``, the mapper's
    ``version_id_col``): its old value must be read before the flush overwrites it."""
    to_json: _Convert = field(init=False, repr=False, compare=False)
    """The column's ``json_converter``: a value as the log stores it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "to_json", json_converter(self.column.type))


@dataclass(frozen=True, slots=True, eq=False)
class ClassPlan:
    """Everything the flush hook needs to turn an instance of one class into audit rows.

    Compared and hashed by identity: one plan per class and recorder, looked up in
    caches at every flush, where hashing every field cost about 2 µs a lookup."""

    class_name: str
    full_name: str
    """The entity type's name for SQL procedures and imports."""
    entity_type: int
    create: int | None
    update: int | None
    delete: int | None
    on_change: tuple[tuple[frozenset[str], int], ...]
    columns: tuple[AuditedColumn, ...]
    primary_key: tuple[AuditedColumn, ...]
    integer_key: bool
    volatile: tuple[AuditedColumn, ...]
    collections: tuple[str, ...] = ()
    """Many-to-many relationships (through a plain association table): adding or removing
    a related record changes no column of this class, but is a change of it."""
    keys: frozenset[str] = frozenset()
    """The audited attributes' keys: one subset test tells whether all are loaded."""
    postgresql_forms: tuple[tuple[str, str, int | None], ...] = ()
    """``(key, form, length)`` of the columns whose values PostgreSQL may store otherwise
    than given, by what it depends on (``document.build_row``): ``"timestamptz"``,
    ``"timestamp"`` and ``"date"`` on the session's time zone, ``"float4"`` on the
    column's four bytes, ``"varchar"`` on the column's length (spaces past it are cut)."""

    def update_action(self, changed: dict[str, Any]) -> int | None:
        """The domain action whose fields changed, else the update action."""
        for fields, action in self.on_change:
            if not fields.isdisjoint(changed):
                return action
        return self.update


def build_plan(
    mapper: Mapper[Any],
    *,
    actions: type[IntEnum],
    entity_types: type[IntEnum],
) -> ClassPlan | None:
    """The plan for ``mapper``'s class, or None when the class is not audited."""
    declaration = declaration_of(mapper.class_)
    if declaration is None:
        return None
    cls = mapper.class_.__name__
    _check_enum(cls, "entity_type", declaration.entity_type, entity_types)
    for verb in ("create", "update", "delete"):
        value = getattr(declaration, verb)
        if value is not None:
            _check_enum(cls, verb, value, actions)
    for domain in declaration.on_change:
        _check_enum(cls, "on_change", domain.action, actions)

    table_columns = _table_columns(mapper)
    known = {name for name, _ in table_columns.values()} | set(table_columns)
    for option, names in (("exclude", declaration.exclude), ("redact", declaration.redact)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigurationError(
                f"@audited {option}= on {cls} names unknown columns {unknown}; "
                f"its columns are {sorted(known)}"
            )
    columns = tuple(_audited_columns(declaration, table_columns, mapper.version_id_col))
    collections = tuple(
        rel.key
        for rel in mapper.relationships
        if rel.secondary is not None and not rel.viewonly and rel.key not in declaration.exclude
    )
    names = (
        frozenset(c.name for c in columns)
        | frozenset(c.key for c in columns)
        | frozenset(collections)
    )
    for domain in declaration.on_change:
        unknown = sorted(domain.fields - names)
        if unknown:
            raise ConfigurationError(
                f"on_change({', '.join(sorted(domain.fields))}) on {cls} names columns that are "
                f"not audited: {unknown}"
            )
    by_column = {c.column: c for c in columns}
    primary_key = []
    for pk_column in mapper.primary_key:
        if not isinstance(pk_column, Column):
            raise ConfigurationError(f"{cls} has a primary key that is not a table column")
        audited_pk = by_column.get(pk_column)
        if audited_pk is None:
            prop = mapper.get_property_by_column(pk_column)
            audited_pk = AuditedColumn(prop.key, str(pk_column.name), pk_column, False, False)
        primary_key.append(audited_pk)
    integer_key = len(primary_key) == 1 and _is_integer(primary_key[0].column.type)
    return ClassPlan(
        class_name=cls,
        full_name=declaration.full_name
        or f"{mapper.class_.__module__}.{mapper.class_.__qualname__}",
        entity_type=int(declaration.entity_type),
        create=_code(declaration.create),
        update=_code(declaration.update),
        delete=_code(declaration.delete),
        on_change=tuple(
            (frozenset(_column_name(f, columns) for f in d.fields), int(d.action))
            for d in declaration.on_change
        ),
        columns=columns,
        primary_key=tuple(primary_key),
        integer_key=integer_key,
        volatile=tuple(c for c in columns if c.volatile),
        collections=collections,
        keys=frozenset(c.key for c in columns),
        postgresql_forms=tuple(
            (c.key, *form) for c in columns if (form := _postgresql_form(c.column.type))
        ),
    )


def _postgresql_form(type_: TypeEngine[Any]) -> tuple[str, int | None] | None:
    if isinstance(type_, DateTime):
        return ("timestamptz" if type_.timezone else "timestamp"), None
    if isinstance(type_, Date):
        return "date", None
    if is_float4(type_):
        return "float4", None
    if (
        isinstance(type_, String)
        and not isinstance(type_, Text | CHAR | NCHAR | Enum)
        and type_.length is not None
    ):
        return "varchar", type_.length
    return None


def coerce(value: Any, type_: TypeEngine[Any]) -> Any:
    """``value`` as the column will store it, so that ``"10.00"`` set on a Numeric column
    compares equal to the ``Decimal("10.00")`` it replaced. Unknown cases pass through."""
    if value is None:
        return None
    coercion, _ = _coercion(type_)
    return value if coercion is None else coercion(value)


def json_converter(type_: TypeEngine[Any]) -> _Convert:
    """``lambda value: to_json_value(coerce(value, type_))``, resolved once per column.

    The capture path converts every audited column of every changed record: deciding the
    column's rules once, and dispatching on the value's exact type with one lookup, is
    several times cheaper than the two ``isinstance`` chains. Values of the types the
    column's coercion may change, and of any other type (subclasses, enum members), take
    the full path."""
    coercion, changed = _coercion(type_)
    to_json_value = values.to_json_value
    if coercion is None:
        return to_json_value
    unchanged = frozenset({str, int, bool, type(None)}) - changed
    direct = {kind: f for kind, f in values.CONVERTERS.items() if kind not in changed}

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in unchanged:
            return value
        fast = direct.get(kind)
        if fast is not None:
            return fast(value)
        return to_json_value(coercion(value))

    return convert


def _coercion(type_: TypeEngine[Any]) -> tuple[_Convert | None, frozenset[type]]:
    """How a column of ``type_`` coerces a (non-null) value, None when it keeps every
    value as it is; and the exact Python types whose values the coercion may change
    (``json_converter`` passes every other type straight to ``to_json_value``)."""
    if isinstance(type_, Boolean):
        return _to_bool, frozenset({int, float, decimal.Decimal})  # 0.0 and 1.0 too
    if isinstance(type_, Integer):
        return _to_int, frozenset({str, decimal.Decimal, float})
    if isinstance(type_, Float):
        return _to_float, frozenset({int, bool, str, decimal.Decimal})
    if isinstance(type_, Numeric):
        # The column stores its scale: 10.5 in a Numeric(30, 2) is 10.50.
        quantum = None if type_.scale is None else decimal.Decimal(1).scaleb(-type_.scale)
        return _to_decimal(quantum), frozenset({int, bool, str, float, decimal.Decimal})
    if isinstance(type_, DateTime):
        scale = _rounding_scale(type_)
        if scale is not None:
            return _to_timestamp(scale), frozenset({str, dt.datetime})
        return _to_datetime, frozenset({str})
    if isinstance(type_, Date):
        return _to_date, frozenset({str, dt.datetime})
    if isinstance(type_, Time):
        scale = _rounding_scale(type_)
        if scale is not None:
            return _to_clock_time(scale), frozenset({str, dt.time})
        return _to_time, frozenset({str})
    if isinstance(type_, Uuid):
        return _to_uuid, frozenset({str})
    if isinstance(type_, ARRAY):
        item, _ = _coercion(type_.item_type)
        return (None, frozenset()) if item is None else (_each(item), frozenset({list, tuple}))
    if isinstance(type_, AbstractMultiRange):  # given as a MultiRange or a list of ranges
        discrete = ranges.is_discrete(type_)
        return _to_stored_multirange(discrete), frozenset({MultiRange, list, tuple})
    if isinstance(type_, AbstractRange):
        return _to_stored_range(ranges.is_discrete(type_)), frozenset({Range})
    if isinstance(type_, CHAR | NCHAR):
        return _without_padding, frozenset({str, int, decimal.Decimal})
    if isinstance(type_, String) and not isinstance(type_, Enum):
        # An Enum column holds members, not text.
        return _to_text, frozenset({int, decimal.Decimal})
    return None, frozenset()


def _safe(coercion: _Convert) -> _Convert:
    """``coercion``, leaving a value it cannot convert as it is."""

    def coerce_or_keep(value: Any) -> Any:
        try:
            return coercion(value)
        except (ValueError, ArithmeticError, TypeError):
            return value

    return coerce_or_keep


@_safe
def _to_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else bool(value) if value in (0, 1) else value


@_safe
def _to_int(value: Any) -> Any:
    if isinstance(value, int):
        return value
    if isinstance(value, str | decimal.Decimal) or (
        isinstance(value, float) and value.is_integer()
    ):
        return int(value)
    return value


@_safe
def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, int | str | decimal.Decimal) else value


def _to_decimal(quantum: decimal.Decimal | None) -> _Convert:
    @_safe
    def to_decimal(value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            number = value
        elif isinstance(value, int | str | float):
            number = decimal.Decimal(str(value))
        else:
            return value
        # Rounded as PostgreSQL's numeric rounds: a tie away from zero (0.125 is 0.13).
        if quantum is not None:
            number = number.quantize(quantum, decimal.ROUND_HALF_UP)
        # A numeric has no negative zero: -0.00 (or -0.001 at two places) is stored 0.00.
        return number.copy_abs() if number.is_zero() else number

    return to_decimal


def _parse(parse: Callable[[str], Any]) -> _Convert:
    @_safe
    def parse_text(value: Any) -> Any:
        return parse(value) if isinstance(value, str) else value

    return parse_text


_to_datetime = _parse(dt.datetime.fromisoformat)
_MILLENNIUM = dt.datetime(2000, 1, 1)
"""PostgreSQL's epoch: a timestamp is its distance from it, rounded as an integer."""
_DAY_IN_MICROSECONDS = 86_400_000_000


def _rounding_scale(type_: TypeEngine[Any]) -> int | None:
    """The microseconds a PostgreSQL ``TIMESTAMP(p)`` or ``TIME(p)`` rounds to (10**(6-p)),
    None where it keeps all six digits."""
    precision = getattr(type_, "precision", None)
    return 10 ** (6 - precision) if isinstance(precision, int) and 0 <= precision < 6 else None


def _rounded(microseconds: int, scale: int) -> int:
    """``microseconds`` to a multiple of ``scale``, a tie away from zero, as PostgreSQL
    rounds its integer timestamps and times."""
    rounded = (abs(microseconds) + scale // 2) // scale * scale
    return rounded if microseconds >= 0 else -rounded


def _to_timestamp(scale: int) -> _Convert:
    """A datetime as a ``TIMESTAMP(p)`` stores it: rounded to ``scale`` microseconds
    from PostgreSQL's epoch (a tie away from 2000-01-01)."""

    @_safe
    def to_timestamp(value: Any) -> Any:
        value = _to_datetime(value)
        if not isinstance(value, dt.datetime):
            return value
        epoch = _MILLENNIUM if value.tzinfo is None else _MILLENNIUM.replace(tzinfo=dt.UTC)
        since = (value - epoch) // dt.timedelta(microseconds=1)
        return value + dt.timedelta(microseconds=_rounded(since, scale) - since)

    return to_timestamp


@_safe
def _to_date(value: Any) -> Any:
    """A date, as a ``Date`` column stores what it is given: a datetime's date (its own
    wall date; PostgreSQL's session zone decides an aware one's, ``document.build_row``)."""
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


_to_time = _parse(dt.time.fromisoformat)


def _to_clock_time(scale: int) -> _Convert:
    """A time as a ``TIME(p)`` stores it: rounded to ``scale`` microseconds from
    midnight (a time it would round to 24:00:00, which Python has no time for, stays as
    given)."""

    @_safe
    def to_clock_time(value: Any) -> Any:
        value = _to_time(value)
        if not isinstance(value, dt.time):
            return value
        since = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6
        rounded = _rounded(since + value.microsecond, scale)
        if rounded >= _DAY_IN_MICROSECONDS:
            return value
        moment = dt.datetime.min + dt.timedelta(microseconds=rounded)
        return moment.time().replace(tzinfo=value.tzinfo, fold=value.fold)

    return to_clock_time


_to_uuid = _parse(uuid.UUID)


def _each(coercion: _Convert) -> _Convert:
    """An array's coercion: its items', at every depth (``[["1.5"]]`` in a
    ``Numeric(10, 2)`` array is ``[[Decimal("1.50")]]``)."""

    def each_item(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [
            each_item(item) if isinstance(item, list | tuple) else coerce_item(item)
            for item in value
        ]

    def coerce_item(item: Any) -> Any:
        return None if item is None else coercion(item)

    return each_item


def _to_stored_range(discrete: bool) -> _Convert:
    @_safe
    def to_stored_range(value: Any) -> Any:
        return ranges.stored_range(value, discrete=discrete) if isinstance(value, Range) else value

    return to_stored_range


def _to_stored_multirange(discrete: bool) -> _Convert:
    @_safe
    def to_stored_multirange(value: Any) -> Any:
        if isinstance(value, list | tuple) and all(isinstance(item, Range) for item in value):
            return ranges.stored_multirange(value, discrete=discrete)
        return value

    return to_stored_multirange


@_safe
def _to_text(value: Any) -> Any:
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool | enum.Enum):
        return str(value)
    return value


def _without_padding(value: Any) -> Any:
    """Fixed-length text without the spaces that pad it: PostgreSQL stores ``"ab"`` in a
    ``CHAR(5)`` as ``"ab   "`` and holds both equal, so the log writes neither's padding
    (SQLite, which pads nothing, alike)."""
    text = _to_text(value)
    return text.rstrip(" ") if isinstance(text, str) else text


def _code(member: IntEnum | None) -> int | None:
    return None if member is None else int(member)


def _check_enum(cls: str, option: str, member: IntEnum, enum: type[IntEnum]) -> None:
    if not isinstance(member, enum):
        raise ConfigurationError(
            f"@audited {option}= on {cls} is {member!r}, which is not a member of "
            f"{enum.__name__}, the enum this audit log was configured with"
        )


def _table_columns(mapper: Mapper[Any]) -> dict[str, tuple[str, Column[Any]]]:
    """``{attribute key: (column name, column)}`` of the mapper's table-backed columns."""
    found: dict[str, tuple[str, Column[Any]]] = {}
    tables = set(mapper.tables)
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column) and column.table in tables:
            found[prop.key] = (column.name, column)
    return found


def _audited_columns(
    declaration: Audited,
    table_columns: dict[str, tuple[str, Column[Any]]],
    version_counter: Any,
) -> list[AuditedColumn]:
    seen: set[str] = set()
    result = []
    for key, (name, column) in table_columns.items():
        if name in seen:
            continue
        seen.add(name)
        options = column_options(column.info)
        if options.exclude or key in declaration.exclude or name in declaration.exclude:
            continue
        if options.redact is not None:
            redact = options.redact
        elif key in declaration.redact or name in declaration.redact:
            redact = True
        else:
            redact = not isinstance(column.type, Boolean) and (
                is_secret_name(name) or is_secret_name(key)
            )
        volatile = (
            column.onupdate is not None
            or column.server_onupdate is not None
            or column is version_counter
        )
        result.append(AuditedColumn(key, str(name), column, redact, volatile))
    return result


def _column_name(field: str, columns: tuple[AuditedColumn, ...]) -> str:
    for column in columns:
        if field in (column.key, column.name):
            return column.name
    return field


def _is_integer(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_, Integer)
