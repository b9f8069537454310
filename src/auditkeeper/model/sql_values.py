"""Column values as JSON, computed by the database: the SQL twin of ``model.values``.

The capture triggers build documents inside the database, from stored values. Each
expression here follows the Python rule of the same type (docs/values.md), so that a
change logged by a trigger reads like the same change logged by the ORM: Decimal as its
exact text, datetimes ISO-8601 with their offset (microseconds only when not zero),
bytes as base64, enums by their member's value, JSON as it is. A column of a type the
database cannot know the Python meaning of (a ``TypeDecorator`` that transforms values)
is logged as stored.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ARRAY,
    CHAR,
    JSON,
    NCHAR,
    REAL,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Time,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import (
    BIT,
    CIDR,
    HSTORE,
    INET,
    INTERVAL,
    MACADDR,
    MONEY,
    OID,
    TSVECTOR,
)
from sqlalchemy.dialects.postgresql.ranges import (
    TSMULTIRANGE,
    TSRANGE,
    TSTZMULTIRANGE,
    TSTZRANGE,
    AbstractMultiRange,
    AbstractRange,
)
from sqlalchemy.types import TypeEngine

from . import values

__all__ = [
    "differs_expression",
    "exact_twin",
    "is_float4",
    "json_expression",
    "json_null_condition",
    "key_json_expression",
    "reads_alike",
    "same_value_expression",
    "sql_literal",
    "sqlite_json_text",
    "sqlite_same_value",
]

_SECONDS = "'YYYY-MM-DD\"T\"HH24:MI:SS'"
_INTERVALS = (Interval, INTERVAL)
"""The generic type and PostgreSQL's own, which is not a subclass of it."""
_COMPARED_AS_CAST = (INET, CIDR, MACADDR, AbstractRange, TSVECTOR, MONEY, BIT)
"""PostgreSQL's types whose text the application may write otherwise than the database
does (``10.0.0.1/32``, ``b a`` for ``'a' 'b'``, ``12.5`` for ``$12.50``): a stored value
is compared with the document's as a value of the column's type."""
_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
_FAR_OFFSET = "'[+-](1[6-9]|2[0-3]):[0-5][0-9]'"
"""A UTC offset Python writes (up to 23:59) that PostgreSQL cannot read (past 15:59): a
value holding one is not compared with what is stored, rather than failing the commit.
(A lone timestamp's is found by position instead, cheaper on the flush's many.)"""


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_expression(ref: str, column: Column[Any]) -> str:
    """A PostgreSQL expression giving ``ref`` (a value of ``column``) as JSONB."""
    return _json_of_type(ref, column.type)


def key_json_expression(ref: str, column: Column[Any]) -> str:
    """``json_expression`` of a key part, as ``capture.document.identify`` encodes one:
    an instant in UTC, not in the session's time zone, so that the record keeps one key
    whoever changes it."""
    type_ = _stored_type(column.type)
    if isinstance(type_, DateTime) and type_.timezone:
        utc = f"({ref} AT TIME ZONE 'UTC')"
        return f"to_jsonb(to_char({utc}, {_SECONDS}){_fraction(utc)} || '+00:00')"
    return json_expression(ref, column)


