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

import enum
from typing import Any

from sqlalchemy import (
    JSON,
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
    Time,
    TypeDecorator,
)
from sqlalchemy.types import TypeEngine

from . import values

__all__ = ["json_expression", "sql_literal"]

_SECONDS = "'YYYY-MM-DD\"T\"HH24:MI:SS'"


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_expression(ref: str, column: Column[Any]) -> str:
    """A PostgreSQL expression giving ``ref`` (a value of ``column``) as JSONB."""
    type_ = _stored_type(column.type)
    if isinstance(type_, Enum) and type_.enum_class is not None:
        return _enum_expression(ref, type_)
    if isinstance(type_, Boolean | Integer | Float):
        return f"to_jsonb({ref})"
    if isinstance(type_, Numeric):
        return f"to_jsonb({ref}::text)"
    if isinstance(type_, DateTime):
        offset = f" || to_char({ref}, 'TZH:TZM')" if type_.timezone else ""
        return f"to_jsonb(to_char({ref}, {_SECONDS}){_fraction(ref)}{offset})"
    if isinstance(type_, Date):
        return f"to_jsonb(to_char({ref}, 'YYYY-MM-DD'))"
    if isinstance(type_, Time):
        return f"to_jsonb(to_char({ref}, 'HH24:MI:SS'){_fraction(ref)})"
    if isinstance(type_, Interval):
        return f"to_jsonb(extract(epoch FROM {ref}))"
    if isinstance(type_, LargeBinary):
        return f"to_jsonb(translate(encode({ref}, 'base64'), E'\\n', ''))"
    if isinstance(type_, JSON):
        return f"{ref}::jsonb"
    return f"to_jsonb({ref})"


def _stored_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def _fraction(ref: str) -> str:
    """Python's isoformat writes microseconds only when they are not zero."""
    return (
        f" || CASE WHEN date_part('microseconds', {ref})::bigint % 1000000 = 0 "
        f"THEN '' ELSE to_char({ref}, '.US') END"
    )


def _enum_expression(ref: str, type_: Enum) -> str:
    """Stored names mapped to their members' values (the log keeps enums by value)."""
    lookup: dict[Any, Any] = getattr(type_, "_object_lookup", {})
    cases = []
    for stored, member in lookup.items():
        if stored is None or not isinstance(member, enum.Enum):
            continue
        value = values.dumps(values.to_json_value(member))
        cases.append(f"WHEN {sql_literal(str(stored))} THEN {sql_literal(value)}::jsonb")
    if not cases:
        return f"to_jsonb({ref}::text)"
    return f"CASE {ref}::text {' '.join(cases)} ELSE to_jsonb({ref}::text) END"
