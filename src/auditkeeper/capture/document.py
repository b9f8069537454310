"""The audit row of one record's change, from its values before and after.

Every capture path (the unit of work, bulk statements) hands raw column values here, so
that every path encodes, compares, redacts and identifies them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..model import values
from .declaration import REDACTED
from .plan import ClassPlan, coerce

__all__ = ["build_row", "identify"]


def build_row(
    plan: ClassPlan,
    verb: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    key: Sequence[Any],
    collections: Mapping[str, tuple[list[Any], list[Any]]] | None = None,
) -> dict[str, Any] | None:
    """The audit row (without actor columns), or None when nothing audited changed.

    ``old`` and ``new`` map attribute keys to raw Python values (``old`` is ignored on
    create, ``new`` on delete); ``key`` holds the primary key values. ``collections``
    holds the many-to-many relationships that changed, as the related records' keys
    before and after; they join ``difference`` under the relationship's name.
    """
    previous: dict[str, Any] = {}
    current: dict[str, Any] = {}
    difference: dict[str, list[Any]] = {}
    for column in plan.columns:
        column_type = column.column.type
        new_json = values.to_json_value(coerce(new.get(column.key), column_type))
        old_json = values.to_json_value(coerce(old.get(column.key), column_type))
        changed = old_json != new_json or type(old_json) is not type(new_json)
        if column.redact:
            new_json = None if new_json is None else REDACTED
            old_json = None if old_json is None else REDACTED
        name = column.name
        previous[name] = old_json
        current[name] = new_json
        if verb == "create":
            if new_json is not None:
                difference[name] = [None, new_json]
        elif verb == "delete":
            if old_json is not None:
                difference[name] = [old_json, None]
        elif changed:
            difference[name] = [old_json, new_json]
    for name, (before, after) in (collections or {}).items():
        difference[name] = [before, after]
    if verb == "update":
        action = plan.update_action(difference) if difference else None
    else:
        action = getattr(plan, verb)
    if action is None:
        return None
    number_identifier, entity_key = identify(plan, key)
    return {
        "action": action,
        "entity_type": plan.entity_type,
        "number_identifier": number_identifier,
        "entity_key": entity_key,
        "changed_objects": {
            "previous": None if verb == "create" else previous,
            "current": None if verb == "delete" else current,
            "difference": difference,
        },
    }


def identify(plan: ClassPlan, key: Sequence[Any]) -> tuple[int | None, str | None]:
    """``(number_identifier, entity_key)``: integer keys as numbers, others as text."""
    if plan.integer_key:
        return (None if key[0] is None else int(key[0])), None
    encoded = [values.to_json_value(v) for v in key]
    if len(encoded) == 1 and isinstance(encoded[0], str):
        return None, encoded[0]
    if len(encoded) == 1:
        return None, values.dumps(encoded[0])
    return None, values.dumps(encoded)
