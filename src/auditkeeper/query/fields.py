"""SQL conditions on the fields a row changed: the keys of ``changed_objects.difference``.

Field names and values are user input, so they only ever travel as bound parameters:

- PostgreSQL: ``changed_objects -> 'difference' ? :field`` and
  ``changed_objects -> 'difference' -> :field -> 1 = CAST(:value AS JSONB)``;
- SQLite: ``EXISTS (SELECT 1 FROM json_each(changed_objects, '$.difference') AS d
  WHERE d.key = :field)``, which matches the key exactly whatever characters it holds
  (a JSON path would need quoting), and ``d.value -> '$[1]' = json(:value)``.

A value is compared as the log stores it (``model.values`` rules: a Decimal as its text,
an enum by its value), so ``changed_to=LeadStatus.WON`` finds ``"won"``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, cast, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from ..model import values

__all__ = ["field_changed"]

_NEW_VALUE = "$[1]"


def field_changed(
    table: Table, dialect: str, field: str, *, to: Any, match_value: bool
) -> ColumnElement[bool]:
    """Rows whose ``difference`` has ``field`` (and, with ``match_value``, whose new value
    of it is ``to``)."""
    encoded = values.dumps(values.to_json_value(to)) if match_value else None
    if dialect == "postgresql":
        difference = type_coerce(table.c.changed_objects, JSONB)["difference"]
        condition: ColumnElement[bool] = difference.has_key(field)
        if encoded is not None:
            new_value = difference[field][1]
            condition = condition & (new_value == cast(literal(encoded), JSONB))
        return condition
    each = func.json_each(table.c.changed_objects, "$.difference").table_valued("key", "value")
    where = [each.c.key == field]
    if encoded is not None:
        where.append(each.c.value.op("->")(_NEW_VALUE) == func.json(encoded))
    return select(literal(1)).select_from(each).where(*where).exists()
