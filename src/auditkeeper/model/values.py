"""Turning column values into JSON without losing their meaning.

The rules (DESIGN.md, "The audit-log record"): datetimes and dates as ISO-8601 (with
their offset when they have one), Decimal as a string with every digit, UUID as a
string, enums by value, bytes as base64, JSON values as they are. Nothing is truncated
and nothing is silently dropped: a value that JSON cannot hold raises ``CaptureError``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import ipaddress
import json
import math
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.dialects.postgresql.ranges import MultiRange, Range

from ..errors import CaptureError
from .ranges import holds_nothing

__all__ = ["CONVERTERS", "dumps", "loads", "to_json_value"]

_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
_NATIVE = frozenset({str, int, bool, type(None)})
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_DIGIT_RUN = b"9" * 19
"""Any run of 19 digits, once every digit reads as a 9: a number orjson may not keep."""
_MICROSECOND = dt.timedelta(microseconds=1)
_EXACT_FLOAT_INTEGER = 2**53


class _PositionalFloat(float):
    """A float written as ``10000000000000000.0``, not ``1e16``: PostgreSQL's JSONB would
    keep the exponent form as an integer, and the value would come back as an int."""


def to_json_value(value: Any) -> Any:
    """Return ``value`` as a JSON-native Python value (str, int, float, bool, None, list, dict)."""
    kind = type(value)
    if kind in _NATIVE:
        return value
    convert = CONVERTERS.get(kind)
    if convert is not None:
        return convert(value)
    return _subclass_to_json_value(value)


def _subclass_to_json_value(value: Any) -> Any:
    """The rules for the types ``CONVERTERS`` does not name exactly: enum members and
    subclasses of the built-in types (``Markup``, ``numpy.str_``, pendulum datetimes)."""
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, str):
        return str.__str__(value)  # a subclass (Markup, numpy.str_) as a plain str
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _base64(value)
    if isinstance(value, dt.timedelta):
        return _seconds(value)
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list | tuple):
        return _array(value)
    if isinstance(value, set | frozenset):
        return _sorted_array(value)
    raise CaptureError(
        f"cannot store a value of type {type(value).__name__} in the audit log: {value!r}. "
        "Use a column type whose Python values are JSON-friendly, or exclude the column."
    )


def _float(number: float) -> Any:
    if not math.isfinite(number):
        return repr(number)
    return _PositionalFloat(number) if number.is_integer() and abs(number) >= 1e16 else number


def _decimal(number: decimal.Decimal) -> str:
    return format(number, "f")  # every place, never exponent form


def _base64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _seconds(duration: dt.timedelta) -> float:
    microseconds = duration // _MICROSECOND
    if abs(microseconds) > _EXACT_FLOAT_INTEGER:
        raise CaptureError(f"{duration!r} is too long to store exactly as seconds (over 285 years)")
    return duration.total_seconds()


def _object(mapping: dict[Any, Any]) -> dict[str, Any]:
    converted = {
        (k if type(k) is str else _json_key(k)): (v if type(v) in _NATIVE else to_json_value(v))
        for k, v in mapping.items()
    }
    if len(converted) != len(mapping):
        raise CaptureError(
            f"two keys of {mapping!r} become the same text in JSON; rename one of them"
        )
    return converted


def _array(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [v if type(v) in _NATIVE else to_json_value(v) for v in items]


def _sorted_array(items: set[Any] | frozenset[Any]) -> list[Any]:
    return _array(sorted(items, key=repr))


def _range(value: Range[Any]) -> str:
    """A range as PostgreSQL writes it (``[1,6)``, ``(,2024-01-05)``, ``empty``), with
    its bounds by these rules: the database reads the text back as the same range.
    As PostgreSQL does for every range type, an unbounded side is written open and a
    range that holds no value as ``empty``; the discrete types' ``[)`` form is the
    column's rule (``model.ranges``)."""
    if holds_nothing(value):
        return "empty"
    lower, upper = value.lower, value.upper
    opening = "(" if lower is None else value.bounds[0]
    closing = ")" if upper is None else value.bounds[1]
    return f"{opening}{_range_bound(lower)},{_range_bound(upper)}{closing}"


def _range_bound(bound: Any) -> str:
    if bound is None:  # unbounded
        return ""
    converted = to_json_value(bound)
    text = converted if isinstance(converted, str) else dumps(converted)
    if text and not _RANGE_SPECIAL.intersection(text):
        return text
    # Quoted as PostgreSQL's range_out quotes a bound, doubling quotes and backslashes.
    return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'


_RANGE_SPECIAL = frozenset('"\\()[], \t\n\r\v\f')


def _multirange(value: MultiRange[Any]) -> str:
    """A multirange as PostgreSQL writes it: ``{[1,3),[5,8)}``."""
    return "{" + ",".join(_range(item) for item in value) + "}"


CONVERTERS: dict[type, Callable[[Any], Any]] = {
    float: _float,
    decimal.Decimal: _decimal,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    uuid.UUID: str,
    bytes: _base64,
    bytearray: _base64,
    memoryview: _base64,
    dt.timedelta: _seconds,
    dict: _object,
    list: _array,
    tuple: _array,
    set: _sorted_array,
    frozenset: _sorted_array,
    # PostgreSQL's inet and cidr, as psycopg and asyncpg load them: the text the
    # database writes for them (a host address without its /32).
    ipaddress.IPv4Address: str,
    ipaddress.IPv6Address: str,
    ipaddress.IPv4Interface: str,
    ipaddress.IPv6Interface: str,
    ipaddress.IPv4Network: str,
    ipaddress.IPv6Network: str,
    # PostgreSQL's ranges and multiranges, as SQLAlchemy loads them.
    Range: _range,
    MultiRange: _multirange,
}
"""``to_json_value`` for values of exactly these types (not subclasses), found with one
dictionary lookup instead of a chain of ``isinstance`` tests: the capture path converts
every audited column of every changed record."""


def _json_key(key: Any) -> str:
    if isinstance(key, str) and not isinstance(key, enum.Enum):
        return str.__str__(key)
    converted = to_json_value(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def _default(value: Any) -> Any:
    if isinstance(value, _PositionalFloat):
        return orjson.Fragment(f"{value:.1f}")
    converted = to_json_value(value)
    if converted is value:  # pragma: no cover - orjson only calls us for foreign types
        raise TypeError(f"unsupported value {value!r}")
    return converted


def dumps(document: Any) -> str:
    """Encode a document made of ``to_json_value`` results as text.

    Pass values through ``to_json_value`` first: it turns NaN and infinities into
    text, which orjson would otherwise write as null."""
    try:
        return orjson.dumps(document, default=_default, option=_OPTIONS).decode("utf-8")
    except orjson.JSONEncodeError as error:
        if "Integer exceeds 64-bit range" in str(error):
            # JSON itself has no integer limit; orjson does. Keep every digit.
            try:
                return json.dumps(document, ensure_ascii=False, default=_default, allow_nan=False)
            except ValueError as fallback_error:
                raise CaptureError(f"cannot encode an audit document: {fallback_error}") from None
        raise CaptureError(f"cannot encode an audit document as JSON: {error}") from error


def loads(text: str | bytes) -> Any:
    """Decode a stored document."""
    # orjson reads integers beyond 64 bits as floats, losing digits: leave those
    # (rare) documents to the standard library, which keeps every digit.
    # bytes.translate and a substring test run in C: a tenth of a regular expression's
    # time on a 2.5 KB document, which was most of decoding one.
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_NINES):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
