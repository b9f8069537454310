"""Stored values as the trail prints them (DESIGN.md, "Audit trail: exact texts").

``true`` / ``false``, dates as stored (ISO-8601), enums by their label, references by
the referenced record's name, null as an empty string. Names of referenced records are
looked up beforehand, in one query per referenced class (``Names``).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from ..capture.plan import coerce
from ..model import values
from .options import ColumnSpec, NameSpec, enum_label

__all__ = ["FromLog", "Names", "python_value", "text_of"]

FromLog = Callable[[NameSpec, list[Any]], Mapping[Any, str]]
"""Names of deleted records, read from their last audit rows."""


class Names:
    """Names of referenced records, fetched in one query per class."""

    def __init__(self) -> None:
        self._wanted: dict[NameSpec, set[Any]] = defaultdict(set)
        self._found: dict[NameSpec, dict[Any, str]] = {}

    def want(self, spec: NameSpec, keys: Iterable[Any]) -> None:
        """Ask for the names of these keys (before ``fetch``)."""
        self._wanted[spec].update(k for k in keys if k is not None)

    def fetch(self, session: Session, *, from_log: FromLog | None = None) -> None:
        """Read every wanted name: one query per class, and for records that no longer
        exist, one query of their audit rows (``from_log``) per class."""
        for spec, keys in self._wanted.items():
            column = spec.primary_key
            if column is None or spec.name_column is None or not keys:
                continue
            known = self._found.setdefault(spec, {})
            missing = [k for k in keys if _lookup_key(k) not in known]
            if not missing:
                continue
            ids = [coerce(k, column.type) for k in missing]
            statement = select(column, spec.name_column).where(column.in_(ids))
            for key, name in session.execute(statement, bind_arguments={"mapper": _mapper(spec)}):
                known[_lookup_key(values.to_json_value(key))] = "" if name is None else str(name)
            gone = [k for k in missing if _lookup_key(k) not in known]
            if gone and from_log is not None:
                for key, name in from_log(spec, gone).items():
                    known.setdefault(_lookup_key(key), name)
        self._wanted.clear()

    def name(self, spec: NameSpec, key: Any) -> str:
        """The record's name; ``{Label} {id}`` when it has none or no longer exists."""
        if key is None:
            return ""
        found = self._found.get(spec, {}).get(_lookup_key(key))
        return found if found is not None else f"{spec.label} {key}"


def text_of(column: ColumnSpec | None, value: Any, names: Names) -> str:
    """``value`` (as stored) as the trail prints it."""
    if value is None:
        return ""
    if column is not None:
        if column.reference is not None and not column.redacted:
            return names.name(column.reference, value)
        if column.enum_class is not None:
            member = _member(column.enum_class, value)
            if member is not None:
                return enum_label(member)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return values.dumps(value)


def python_value(column: ColumnSpec | None, value: Any) -> Any:
    """``value`` (as stored) as the application's Python value: enum members for enum
    columns, dates and decimals as their types (what an event creator compares)."""
    if value is None or column is None:
        return value
    if column.enum_class is not None:
        member = _member(column.enum_class, value)
        return value if member is None else member
    return coerce(value, column.column_type)


def _member(enum_class: type[enum.Enum], value: Any) -> enum.Enum | None:
    """The member stored as ``value``: by value, by the text of an integer value (an
    ``IntEnum`` in an ``Enum`` column is stored as ``"1"``), or by name."""
    candidates = [value]
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        candidates.append(int(value))
    for candidate in candidates:
        try:
            return enum_class(candidate)
        except ValueError:
            continue
    if isinstance(value, str):
        return enum_class.__members__.get(value)
    return None


def _lookup_key(key: Any) -> Any:
    """Keys compare as their JSON value (a UUID key and its stored text match)."""
    return str(key) if not isinstance(key, int | str) or isinstance(key, bool) else key


def _mapper(spec: NameSpec) -> Any:
    return inspect(spec.cls)