def _json_of_type(ref: str, declared: TypeEngine[Any]) -> str:
    type_ = _stored_type(declared)
    if isinstance(type_, Enum) and type_.enum_class is not None:
        return _enum_expression(ref, type_)
    if isinstance(type_, Float):  # JSON has no NaN or infinities: Python's repr of them
        # A whole float gets its ".0", as the Python rules write it: to_jsonb would
        # write 2 for 2.0, which reads back as an integer.
        return (
            f"CASE WHEN {ref} = 'NaN' THEN '\"nan\"'::jsonb "
            f"WHEN {ref} = 'Infinity' THEN '\"inf\"'::jsonb "
            f"WHEN {ref} = '-Infinity' THEN '\"-inf\"'::jsonb "
            f"WHEN {ref} = trunc({ref}) THEN to_jsonb({ref}::numeric(1000, 1)) "
            f"ELSE to_jsonb({ref}) END"
        )
    if isinstance(type_, Boolean | Integer):
        return f"to_jsonb({ref})"
    if isinstance(type_, OID):  # a number to Python, text to to_jsonb
        return f"to_jsonb({ref}::bigint)"
    if isinstance(type_, Numeric):
        return f"to_jsonb({ref}::text)"
    if isinstance(type_, CHAR | NCHAR):  # as text, without the spaces that pad it
        return f"to_jsonb({ref}::text)"
    if isinstance(type_, DateTime):
        offset = f" || to_char({ref}, 'TZH:TZM')" if type_.timezone else ""
        return f"to_jsonb(to_char({ref}, {_SECONDS}){_fraction(ref)}{offset})"
    if isinstance(type_, Date):
        return f"to_jsonb(to_char({ref}, 'YYYY-MM-DD'))"
    if isinstance(type_, Time) and type_.timezone:
        return _time_with_zone_expression(ref)
    if isinstance(type_, Time):
        return f"to_jsonb(to_char({ref}, 'HH24:MI:SS'){_fraction(ref)})"
    if isinstance(type_, _INTERVALS):
        return f"to_jsonb(extract(epoch FROM {ref}))"
    if isinstance(type_, LargeBinary):
        return f"to_jsonb(translate(encode({ref}, 'base64'), E'\\n', ''))"
    if isinstance(type_, JSON):
        return f"{ref}::jsonb"
    if isinstance(type_, TSRANGE | TSTZRANGE | TSMULTIRANGE | TSTZMULTIRANGE):
        return _timestamp_range_expression(ref, type_)
    if isinstance(type_, ARRAY):
        return _array_expression(ref, type_)
    return f"to_jsonb({ref})"


def _array_expression(ref: str, type_: ARRAY[Any]) -> str:
    """An array as a JSON array of its items, each by its own type's rule (decimals as
    text, enums by value, timestamps ISO-8601) where ``to_jsonb`` would write them
    otherwise. An array of more than one dimension is left to ``to_jsonb``."""
    item = _json_of_type("audit_item.value", type_.item_type)
    if item == "to_jsonb(audit_item.value)":
        return f"to_jsonb({ref})"
    items = (
        f"(SELECT jsonb_agg({item} ORDER BY audit_item.position) "
        f"FROM unnest({ref}) WITH ORDINALITY AS audit_item(value, position))"
    )
    # array_ndims is NULL for an empty array (and NULL): to_jsonb writes [] (and NULL).
    return f"CASE WHEN array_ndims({ref}) = 1 THEN {items} ELSE to_jsonb({ref}) END"


def _time_with_zone_expression(ref: str) -> str:
    """A ``time with time zone`` as Python's isoformat writes it (``09:30:00+01:30``):
    ``to_char`` takes no such value, so its time is formatted, and its offset (seconds
    east of UTC, kept as it was given) written as ``+HH:MM``, with ``:SS`` where it
    has seconds."""
    time = f"{ref}::time"
    zone = f"extract(timezone FROM {ref})::int"
    offset = (
        f"CASE WHEN {zone} < 0 THEN '-' ELSE '+' END "
        f"|| lpad((abs({zone}) / 3600)::text, 2, '0') "
        f"|| ':' || lpad((abs({zone}) % 3600 / 60)::text, 2, '0') "
        f"|| CASE WHEN abs({zone}) % 60 = 0 THEN '' "
        f"ELSE ':' || lpad((abs({zone}) % 60)::text, 2, '0') END"
    )
    return f"to_jsonb(to_char({time}, 'HH24:MI:SS'){_fraction(time)} || {offset})"


