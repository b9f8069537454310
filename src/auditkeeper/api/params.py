"""Reading query parameters strictly: every malformed value is a ``BadInputError`` that names
its parameter, so the API answers 422 with that name instead of 500 (or a silent guess).

Values reach the database only after these checks: integers are bounded to what a
PostgreSQL ``bigint`` holds, and text never carries a NUL byte (PostgreSQL refuses
those with an error, which would otherwise surface as a server error).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import inspect

from ..capture.document import decode_key
from ..capture.plan import coerce

__all__ = [
    "BIGINT_MAX",
    "BadInputError",
    "NotFoundError",
    "parse_instant",
    "parse_key",
    "parse_user_id",
]

BIGINT_MAX = 2**63 - 1


class BadInputError(ValueError):
    """A parameter's value is malformed: the API answers 422 naming ``param``."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


class NotFoundError(LookupError):
    """Nothing there (or not in the caller's tenant): the API answers 404."""


def check_text(param: str, value: str) -> str:
    """``value`` unless it holds a NUL byte, which no database column can store."""
    if "\x00" in value:
        raise BadInputError(param, f"{param} must not contain a NUL character")
    return value


def parse_instant(param: str, value: str) -> dt.datetime:
    """An ISO-8601 date or time; without an offset it is UTC (as on the command line)."""
    try:
        moment = dt.datetime.fromisoformat(check_text(param, value).strip())
    except ValueError:
        raise BadInputError(
            param,
            f"{param}: {value[:40]!r} is not a date or time; use ISO-8601, e.g. 2026-03-01 "
            "or 2026-03-01T14:30:00+02:00 (no offset means UTC)",
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        raise BadInputError(param, f"{param}: {value[:40]!r} is out of range") from None
    return moment


def parse_int(param: str, value: str) -> int:
    """A whole number a ``bigint`` column can hold."""
    try:
        number = int(check_text(param, value).strip())
    except ValueError:
        raise BadInputError(param, f"{param}: {value[:40]!r} is not an integer") from None
    if not -BIGINT_MAX <= number <= BIGINT_MAX:
        raise BadInputError(param, f"{param}: {number} is out of range")
    return number


def parse_user_id(param: str, value: str, column_type: Any) -> Any:
    """A user id as the log's ``user_id`` column holds it (an integer, a UUID, text)."""
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return check_text(param, value)
    if python_type is int:
        return parse_int(param, value)
    if python_type is uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise BadInputError(param, f"{param}: {value[:40]!r} is not a UUID") from None
    return check_text(param, value)


def parse_key(param: str, cls: type, value: str) -> Any:
    """``value`` as ``cls``'s primary key (an int for an integer key, a UUID...)."""
    check_text(param, value)
    columns: Any = inspect(cls).primary_key
    if len(columns) != 1:  # as the log writes it: a JSON array of the parts
        parts = decode_key(value, len(columns))
        if parts is None:
            raise BadInputError(
                param,
                f"{param}: {value[:40]!r} is not a key of {cls.__name__}, whose key has "
                f'{len(columns)} parts: give them as a JSON array such as ["a", 1]',
            )
        return tuple(
            _coerced(param, cls, part, column.type)
            for part, column in zip(parts, columns, strict=True)
        )
    column_type = columns[0].type
    try:
        wants_int = column_type.python_type is int
    except NotImplementedError:
        wants_int = False
    if wants_int:
        return parse_int(param, value)
    return _coerced(param, cls, value, column_type)


def _coerced(param: str, cls: type, value: Any, column_type: Any) -> Any:
    try:
        return coerce(value, column_type)
    except (TypeError, ValueError):
        raise BadInputError(
            param, f"{param}: {str(value)[:40]!r} is not a key of {cls.__name__}"
        ) from None
