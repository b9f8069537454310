"""History events for changes made directly in the database (the seed's SQL procedures).

``add_entity_history_events`` is the Python form of the seed's
``Core_AddEntityHistoryEvents``: a list of items, each naming a change type (0 Created,
1 Updated, 2 Deleted), an entity id and the entity type's full name, and optionally a
property with its old and new values and a description. Each item becomes an ordinary
audit row, which the trail renders like a row written by the ORM:

- with a property: ``difference = {column: [old, new]}`` (previous and current are not
  known, so they are null) and, when given, ``descriptions = {column: description}``;
- without a property: a history event named by the description.

On PostgreSQL the same operation exists in SQL (``audit_add_entity_history_events``,
see ``model/procedures.py``) and writes identical rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, Numeric, Table, Text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session, mapperlib
from sqlalchemy.types import TypeEngine

from ..errors import CaptureError
from ..model.procedures import entities_table_name
from ..model.types import JSONDocument
from .declaration import REDACTED
from .plan import AuditedColumn, ClassPlan

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = [
    "CHANGE_TYPES",
    "EntityHistoryItem",
    "EntityRegistry",
    "entities_table",
    "entity_rows",
    "history_rows",
    "publish_entities",
    "value_kind",
    "write_history",
]

CHANGE_TYPES = {0: "create", 1: "update", 2: "delete"}
"""The seed's change types: 0 Created, 1 Updated, 2 Deleted."""

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


@dataclass(frozen=True, slots=True)
class EntityHistoryItem:
    """One change made outside the ORM (the seed's ``Core_EntityHistoryItem``)."""

    change_type: int
    entity_id: str | int
    entity_type_full_name: str
    property_name: str | None = None
    property_type_full_name: str | None = None
    new_value: str | None = None
    old_value: str | None = None
    description: str | None = None


def value_kind(column: AuditedColumn) -> str:
    """How a text value from a procedure is read for this column: bool, int, float,
    decimal, text, or redacted (a secret column's values never reach the log).
    PostgreSQL's procedure reads them the same way."""
    if column.redact:
        return "redacted"
    type_: TypeEngine[Any] = column.column.type
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, Integer):
        return "int"
    if isinstance(type_, Float):
        return "float"
    if isinstance(type_, Numeric):
        return "decimal" if type_.asdecimal else "float"
    return "text"


def parse_value(text: str | None, kind: str, where: str) -> Any:
    """The JSON value of a procedure's text value; a wrong one raises CaptureError."""
    if text is None:
        return None
    if kind == "redacted":
        return REDACTED
    stripped = text.strip()
    try:
        if kind == "bool":
            lowered = stripped.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("not a boolean")
        if kind == "int":
            return int(stripped)
        if kind == "float":
            return float(stripped)
        if kind == "decimal":
            return str(decimal.Decimal(stripped))
    except (ValueError, decimal.InvalidOperation):
        raise CaptureError(f"{where}: {text!r} is not a valid {kind} value") from None
    return text


class EntityRegistry:
    """The audited classes of one audit log, by the names procedures use for them."""

    def __init__(self, recorder: Recorder) -> None:
        self.plans: dict[str, tuple[Mapper[Any], ClassPlan]] = {}
        short: dict[str, list[str]] = {}
        metadata = recorder.tables.log.metadata
        for registry in mapperlib._all_registries():
            for mapper in registry.mappers:
                table = mapper.local_table
                if not isinstance(table, Table) or table.metadata is not metadata:
                    continue
                plan = recorder.plan_for(mapper)
                if plan is not None:
                    self.plans[plan.full_name] = (mapper, plan)
                    short.setdefault(plan.class_name, []).append(plan.full_name)
        self._short = {name: full[0] for name, full in short.items() if len(full) == 1}

    def find(self, name: str) -> tuple[Mapper[Any], ClassPlan]:
        """The class called ``name`` (its full name, or its class name when unique)."""
        found = self.plans.get(name) or self.plans.get(self._short.get(name, ""))
        if found is None:
            known = ", ".join(sorted(self.plans)) or "none"
            raise CaptureError(f"unknown entity type {name!r}; audited entity types: {known}")
        return found


def history_rows(
    registry: EntityRegistry, items: Iterable[EntityHistoryItem]
) -> list[tuple[Mapper[Any], dict[str, Any]]]:
    """The audit rows (without actor columns) of ``items``, validated."""
    rows = []
    for number, item in enumerate(items, start=1):
        where = f"change {number}"
        verb = CHANGE_TYPES.get(item.change_type)
        if verb is None:
            raise CaptureError(
                f"{where}: change type {item.change_type!r} is not 0 (Created), "
                "1 (Updated) or 2 (Deleted)"
            )
        mapper, plan = registry.find(item.entity_type_full_name)
        rows.append((mapper, _row(plan, verb, item, where)))
    return rows