def _timestamp_range_expression(ref: str, type_: AbstractRange[Any]) -> str:
    """A range of timestamps as PostgreSQL writes it, but with its bounds ISO-8601 as
    the Python rules write a datetime (``[2024-01-01T09:00:00+00:00,)``), where the
    database would write ``["2024-01-01 09:00:00+00",)``. Other ranges' bounds (numbers,
    dates) the database already writes alike."""
    offset = isinstance(type_, TSTZRANGE | TSTZMULTIRANGE)

    def bound(value: str) -> str:
        zone = f" || to_char({value}, 'TZH:TZM')" if offset else ""
        return f"coalesce(to_char({value}, {_SECONDS}){_fraction(value)}{zone}, '')"

    def one(range_: str) -> str:
        return (
            f"CASE WHEN isempty({range_}) THEN 'empty' "
            f"ELSE CASE WHEN lower_inc({range_}) THEN '[' ELSE '(' END "
            f"|| {bound(f'lower({range_})')} || ',' || {bound(f'upper({range_})')} "
            f"|| CASE WHEN upper_inc({range_}) THEN ']' ELSE ')' END END"
        )

    if isinstance(type_, AbstractMultiRange):
        ranges = (
            f"(SELECT string_agg({one('r')}, ',' ORDER BY n) "
            f"FROM unnest({ref}) WITH ORDINALITY AS u(r, n))"
        )
        text = f"'{{' || coalesce({ranges}, '') || '}}'"
    else:
        text = one(ref)
    return f"to_jsonb(CASE WHEN {ref} IS NULL THEN NULL ELSE {text} END)"


def json_null_condition(ref: str, column: Column[Any], json_value: str) -> str:
    """The PostgreSQL condition that ``json_expression(ref, column)`` is JSON null, given
    ``json_value``, that expression's value: ``ref IS NULL`` where only NULL reads as
    null (the cheaper test); asked of the JSON for a JSON column (which may hold a JSON
    null) and an enum (whose member's value may be None)."""
    if isinstance(_stored_type(column.type), JSON | Enum):
        return f"coalesce({json_value}, 'null'::jsonb) = 'null'::jsonb"
    return f"{ref} IS NULL"


def exact_twin(column: Column[Any]) -> bool:
    """Whether ``json_expression`` of a stored value always equals the JSON the Python
    rules give the value the application assigned: integers, booleans, UUIDs, dates and
    variable-length text. Not a ``TypeDecorator`` (its Python value is not the stored
    one), fixed-length CHAR (stored padded), and not types the Python side coerces or
    formats differently (a naive datetime in an aware column, a float in a Numeric)."""
    return _is_exact_twin(column.type)


def _is_exact_twin(type_: TypeEngine[Any]) -> bool:
    if isinstance(type_, TypeDecorator | Enum | CHAR | NCHAR):
        return False
    return isinstance(type_, Integer | Boolean | Uuid | Date | String)


def reads_alike(column: Column[Any]) -> Callable[[Any, dt.tzinfo | None], bool] | None:
    """A test that a value the application gives ``column`` reads in JSON, by the Python
    rules, as ``json_expression`` reads it once stored, in a session of the given time
    zone: for text, integers, booleans, UUIDs, dates, datetimes (an aware one in the
    session's offset), decimals at the column's scale and plain JSON. None for a type
    where the value alone cannot tell (a ``TypeDecorator``, an enum, fixed-length text,
    floats, times, intervals, bytes). None (SQL NULL) always reads alike."""
    type_ = column.type
    if isinstance(type_, TypeDecorator | Enum | CHAR | NCHAR):
        return None
    test: Callable[[Any, dt.tzinfo | None], bool] | None = None
    if isinstance(type_, Boolean):
        test = _is_bool
    elif isinstance(type_, Integer):
        test = _is_int64
    elif isinstance(type_, Uuid):
        test = _is_uuid if type_.as_uuid else _is_uuid_text
    elif isinstance(type_, String):
        test = _is_text
    elif isinstance(type_, DateTime):
        test = _is_in_session_zone if type_.timezone else _is_naive
    elif isinstance(type_, Date):
        test = _is_date
    elif isinstance(type_, Numeric) and not isinstance(type_, Float) and type_.asdecimal:
        test = _decimal_test(type_.scale)
    elif isinstance(type_, JSON):
        test = _is_plain_json
    return test


