"""The audit row of one record's change, from its values before and after.

Every capture path (the unit of work, bulk statements) hands raw column values here, so
that every path encodes, compares, redacts and identifies them the same way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import values
from .declaration import REDACTED
from .plan import AuditedColumn, ClassPlan

__all__ = ["build_row", "decode_key", "encode_key", "identify"]


def build_row(
    plan: ClassPlan,
    verb: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    key: Sequence[Any],
    collections: Mapping[str, tuple[list[Any], list[Any]]] | None = None,
    *,
    dialect: str,
    zone: dt.tzinfo | None = None,
) -> dict[str, Any] | None:
    """The audit row (without actor columns), or None when nothing audited changed.

    ``old`` and ``new`` map attribute keys to raw Python values (``old`` is ignored on
    create, ``new`` on delete); ``key`` holds the primary key values, identified as
    ``dialect``'s database identifies them (``identify``). ``collections``
    holds the many-to-many relationships that changed, as the related records' keys
    before and after; they join ``difference`` under the relationship's name.
    On PostgreSQL, values its columns store otherwise than given are logged as stored:
    a float in a ``REAL`` column as its four bytes keep it, text in a ``VARCHAR(n)``
    without the spaces past ``n`` that PostgreSQL cuts, and with ``zone``, the time
    zone of the session, a naive datetime given to a ``timestamptz`` column as the
    instant it reads there, an aware one given to a ``timestamp`` or ``date`` column as
    its wall time or day there.
    """
    if dialect == "postgresql" and plan.postgresql_forms:  # only the sides used
        old = old if verb == "create" else _as_stored(plan, old, zone)
        new = new if verb == "delete" else _as_stored(plan, new, zone)
    previous: dict[str, Any] | None = None
    current: dict[str, Any] | None = None
    if verb == "create":
        current, difference = _one_side(plan, new, created=True)
    elif verb == "delete":
        previous, difference = _one_side(plan, old, created=False)
    else:
        previous, current, difference = _both_sides(plan, old, new)
    for name, (before, after) in (collections or {}).items():
        difference[name] = [before, after]
    if verb == "update":
        action = plan.update_action(difference) if difference else None
    else:
        action = getattr(plan, verb)
    if action is None:
        return None
    number_identifier, entity_key = identify(plan, key, dialect=dialect)
    return {
        "action": action,
        "entity_type": plan.entity_type,
        "number_identifier": number_identifier,
        "entity_key": entity_key,
        "changed_objects": {"previous": previous, "current": current, "difference": difference},
    }


def _as_stored(
    plan: ClassPlan, raw: Mapping[str, Any], zone: dt.tzinfo | None
) -> Mapping[str, Any]:
    """``raw`` with each value as PostgreSQL stores it in its column (the same mapping
    when each already is as stored)."""
    stored: dict[str, Any] | None = None
    for key, form, length in plan.postgresql_forms:
        value = raw.get(key)
        as_stored = _stored_form(value, form, length, zone)
        if as_stored is not value:
            if stored is None:
                stored = dict(raw)
            stored[key] = as_stored
    return raw if stored is None else stored


def _stored_form(value: Any, form: str, length: int | None, zone: dt.tzinfo | None) -> Any:
    if form == "varchar":  # text past the length is refused on write, unless only spaces
        if isinstance(value, str) and length is not None and len(value) > length:
            return value[:length] if not value[length:].strip(" ") else value
        return value
    if form == "float4":  # a number the column takes as a float (its coercion's types)
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return value
        try:
            return _as_float4(float(value))
        except (ValueError, OverflowError):  # no float (sNaN, a huge int): refused on write
            return value
    if not isinstance(value, dt.datetime) or zone is None:
        return value  # a naive datetime in a Date column is its wall date (coercion)
    if form == "timestamptz":
        return _read_in(value, zone) if value.tzinfo is None else value
    if value.tzinfo is None:
        return value
    local = value.astimezone(zone)
    return local.date() if form == "date" else local.replace(tzinfo=None)


def _as_float4(value: float) -> float:
    """``value`` as a ``REAL`` keeps it, read back: the shortest decimal that four bytes
    hold alike (0.123456789 is 0.12345679), as PostgreSQL writes it."""
    try:
        single = _in_four_bytes(value)
    except OverflowError:
        return value  # out of a REAL's range: the database refuses it
    if not math.isfinite(single):
        return single
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        shortest = float(text)
        if _in_four_bytes(shortest) == single and not _halfway(text, single):
            return shortest
    return single


def _in_four_bytes(value: float) -> float:
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    return single


def _halfway(text: str, single: float) -> bool:
    """Whether the decimal ``text`` lies exactly halfway between the REAL ``single`` and
    a neighbour: it reads back as ``single`` only by rounding the tie to even, and
    PostgreSQL's shortest output never writes such a decimal (33821310 for the REAL
    33821312, which it writes in full)."""
    magnitude = abs(single)
    (bits,) = struct.unpack("<I", struct.pack("<f", magnitude))
    with decimal.localcontext(prec=400):  # exact: a REAL has under 120 decimal digits
        doubled, here = 2 * abs(decimal.Decimal(text)), decimal.Decimal(magnitude)
        for neighbour_bits in (bits - 1, bits + 1):
            if neighbour_bits < 0:
                continue
            (neighbour,) = struct.unpack("<f", struct.pack("<I", neighbour_bits))
            if math.isfinite(neighbour) and doubled == here + decimal.Decimal(neighbour):
                return True
    return False


def _read_in(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The instant PostgreSQL reads a naive ``wall`` time as in ``zone``, in that zone.
    Around a daylight-saving change as PostgreSQL does: a wall time the clocks skipped
    with the offset before the change (02:30 on a spring-forward night is 03:30 summer
    time), one they passed twice as its later occurrence."""
    earlier = wall.replace(tzinfo=zone)
    later = wall.replace(tzinfo=zone, fold=1)
    instant = later if earlier.utcoffset() != later.utcoffset() else earlier
    # Through UTC: astimezone to the value's own tzinfo would change nothing.
    shown = instant.astimezone(dt.UTC).astimezone(zone)
    if shown.replace(tzinfo=None) != wall:  # skipped: PEP 495's fold=0 is the offset before
        shown = earlier.astimezone(dt.UTC).astimezone(zone)
    return shown