def _row(plan: ClassPlan, verb: str, item: EntityHistoryItem, where: str) -> dict[str, Any]:
    document: dict[str, Any] = {"previous": None, "current": None, "difference": {}}
    if item.property_name is None:
        action = getattr(plan, verb)
        document["event"] = {"name": item.description, "description": None}
    else:
        column = next((c for c in plan.columns if item.property_name in (c.key, c.name)), None)
        if column is None:
            raise CaptureError(
                f"{where}: {plan.class_name} has no audited property {item.property_name!r}"
            )
        kind = value_kind(column)
        label = f"{where}, {plan.class_name}.{item.property_name}"
        old = None if verb == "create" else parse_value(item.old_value, kind, label)
        new = None if verb == "delete" else parse_value(item.new_value, kind, label)
        document["difference"] = {column.name: [old, new]}
        if item.description is not None:
            document["descriptions"] = {column.name: item.description}
        action = (
            plan.update_action(document["difference"]) if verb == "update" else getattr(plan, verb)
        )
    if action is None:
        raise CaptureError(f"{where}: {plan.class_name} declares no {verb} action to record")
    number_identifier, entity_key = _identify(plan, item.entity_id, where)
    return {
        "action": action,
        "entity_type": plan.entity_type,
        "number_identifier": number_identifier,
        "entity_key": entity_key,
        "changed_objects": document,
    }


def _identify(plan: ClassPlan, entity_id: str | int, where: str) -> tuple[int | None, str | None]:
    if plan.integer_key:
        try:
            return int(str(entity_id).strip()), None
        except ValueError:
            raise CaptureError(
                f"{where}: entity id {entity_id!r} of {plan.class_name} must be an integer"
            ) from None
    return None, str(entity_id)  # a key that is not an integer, given as the log keeps it


def write_history(
    recorder: Recorder,
    bind: Session | Connection,
    items: Sequence[EntityHistoryItem],
    *,
    change_time: dt.datetime | None,
    reason: str | None,
    tenant_id: str | int | None,
    user_id: Any,
) -> int:
    """Validate every item, then write them all in one statement; return the count."""
    rows = history_rows(EntityRegistry(recorder), items)
    if change_time is not None and change_time.tzinfo is None:
        raise CaptureError(f"change_time must be timezone-aware, got {change_time!r}")
    stamp = {
        "user_id": user_id,
        "user_email": None,
        "is_impersonated": False,
        "impersonator_user_id": None,
        "impersonator_email": None,
        "tenant_id": None if tenant_id is None else str(tenant_id),
        "reason": reason,
        "context": None,
        "created_at": change_time or dt.datetime.now(dt.UTC),
    }
    if not rows:
        return 0
    connection = bind.connection() if isinstance(bind, Session) else bind
    recorder.insert_rows(connection, [row | stamp for _, row in rows])
    return len(rows)


def publish_entities(recorder: Recorder, connection: Connection) -> int:
    """Tell SQL about the audited classes (PostgreSQL's procedures read this table):
    their full and class names, codes, key kind, properties and domain actions."""
    table = entities_table(recorder)
    rows = entity_rows(recorder)
    connection.execute(table.delete())
    if rows:
        connection.execute(table.insert(), rows)
    return len(rows)


def entity_rows(recorder: Recorder) -> list[dict[str, Any]]:
    """The rows ``publish_entities`` writes, one per audited class."""
    registry = EntityRegistry(recorder)
    rows = []
    for full_name, (_, plan) in sorted(registry.plans.items()):
        properties = {}
        for column in plan.columns:
            described = {"column": column.name, "kind": value_kind(column)}
            properties[column.key] = described
            properties[column.name] = described
        rows.append(
            {
                "full_name": full_name,
                "class_name": plan.class_name,
                "entity_type": plan.entity_type,
                "create_action": plan.create,
                "update_action": plan.update,
                "delete_action": plan.delete,
                "integer_key": plan.integer_key,
                "properties": properties,
                "on_change": [[sorted(fields), action] for fields, action in plan.on_change],
            }
        )
    return rows


def entities_table(recorder: Recorder) -> Table:
    log = recorder.tables.log
    return Table(
        entities_table_name(recorder.tables),
        MetaData(schema=log.schema),
        Column("full_name", Text, primary_key=True),
        Column("class_name", Text),
        Column("entity_type", Integer),
        Column("create_action", Integer),
        Column("update_action", Integer),
        Column("delete_action", Integer),
        Column("integer_key", Boolean),
        Column("properties", JSONDocument()),
        Column("on_change", JSONDocument()),
    )