def _is_bool(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or type(value) is bool


def _is_int64(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or (type(value) is int and -(2**63) <= value < 2**63)


def _is_uuid(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or type(value) is uuid.UUID


def _is_uuid_text(value: Any, zone: dt.tzinfo | None) -> bool:
    """The database writes a UUID lower-case and dashed."""
    if value is None:
        return True
    try:
        return type(value) is str and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _is_text(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or type(value) is str


def _is_date(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or type(value) is dt.date


def _is_naive(value: Any, zone: dt.tzinfo | None) -> bool:
    return value is None or (type(value) is dt.datetime and value.tzinfo is None)


def _is_in_session_zone(value: Any, zone: dt.tzinfo | None) -> bool:
    """The database writes a timestamp in its session's zone, with a whole-minute
    offset; Python writes the value's own."""
    if value is None:
        return True
    if type(value) is not dt.datetime or zone is None:
        return False
    offset = value.utcoffset()
    # Whole minutes, asked of the fields: ``offset % timedelta(minutes=1)`` cost twice
    # the conversion below, for every timestamp of a flush (bench/README.md, eighth round).
    if offset is None or offset.seconds % 60 or offset.microseconds:
        return False
    try:
        return value.astimezone(zone).utcoffset() == offset
    except (OverflowError, ValueError):
        return False


def _decimal_test(scale: int | None) -> Callable[[Any, dt.tzinfo | None], bool]:
    """A decimal reads as its every place (``format(value, "f")``); the database's
    numeric text has the column's scale, or the value's own when the column has none,
    and no negative zero."""

    def test(value: Any, zone: dt.tzinfo | None) -> bool:
        if value is None:
            return True
        if type(value) is not decimal.Decimal or not value.is_finite():
            return False
        if value.is_zero() and value.is_signed():
            return False
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        return exponent <= 0 if scale is None else exponent == -scale

    return test


def _is_plain_json(value: Any, zone: dt.tzinfo | None) -> bool:
    """JSON that both sides write alike: no float Python writes in positional form, no
    integer a float could not hold, no key that is not text, no U+0000 (which jsonb
    cannot hold), at most 64 levels deep.
    Level by level, without a call per value: it runs for every JSON value a flush
    assigns (bench/README.md, eighth round)."""
    level = [value]
    depth = 0
    while level:
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if item is None or kind is bool:
                continue
            if kind is str:
                if "\x00" in item:
                    return False  # jsonb cannot hold it: the flush names it
                continue
            if kind is int:
                if abs(item) >= 2**53:
                    return False
            elif kind is float:
                if not (math.isfinite(item) and abs(item) < 1e15):
                    return False
            elif depth > 64:
                return False
            elif kind is list:
                below.extend(item)
            elif kind is dict:
                if any(type(key) is not str or "\x00" in key for key in item):
                    return False
                below.extend(item.values())
            else:
                return False
        level = below
        depth += 1
    return True


def same_value_expression(document_value: str, ref: str, column: Column[Any]) -> str | None:
    """A PostgreSQL condition: ``document_value`` (a JSONB value of a document the
    Python rules wrote) is the value ``ref`` of ``column``, compared as the column's type
    (a timestamp as an instant, a number as a number), since the two texts may differ
    in form (an offset, trailing zeros). None for a type whose Python value the database
    cannot know (a ``TypeDecorator``), and for the exact twins (compare their JSON)."""
    return _same_value(document_value, ref, column.type)


def _same_value(document_value: str, ref: str, type_: TypeEngine[Any]) -> str | None:
    opaque = _stored_type(type_) is not type_  # a TypeDecorator's Python value is its own
    if opaque or _is_exact_twin(type_):
        return None
    text = f"({document_value} #>> '{{}}')"
    if isinstance(type_, Enum | LargeBinary | CHAR | NCHAR):  # SQL NULL is JSON null
        return f"{document_value} = coalesce({_json_of_type(ref, type_)}, 'null'::jsonb)"
    if isinstance(type_, Float):  # a REAL's value as its four bytes hold it
        width = "float4" if is_float4(type_) else "float8"
        return f"{text}::{width} IS NOT DISTINCT FROM {ref}::{width}"
    if isinstance(type_, Numeric):
        return f"{text}::numeric IS NOT DISTINCT FROM {ref}::numeric"
    if isinstance(type_, DateTime) and type_.timezone:
        # Python's offsets reach 23:59, PostgreSQL reads up to 15:59 and raises beyond:
        # such a value is not compared rather than failing the commit. Its hours are
        # read by position (Python's text ends "+HH:MM"), cheaper than a pattern.
        hours = f'substr({text}, length({text}) - 4, 2) COLLATE "C"'
        sign = f"substr({text}, length({text}) - 5, 1)"
        return (
            f"CASE WHEN {hours} >= '16' AND {sign} IN ('+', '-') THEN true "
            f"ELSE {text}::timestamptz IS NOT DISTINCT FROM {ref} END"
        )
    if isinstance(type_, DateTime):
        return f"{text}::timestamp IS NOT DISTINCT FROM {ref}"
    if isinstance(type_, Time) and type_.timezone:  # offsets as for a timestamptz
        return (
            f"CASE WHEN {text} IS NULL OR {ref} IS NULL THEN ({text} IS NULL) = ({ref} IS NULL) "
            f"WHEN {text} ~ {_FAR_OFFSET} THEN true ELSE {text}::timetz = {ref} END"
        )
    if isinstance(type_, Time):
        return f"{text}::time IS NOT DISTINCT FROM {ref}::time"
    if isinstance(type_, _INTERVALS):
        return f"{text}::numeric IS NOT DISTINCT FROM extract(epoch FROM {ref})"
    if isinstance(type_, JSON):
        return f"{document_value} = coalesce({ref}::jsonb, 'null'::jsonb)"
    if isinstance(type_, HSTORE) or (isinstance(type_, ARRAY) and _is_exact_twin(type_.item_type)):
        # Text keys and values (the driver takes no other), or a list of exact twins
        # (text, integers, UUIDs, dates, booleans): their JSON.
        return f"{document_value} = coalesce(to_jsonb({ref}), 'null'::jsonb)"
    if isinstance(type_, ARRAY):
        return _same_items(document_value, ref, type_)
    if isinstance(type_, _COMPARED_AS_CAST):  # one value, written in many ways
        cast = type_.compile(dialect=_POSTGRESQL)
        compared = f"{text}::{cast} IS NOT DISTINCT FROM {ref}::{cast}"
        if isinstance(type_, TSTZRANGE | TSTZMULTIRANGE):  # offsets as for a timestamptz
            return f"CASE WHEN {text} ~ {_FAR_OFFSET} THEN true ELSE {compared} END"
        return compared
    return None


def is_float4(type_: TypeEngine[Any]) -> bool:
    """Whether a column of ``type_`` is PostgreSQL's ``real``: four bytes, which keep
    about seven significant digits of a float."""
    return isinstance(type_, REAL) or (
        isinstance(type_, Float) and type_.precision is not None and type_.precision <= 24
    )


def _same_items(document_value: str, ref: str, type_: ARRAY[Any]) -> str | None:
    """An array of items that are no exact twins (decimals, timestamps, enums), item by
    item as their type; one of more than one dimension is not compared."""
    item = _same_value(
        f"({document_value} -> (audit_item.position - 1)::int)", "audit_item.value", type_.item_type
    )
    if item is None:
        return None
    document_null = f"coalesce({document_value}, 'null'::jsonb) = 'null'::jsonb"
    return (
        f"CASE WHEN {ref} IS NULL OR {document_null} THEN ({ref} IS NULL) = ({document_null}) "
        f"WHEN coalesce(array_ndims({ref}), 1) <> 1 THEN true "
        f"WHEN jsonb_typeof({document_value}) <> 'array' "
        f"OR jsonb_array_length({document_value}) <> cardinality({ref}) THEN false "
        f"ELSE NOT EXISTS (SELECT 1 FROM unnest({ref}) WITH ORDINALITY "
        f"AS audit_item(value, position) WHERE NOT coalesce({item}, false)) END"
    )


def sqlite_same_value(column: Column[Any]) -> Callable[[Any, Any], bool] | None:
    """``same_value_expression`` for SQLite, on the Python side: whether two JSON values of
    ``column``, one by the Python rules and one that SQLite's triggers built from the
    stored value (``sqlite_json_text``), are the same stored value. None where SQLite's
    storage cannot tell: a ``TypeDecorator``, a ``Numeric`` (a REAL, about 15 significant
    digits), floats, enums, times, intervals and bytes."""
    type_ = column.type
    if isinstance(type_, TypeDecorator):
        return None
    if exact_twin(column):
        return _equal
    if isinstance(type_, JSON):
        return _same_json
    if isinstance(type_, DateTime):
        return _same_wall_time
    if isinstance(type_, CHAR | NCHAR):  # both unpadded
        return _equal
    return None


def _equal(first: Any, second: Any) -> bool:
    return bool(first == second)


def _same_json(first: Any, second: Any) -> bool:
    """JSON values as SQLite's ``json()`` writes them back: a number that is not a 64-bit
    integer as a REAL, with 15 significant digits."""
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(
            _same_json(value, second[key]) for key, value in first.items()
        )
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(map(_same_json, first, second))
    if isinstance(first, bool) or isinstance(second, bool):  # not the numbers 1 and 0
        return first is second
    if isinstance(first, float) or isinstance(second, float):
        numbers = isinstance(first, float | int) and isinstance(second, float | int)
        return numbers and math.isclose(first, second, rel_tol=1e-14)
    return bool(first == second)


def _same_wall_time(first: Any, second: Any) -> bool:
    """Datetimes as SQLite keeps them: an aware value is stored without its offset."""
    try:
        one, other = dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(second)
    except (TypeError, ValueError):  # not a datetime: a text either wrote as it is
        return bool(first == second)
    if (one.tzinfo is None) != (other.tzinfo is None):
        return one.replace(tzinfo=None) == other.replace(tzinfo=None)
    return one == other


def differs_expression(old: str, new: str, column: Column[Any]) -> str:
    """A PostgreSQL condition that holds whenever ``json_expression`` of the two values
    differ, cheaper than building both: the type's own equality where it is the JSON's,
    otherwise the byte-wise comparison of their text (which may also hold for values
    whose JSON is equal, such as 1.0 and 1.00: the documents then decide)."""
    type_ = _stored_type(column.type)
    if isinstance(type_, Boolean | Integer | Uuid | Date | DateTime | LargeBinary):
        return f"{old} IS DISTINCT FROM {new}"
    if isinstance(type_, JSON):
        return f"{old}::jsonb IS DISTINCT FROM {new}::jsonb"
    return f'{old}::text COLLATE "C" IS DISTINCT FROM {new}::text COLLATE "C"'


def sqlite_json_text(ref: str, column: Column[Any]) -> str:
    """A SQLite expression giving ``ref`` (a value of ``column``, as SQLAlchemy stores it
    in SQLite) as JSON *text*, 'null' for NULL. Text rather than JSON values, because
    SQLite's JSON subtype does not survive a subquery; ``json(...)`` re-reads it."""
    type_ = _stored_type(column.type)
    if isinstance(type_, Enum) and type_.enum_class is not None:
        return _enum_expression(ref, type_, sqlite=True)
    if isinstance(type_, Boolean):
        return f"CASE WHEN {ref} IS NULL THEN 'null' WHEN {ref} THEN 'true' ELSE 'false' END"
    if isinstance(type_, Float):  # SQLite stores NaN as NULL, infinities as 9e999
        return (
            f"CASE WHEN {ref} = 9e999 THEN '\"inf\"' WHEN {ref} = -9e999 THEN '\"-inf\"' "
            f"ELSE json_quote({ref}) END"
        )
    if isinstance(type_, Numeric) and not isinstance(type_, Float):
        scale = type_.scale
        text = f"CAST({ref} AS TEXT)" if scale is None else f"printf('%.{scale}f', {ref})"
        return f"CASE WHEN {ref} IS NULL THEN 'null' ELSE json_quote({text}) END"
    if isinstance(type_, DateTime | Time):
        # Stored as text with six fractional digits; isoformat drops them when zero.
        trimmed = (
            f"CASE WHEN {ref} LIKE '%.000000' THEN substr({ref}, 1, length({ref}) - 7) "
            f"ELSE {ref} END"
        )
        return f"json_quote(replace({trimmed}, ' ', 'T'))"
    if isinstance(type_, Interval):  # stored as a datetime after the epoch
        # Whole seconds and the fraction's digits apart: julianday's float is off in
        # the last places. A REAL, as Python's total_seconds() is a float.
        fraction = (
            f"CASE WHEN instr({ref}, '.') > 0 "
            f"THEN CAST('0' || substr({ref}, instr({ref}, '.')) AS REAL) ELSE 0.0 END"
        )
        return (
            f"CASE WHEN {ref} IS NULL THEN 'null' "
            f"ELSE json_quote(CAST(strftime('%s', {ref}) AS INTEGER) + {fraction}) END"
        )
    if isinstance(type_, Uuid):  # stored as 32 hex digits
        dashed = (
            f"lower(substr({ref}, 1, 8) || '-' || substr({ref}, 9, 4) || '-' || "
            f"substr({ref}, 13, 4) || '-' || substr({ref}, 17, 4) || '-' || substr({ref}, 21))"
        )
        return f"json_quote(CASE WHEN length({ref}) = 32 THEN {dashed} ELSE {ref} END)"
    if isinstance(type_, LargeBinary):  # SQLite has no base64: hexadecimal, marked
        return f"json_quote(CASE WHEN {ref} IS NULL THEN NULL ELSE 'hex:' || lower(hex({ref})) END)"
    if isinstance(type_, JSON):  # text that is not JSON (written by hand) stays text
        return (
            f"CASE WHEN {ref} IS NULL THEN 'null' WHEN json_valid({ref}) THEN json({ref}) "
            f"ELSE json_quote({ref}) END"
        )
    if isinstance(type_, CHAR | NCHAR):  # as the Python rules write it: unpadded
        return f"json_quote(rtrim({ref}, ' '))"
    return f"json_quote({ref})"


def _stored_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type a value of ``type_`` is stored as, below any ``TypeDecorator``; but
    ``Interval``, which is one (a datetime after the epoch where the database has no
    interval type), as itself: its branches know how each database stores it."""
    while isinstance(type_, TypeDecorator) and not isinstance(type_, Interval):
        type_ = type_.impl_instance
    return type_


def _fraction(ref: str) -> str:
    """Python's isoformat writes microseconds only when they are not zero."""
    return (
        f" || CASE WHEN date_part('microseconds', {ref})::bigint % 1000000 = 0 "
        f"THEN '' ELSE to_char({ref}, '.US') END"
    )


def _enum_expression(ref: str, type_: Enum, *, sqlite: bool = False) -> str:
    """Stored names mapped to their members' values (the log keeps enums by value)."""
    lookup: dict[Any, Any] = getattr(type_, "_object_lookup", {})
    cases = []
    for stored, member in lookup.items():
        if stored is None or not isinstance(member, enum.Enum):
            continue
        value = values.dumps(values.to_json_value(member))
        json_value = sql_literal(value) if sqlite else f"{sql_literal(value)}::jsonb"
        cases.append(f"WHEN {sql_literal(str(stored))} THEN {json_value}")
    fallback = f"json_quote({ref})" if sqlite else f"to_jsonb({ref}::text)"
    if not cases:
        return fallback
    subject = ref if sqlite else f"{ref}::text"
    return f"CASE {subject} {' '.join(cases)} ELSE {fallback} END"
