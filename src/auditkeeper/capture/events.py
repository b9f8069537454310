"""Custom history events and property-change texts, written with the entity's own change.

::

    user.password = new_password
    add_history_event(user, "Password reset")
    user.is_active = False
    add_property_change_description(user, "User inactivated", User.is_active)

Each call keeps an annotation on the instance (its ``InstanceState.info``) and marks the
instance dirty, so that the next flush of its session processes it even when nothing
else changed. The flush hook then writes the annotations in the same statement as the
flush's other audit rows, and forgets them:

- a description or comment of a property that changed in that flush goes into that
  row's document (``"descriptions"`` / ``"comments"``, keyed by column name);
- a history event, and a description or comment of a property that did not change in
  that flush, becomes its own row: ``{"previous": null, "current": null,
  "difference": {}, "event": {"name": ..., "description": ...}}``. Nothing is lost.

An annotation on an object outside any session waits until the object is added and
flushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import InstanceState, Mapper, QueryableAttribute, UOWTransaction
from sqlalchemy.orm.attributes import flag_dirty

from ..errors import ConfigurationError
from .declaration import declaration_of
from .document import identify
from .plan import ClassPlan

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = [
    "add_annotation_rows",
    "add_history_event",
    "add_property_change_comment",
    "add_property_change_description",
    "has_annotations",
]

_ANNOTATIONS = "auditkeeper.annotations"

PropertyRef = str | QueryableAttribute[Any]
"""A property named by its attribute or column name, or by the mapped attribute."""


@dataclass
class _Annotations:
    """What is waiting on one instance for its next flush, in the order of the calls:
    ``("event", name, description)``, ``("descriptions", key, text)`` or
    ``("comments", key, text)``."""

    entries: list[tuple[str, str | None, str]] = field(default_factory=list)


def add_history_event(
    entity: object, name_or_description: str, description: str | None = None
) -> None:
    """Add a custom event to ``entity``'s audit trail, written with its next flush.

    ``add_history_event(user, "Password reset")`` shows Type of event ``Event`` and the
    description; ``add_history_event(user, "Password reset", "Password reset by
    Administrator")`` shows the name and the description.
    """
    state, _ = _audited_state(entity, "add_history_event")
    if description is None:
        name, text = None, _text(name_or_description, "description")
    else:
        name, text = _text(name_or_description, "event name"), _text(description, "description")
    _annotations(state).entries.append(("event", name, text))
    flag_dirty(entity)


def add_property_change_description(
    entity: object, description: str, property: PropertyRef
) -> None:
    """Show ``description`` instead of the default text of ``property``'s change in
    the next flush (``"IsActive" was changed from "true" to "false"`` becomes
    ``User inactivated``). If the property does not change in that flush, the
    description is shown as an event of its own."""
    state, key = _audited_property(entity, property, "add_property_change_description")
    _annotations(state).entries.append(("descriptions", key, _text(description, "description")))
    flag_dirty(entity)


def add_property_change_comment(entity: object, description: str, property: PropertyRef) -> None:
    """Append `` ({description})`` to the text of ``property``'s change in the next flush.
    If the property does not change in that flush, the comment is shown as an event of
    its own."""
    state, key = _audited_property(entity, property, "add_property_change_comment")
    _annotations(state).entries.append(("comments", key, _text(description, "comment")))
    flag_dirty(entity)


def has_annotations(state: InstanceState[Any]) -> bool:
    """Whether ``state`` has annotations waiting for its next flush."""
    return _ANNOTATIONS in state.info


def add_annotation_rows(
    recorder: Recorder,
    flush_context: UOWTransaction,
    built: Mapping[InstanceState[Any], dict[str, Any]],
    rows_by_mapper: dict[Mapper[Any], list[dict[str, Any]]],
) -> None:
    """Flush hook: put the annotations of the flushed instances into their rows
    (``built``, by state) or into rows of their own, and forget them."""
    annotated = [
        (state, is_delete)
        for state, (is_delete, list_only) in flush_context.states.items()
        if not list_only and has_annotations(state)
    ]
    # A stable order: objects in the order they were added, then by class and key.
    annotated.sort(key=lambda item: (item[0].insert_order or 0, item[0].class_.__name__))
    for state, is_delete in annotated:
        annotations: _Annotations = state.info.pop(_ANNOTATIONS)
        plan = recorder.plan_for(state.mapper)
        if plan is None:  # pragma: no cover - the calls refuse classes that are not audited
            continue
        row = built.get(state)
        extra = _merge(plan, annotations, row)
        if not extra:
            continue
        action = _event_action(recorder, plan, state)
        dialect = flush_context.session.get_bind(mapper=state.mapper).dialect.name
        key = _key(plan, state, is_delete)
        number_identifier, entity_key = identify(plan, key, dialect=dialect)
        for name, description in extra:
            rows_by_mapper[state.mapper].append(
                {
                    "action": action,
                    "entity_type": plan.entity_type,
                    "number_identifier": number_identifier,
                    "entity_key": entity_key,
                    "changed_objects": {
                        "previous": None,
                        "current": None,
                        "difference": {},
                        "event": {"name": name, "description": description},
                    },
                }
            )


def _merge(
    plan: ClassPlan, annotations: _Annotations, row: dict[str, Any] | None
) -> list[tuple[str | None, str | None]]:
    """Attach texts of changed properties to ``row``; return the events still to write."""
    document: dict[str, Any] = {} if row is None else row["changed_objects"]
    # Only an update shows property texts; a creation or deletion row does not.
    updated = document.get("previous") is not None and document.get("current") is not None
    changed = document.get("difference", {}) if updated else {}
    columns = {c.key: c.name for c in plan.columns}
    extra: list[tuple[str | None, str | None]] = []
    for slot, key, text in annotations.entries:
        column = None if key is None else columns.get(key)
        if slot == "event":
            extra.append((key, text))
        elif column is not None and column in changed:
            texts = document.setdefault(slot, {})
            texts[column] = f"{texts[column]}; {text}" if column in texts else text
        else:
            extra.append((None, text))
    return extra


def _event_action(recorder: Recorder, plan: ClassPlan, state: InstanceState[Any]) -> int:
    declaration = declaration_of(state.class_)
    declared = None if declaration is None else declaration.event
    if declared is not None:
        if not isinstance(declared, recorder.actions):
            raise ConfigurationError(
                f"@audited event= on {plan.class_name} is {declared!r}, which is not a member "
                f"of {recorder.actions.__name__}, the enum this audit log was configured with"
            )
        return int(declared)
    for fallback in (recorder.event_action, plan.update):
        if fallback is not None:
            return fallback
    raise ConfigurationError(_no_action_message(plan.class_name))


def _key(plan: ClassPlan, state: InstanceState[Any], is_delete: bool) -> list[Any]:
    """The primary key: the stored one for a deletion, else the one after the flush."""
    stored = state.key[1] if state.key is not None else (None,) * len(plan.primary_key)
    if is_delete:
        return list(stored)
    return [
        state.dict.get(column.key, old)
        for column, old in zip(plan.primary_key, stored, strict=True)
    ]


def _annotations(state: InstanceState[Any]) -> _Annotations:
    found: _Annotations | None = state.info.get(_ANNOTATIONS)
    if found is None:
        found = state.info[_ANNOTATIONS] = _Annotations()
    return found


def _text(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"the {label} must be a str, got {value!r}")
    return value


def _audited_state(entity: object, call: str) -> tuple[InstanceState[Any], str]:
    """The instance's state, after checking that its class can record events."""
    try:
        state: InstanceState[Any] = inspect(entity)
    except NoInspectionAvailable:
        raise ConfigurationError(
            f"{call}() takes an instance of a mapped class, got {entity!r}"
        ) from None
    cls = state.class_
    declaration = declaration_of(cls)
    if declaration is None:
        raise ConfigurationError(
            f"{call}(): {cls.__name__} is not audited; declare it with @auditkeeper.audited "
            "to record its history events"
        )
    if declaration.event is None and declaration.update is None and not _keeper_default(state):
        raise ConfigurationError(_no_action_message(cls.__name__))
    return state, cls.__name__


def _audited_property(
    entity: object, property: PropertyRef, call: str
) -> tuple[InstanceState[Any], str]:
    state, class_name = _audited_state(entity, call)
    mapper = state.mapper
    if isinstance(property, QueryableAttribute):
        key = property.key
        owner = property.class_
        if not (isinstance(owner, type) and issubclass(state.class_, owner)):
            raise ConfigurationError(
                f"{call}(): {owner.__name__}.{key} is not a property of {class_name}"
            )
    elif isinstance(property, str):
        key = property
    else:
        raise ConfigurationError(
            f"{call}(): the property must be a name or a mapped attribute, got {property!r}"
        )
    for prop in mapper.column_attrs:
        if key == prop.key or key in {getattr(c, "name", None) for c in prop.columns}:
            return state, prop.key
    known = sorted(p.key for p in mapper.column_attrs)
    raise ConfigurationError(
        f"{call}(): {class_name} has no property {key!r}; its properties are {known}"
    )


def _keeper_default(state: InstanceState[Any]) -> bool:
    """Whether an ``Auditkeeper`` on the class's metadata declares ``event_action``."""
    from .keeper import KEEPERS_INFO_KEY

    table = state.mapper.local_table
    metadata = getattr(table, "metadata", None)
    keepers = [] if metadata is None else metadata.info.get(KEEPERS_INFO_KEY, [])
    return any(keeper.event_action is not None for keeper in keepers)


def _no_action_message(class_name: str) -> str:
    return (
        f"{class_name} cannot record history events: it declares no event= action and "
        "no update= action, and its Auditkeeper no event_action=. Declare one, e.g. "
        "@audited(..., event=Action.USER_EVENT)"
    )