def _one_side(
    plan: ClassPlan, raw: Mapping[str, Any], *, created: bool
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A created (or deleted) record: its values, and every non-null one against null."""
    document: dict[str, Any] = {}
    difference: dict[str, list[Any]] = {}
    for column in plan.columns:
        value = column.to_json(raw.get(column.key))
        name = column.name
        if value is not None:
            if column.redact:
                value = REDACTED
            difference[name] = [None, value] if created else [value, None]
        document[name] = value
    return document, difference


def _both_sides(
    plan: ClassPlan, old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    """An updated record: its values before and after, and those that changed.

    A column the change did not touch holds the same object before and after (the flush
    hook reuses it): it is converted once, and is not a change."""
    previous: dict[str, Any] = {}
    current: dict[str, Any] = {}
    difference: dict[str, list[Any]] = {}
    for column in plan.columns:
        key = column.key
        raw_new = new.get(key)
        raw_old = old.get(key)
        new_json = column.to_json(raw_new)
        if raw_old is raw_new:
            old_json = new_json
            changed = False
        else:
            old_json = column.to_json(raw_old)
            changed = (
                old_json != new_json or type(old_json) is not type(new_json)
            ) and not _same_to_sqlalchemy(column, raw_old, raw_new)
        if column.redact:
            new_json = None if new_json is None else REDACTED
            old_json = None if old_json is None else REDACTED
        name = column.name
        previous[name] = old_json
        current[name] = new_json
        if changed:
            difference[name] = [old_json, new_json]
    return previous, current, difference


def _same_to_sqlalchemy(column: AuditedColumn, old: Any, new: Any) -> bool:
    """Whether SQLAlchemy leaves the column out of its UPDATE, the values being equal
    to the column's type (the same instant in another time zone, ``True`` for ``1`` in
    a JSON column): the stored value does not change, so neither does the record."""
    if old is None or new is None:
        return old is new
    return bool(column.column.type.compare_values(old, new))


def identify(plan: ClassPlan, key: Sequence[Any], *, dialect: str) -> tuple[int | None, str | None]:
    """``(number_identifier, entity_key)``: integer keys as numbers, others as text.

    A key part that is an instant is encoded as the ``dialect``'s database tells one
    record from another, so that every path (the flush, the triggers, a query) names the
    record alike: on PostgreSQL in UTC, whatever the offset it was given in and the
    session's time zone; on SQLite as its wall time, since SQLite stores no offset."""
    if plan.integer_key:
        return (None if key[0] is None else int(key[0])), None
    return None, encode_key([_as_identified(v, dialect) for v in key])


def encode_key(parts: Sequence[Any]) -> str:
    """``entity_key`` of a key that is not an integer: a text key as itself, another
    single value as its JSON, a composite key as a compact JSON array."""
    encoded = [values.to_json_value(part) for part in parts]
    if len(encoded) == 1 and isinstance(encoded[0], str):
        return encoded[0]
    return values.dumps(encoded[0] if len(encoded) == 1 else encoded)


def decode_key(text: str, size: int) -> tuple[Any, ...] | None:
    """A composite key of ``size`` parts given as the log writes it (``encode_key``: a
    JSON array such as ``["a,b",1]``), as its parts; None when ``text`` is not one."""
    try:
        parts = values.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, list) or len(parts) != size or size < 2:
        return None
    return tuple(parts)


def _as_identified(value: Any, dialect: str) -> Any:
    if not isinstance(value, dt.datetime | dt.time) or value.tzinfo is None:
        return value
    if dialect == "sqlite":
        return value.replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value  # a time keeps its offset: PostgreSQL's time with time zone stores it
