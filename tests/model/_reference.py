"""The value rules as they were written before the capture path was optimised (a74092f):
``coerce`` from capture/plan.py and ``to_json_value`` from model/values.py, verbatim, but
for rules changed on purpose since, each marked "changed": a value is rounded to a
Numeric's scale, 0 included, a tie away from zero, as PostgreSQL rounds it, and has no
negative zero; a datetime given to a Date column is its date, as the column stores it.

They are the oracle of tests/model/test_converters.py: the optimised functions (exact-type
dispatch, per-column converters resolved once) must give the same value, of the same
type, or the same error, for every value and column type. Do not "fix" this copy to
match the optimised code; change a rule here only where the rule itself changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Numeric,
    String,
    Time,
    Uuid,
)
from sqlalchemy.types import TypeEngine

from auditkeeper.errors import CaptureError
from auditkeeper.model.values import _PositionalFloat

_NATIVE = frozenset({str, int, bool, type(None)})
_MICROSECOND = dt.timedelta(microseconds=1)
_EXACT_FLOAT_INTEGER = 2**53


def coerce(value: Any, type_: TypeEngine[Any]) -> Any:
    """``value`` as the column will store it, so that ``"10.00"`` set on a Numeric column
    compares equal to the ``Decimal("10.00")`` it replaced. Unknown cases pass through."""
    if value is None:
        return None
    try:
        if isinstance(type_, Boolean):
            return value if isinstance(value, bool) else bool(value) if value in (0, 1) else value
        if isinstance(type_, Integer):
            if isinstance(value, int):
                return value
            if isinstance(value, str | decimal.Decimal) or (
                isinstance(value, float) and value.is_integer()
            ):
                return int(value)
            return value
        if isinstance(type_, Float):
            return float(value) if isinstance(value, int | str | decimal.Decimal) else value
        if isinstance(type_, Numeric):
            if isinstance(value, decimal.Decimal):
                number = value
            elif isinstance(value, int | str | float):
                number = decimal.Decimal(str(value))
            else:
                return value
            # The column stores its scale: 10.5 in a Numeric(30, 2) is 10.50.
            scale = type_.scale
            if scale is not None:  # changed: a scale of 0 rounds too
                quantum = decimal.Decimal(1).scaleb(-scale)  # changed: ties away from zero
                number = number.quantize(quantum, decimal.ROUND_HALF_UP)
            return number.copy_abs() if number.is_zero() else number  # changed: no -0
        if isinstance(type_, DateTime) and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if isinstance(type_, Date) and isinstance(value, dt.datetime):  # changed
            return value.date()
        if isinstance(type_, Date) and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if isinstance(type_, Time) and isinstance(value, str):
            return dt.time.fromisoformat(value)
        if isinstance(type_, Uuid) and isinstance(value, str):
            return uuid.UUID(value)
        if (
            isinstance(type_, String)
            and not isinstance(type_, Enum)  # an Enum column holds members, not text
            and isinstance(value, int | decimal.Decimal)
            and not isinstance(value, bool | enum.Enum)
        ):
            return str(value)
    except (ValueError, ArithmeticError, TypeError):
        return value
    return value


def to_json_value(value: Any) -> Any:
    """Return ``value`` as a JSON-native Python value (str, int, float, bool, None, list, dict)."""
    if type(value) in _NATIVE:
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, str):
        return str.__str__(value)  # a subclass (Markup, numpy.str_) as a plain str
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(float(value))
        number = float(value)
        return _PositionalFloat(number) if number.is_integer() and abs(number) >= 1e16 else number
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # every place, never exponent form
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        microseconds = value // _MICROSECOND
        if abs(microseconds) > _EXACT_FLOAT_INTEGER:
            raise CaptureError(
                f"{value!r} is too long to store exactly as seconds (over 285 years)"
            )
        return value.total_seconds()
    if isinstance(value, dict):
        converted = {_json_key(k): to_json_value(v) for k, v in value.items()}
        if len(converted) != len(value):
            raise CaptureError(
                f"two keys of {value!r} become the same text in JSON; rename one of them"
            )
        return converted
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_json_value(v) for v in items]
    raise CaptureError(
        f"cannot store a value of type {type(value).__name__} in the audit log: {value!r}. "
        "Use a column type whose Python values are JSON-friendly, or exclude the column."
    )


def _json_key(key: Any) -> str:
    if isinstance(key, str) and not isinstance(key, enum.Enum):
        return str.__str__(key)
    converted = to_json_value(key)
    return converted if isinstance(converted, str) else json.dumps(converted)
