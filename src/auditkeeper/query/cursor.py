"""Opaque page cursors: where the previous page ended, and which query it belonged to.

A cursor is base64url (no padding) of a small JSON object: the ``(created_at, id)`` of
the last row shown (or, for the page before, of the first row shown, with ``"d": "b"``),
and the fingerprint of the filter and order that produced it. It is
opaque to users but not secret: it holds nothing the page did not show. Decoding checks
every part, so a truncated, edited or foreign cursor is an ``InvalidCursorError`` that
says so, and a cursor of one query replayed on another is refused instead of returning
a page of the wrong rows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import NoReturn

import orjson

from ..errors import InvalidCursorError

__all__ = ["Position", "decode_cursor", "encode_cursor"]

_VERSION = 1
_MAX_LENGTH = 512
_KEYS = frozenset({"v", "at", "id", "q"})
_BEFORE = {"d": "b"}
"""Marks a cursor to the page before a position; forward cursors have no ``d``, so
their text is what it was before pages could go back."""


@dataclass(frozen=True, slots=True)
class Position:
    """A row's sort key. A page goes on strictly after it, or, when ``before``, is the
    page that ends strictly before it (the "previous" page)."""

    created_at: dt.datetime
    id: int
    before: bool = False


def encode_cursor(position: Position, fingerprint: str) -> str:
    """The cursor of the page after ``position`` (or before it, when ``position.before``)
    of the query ``fingerprint``."""
    payload = {
        "v": _VERSION,
        "at": position.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "id": position.id,
        "q": fingerprint,
        **(_BEFORE if position.before else {}),
    }
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, fingerprint: str) -> Position:
    """The position in ``cursor``; ``InvalidCursorError`` if it is malformed or was made
    by a query other than ``fingerprint``."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_LENGTH:
        _refuse(cursor, "it is not a cursor string")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        _refuse(cursor, "it is not base64url-encoded JSON")
    version = payload.get("v") if isinstance(payload, dict) else None
    if type(version) is not int or version != _VERSION:  # True == 1, but is no version
        _refuse(cursor, "its content is not that of an auditkeeper cursor")
    direction = payload.pop("d", None)
    if set(payload) != _KEYS or direction not in (None, _BEFORE["d"]):
        _refuse(cursor, "its content is not that of an auditkeeper cursor")
    row_id, moment, query = payload["id"], payload["at"], payload["q"]
    if not isinstance(row_id, int) or isinstance(row_id, bool) or not isinstance(query, str):
        _refuse(cursor, "its content is not that of an auditkeeper cursor")
    try:
        created_at = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else None
    except ValueError:
        created_at = None
    if created_at is None or created_at.tzinfo is None:
        _refuse(cursor, "its time is not an ISO-8601 instant with an offset")
    if query != fingerprint:
        raise InvalidCursorError(
            f"the cursor {_shown(cursor)} was made for a different filter or order; pass "
            "the same filter and order as for the page that gave it, or start without a cursor"
        )
    return Position(created_at.astimezone(dt.UTC), row_id, direction is not None)


def _refuse(cursor: object, why: str) -> NoReturn:
    raise InvalidCursorError(
        f"{_shown(cursor)} is not a page cursor: {why}. Pass a page's next_cursor unchanged, "
        "or start without a cursor"
    )


def _shown(cursor: object) -> str:
    text = repr(cursor)
    return text if len(text) <= 60 else f"{text[:57]}..."
