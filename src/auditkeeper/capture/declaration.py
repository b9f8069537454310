"""Declaring what is audited, next to the model: a class decorator and column options.

::

    @audited(
        entity_type=EntityType.LEAD,
        create=Action.LEAD_CREATE,
        update=Action.LEAD_UPDATE,
        delete=Action.LEAD_DELETE,
        on_change=[on_change("business_id", action=Action.LEAD_ASSIGN_TO_BUSINESS)],
    )
    class Lead(Base): ...

A verb left as None is not audited (the seed audits comment update and delete, not
create). Per column, ``info=audit_column(...)`` excludes or redacts it, and sets how the
audit trail shows it (a display name, boolean texts, an event creator).

The audit trail's class-level options (children, generic children, many-to-many and
many-to-one relations, the value that ends the trail) are plain data here too:
``@audited(trail=[ChildTrail("submitted_by", display_name="Parent"), ...])``. The trail
layer reads and validates them; this module only holds them, so that capture never
depends on the trail.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple, TypeAlias, TypeVar

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_SECRET_WORDS",
    "REDACTED",
    "TRAIL_WORDS",
    "Audited",
    "ChildTrail",
    "ColumnOptions",
    "DomainAction",
    "EventCreator",
    "EventCreatorLike",
    "GenericChildTrail",
    "HistoryEventInfo",
    "ManyToManyTrail",
    "ManyToOneTrail",
    "PropertyChange",
    "StopTrail",
    "TrailOption",
    "audit_column",
    "audited",
    "declaration_of",
    "is_secret_name",
    "on_change",
]

T = TypeVar("T", bound=type)

INFO_KEY = "auditkeeper"

REDACTED = "[redacted]"
"""What the log stores instead of a redacted column's value."""

DEFAULT_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "otp",
        "totp",
        "hotp",
        "apikey",
        "salt",
        "pin",
        "cvv",
        "cvc",
        "credential",
        "credentials",
        "mfa",
        "privatekey",
    }
)
"""Words that mark a column as secret when they appear in its name (split at ``_`` and
case changes; ``api_key`` and ``private_key`` are matched as pairs). Boolean columns are
never secret: ``otp_enabled`` is audited."""

_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")})
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def is_secret_name(name: str, words: frozenset[str] = DEFAULT_SECRET_WORDS) -> bool:
    """Whether a column name matches the deny-list of secret words."""
    parts = [part.lower() for part in _WORDS.findall(name)]
    if any(part in words for part in parts):
        return True
    return any(pair in _PAIRS for pair in itertools.pairwise(parts))


@dataclass(frozen=True, slots=True)
class DomainAction:
    """A named action chosen when any of ``fields`` changed (e.g. assign lead to business)."""

    action: IntEnum
    fields: frozenset[str]


def on_change(*fields: str, action: IntEnum) -> DomainAction:
    """Record ``action`` instead of the update action when any of ``fields`` changed."""
    if not fields:
        raise ConfigurationError(f"on_change(action={action!r}) needs at least one field name")
    return DomainAction(action=action, fields=frozenset(fields))


class HistoryEventInfo(NamedTuple):
    """An event for the audit trail: its Type of event (``name``) and Description."""

    name: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class PropertyChange:
    """One property's change, as an event creator receives it (the seed's
    ``EntityChangesInfo<T>``). Values are Python values: enum columns give members."""

    entity_class: type
    property: str
    """The mapped attribute's name."""
    old_value: Any
    new_value: Any
    entity_id: Any


class EventCreator:
    """Shows a property's change as its own event in the audit trail (the seed's
    ``EntityHistoryEventCreatorBase<T>``)::

        class StatusEventCreator(auditkeeper.EventCreator):
            def create_event(self, change):
                return self.event("Status changed", change.new_value.name)

        status = mapped_column(info=audit_column(event_creator=StatusEventCreator))

    A plain callable ``(change) -> (name, description)`` works as well. The creator runs
    when the trail is rendered, so it applies to old rows and to rows written by SQL.
    """

    def create_event(self, change: PropertyChange) -> HistoryEventInfo | tuple[str | None, str]:
        """The event name and description for ``change``."""
        raise NotImplementedError(f"{type(self).__name__} must override create_event(change)")

    @staticmethod
    def event(name: str | None, description: str | None) -> HistoryEventInfo:
        """Build the result of ``create_event`` (the seed's ``CreateEvent(name, text)``)."""
        return HistoryEventInfo(name, description)

    def __call__(self, change: PropertyChange) -> HistoryEventInfo | tuple[str | None, str]:
        return self.create_event(change)


EventCreatorLike: TypeAlias = (
    type[EventCreator] | EventCreator | Callable[[PropertyChange], tuple[str | None, str | None]]
)
"""What ``audit_column(event_creator=...)`` takes: an ``EventCreator`` subclass (created
without arguments), an instance, or a function of the change."""


@dataclass(frozen=True, slots=True)
class ColumnOptions:
    """Audit options of one column, kept in the column's ``info``."""

    exclude: bool = False
    """Leave the column out of the log entirely; its changes alone write no row."""
    redact: bool | None = None
    """Store ``REDACTED`` instead of the value (None: decided by the secret deny-list)."""
    display: str | None = None
    """The name the audit trail shows for the column."""
    true_text: str | None = None
    """The trail's text when a boolean column changes to true (instead of the default)."""
    false_text: str | None = None
    """The trail's text when a boolean column changes to false or null."""
    event_creator: Any = None
    """An ``EventCreatorLike``: the trail shows this column's changes as its own events."""


def audit_column(
    *,
    exclude: bool = False,
    redact: bool | None = None,
    display: str | None = None,
    true_text: str | None = None,
    false_text: str | None = None,
    event_creator: EventCreatorLike | None = None,
) -> dict[str, Any]:
    """Column ``info`` with audit options: ``mapped_column(info=audit_column(exclude=True))``.

    ``display`` names the column in the audit trail; ``true_text`` / ``false_text``
    replace the trail's text for a boolean column's changes (give both); an
    ``event_creator`` shows its changes as separate events.
    """
    if (true_text is None) != (false_text is None):
        raise ConfigurationError(
            f"audit_column(true_text={true_text!r}, false_text={false_text!r}) needs both "
            "texts: the trail shows one or the other"
        )
    for label, text in (("display", display), ("true_text", true_text), ("false_text", false_text)):
        if text is not None and not isinstance(text, str):
            raise ConfigurationError(f"audit_column({label}=...) must be a str, got {text!r}")
    if event_creator is not None:
        _check_event_creator(event_creator)
        if true_text is not None:
            raise ConfigurationError(
                "audit_column() takes either true_text/false_text or event_creator, not both: "
                "a change is shown as one or the other"
            )
    return {
        INFO_KEY: ColumnOptions(
            exclude=exclude,
            redact=redact,
            display=display,
            true_text=true_text,
            false_text=false_text,
            event_creator=event_creator,
        )
    }


def _check_event_creator(creator: Any) -> None:
    if isinstance(creator, type):
        if not issubclass(creator, EventCreator):
            raise ConfigurationError(
                f"event_creator={creator.__name__} must subclass auditkeeper.EventCreator "
                "(or be an instance of one, or a function of the change)"
            )
        if creator.create_event is EventCreator.create_event:
            raise ConfigurationError(
                f"event_creator={creator.__name__} does not override create_event(change)"
            )
    elif not callable(creator):
        raise ConfigurationError(
            f"event_creator must be an EventCreator class or instance, or a function of the "
            f"change, got {creator!r}"
        )


TRAIL_WORDS = frozenset({"Created", "Updated", "Deleted"})
"""The row words ``audited_fields`` may list besides field names."""


def _fields(owner: str, fields: Iterable[str] | None) -> tuple[str, ...] | None:
    if fields is None:
        return None
    if isinstance(fields, str):
        raise ConfigurationError(
            f"{owner}: audited_fields must be a list of names, got the string {fields!r}"
        )
    result = tuple(fields)
    for name in result:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{owner}: audited_fields holds {name!r}, not a name")
    return result


@dataclass(frozen=True, slots=True)
class ChildTrail:
    """Show the history of the record that a reference of this entity points at (the
    seed's ``[DisplayChildAuditTrail]``): rows read ``{display_name} added`` /
    ``updated`` / ``removed``. ``audited_fields`` limits them to these fields and to the
    listed words among ``Created``, ``Updated``, ``Deleted``."""

    relationship: str
    display_name: str | None = None
    audited_fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "audited_fields", _fields(repr(self), self.audited_fields))


@dataclass(frozen=True, slots=True)
class GenericChildTrail:
    """Show ``"{display_name}" added`` / ``deleted`` rows for generic children that name
    their owner by id and type (notes, comments, attachments; the seed's
    ``[DisplayGenericEntitesAuditTrail]``). ``owner_type`` is the value the children
    store for this owner; by default the owner's full name, class name or table name."""

    entity: type | str
    owner_id_field: str = "owner_id"
    owner_type_field: str = "owner_type"
    display_name: str | None = None
    name_field: str | None = None
    owner_type: str | None = None


@dataclass(frozen=True, slots=True)
class ManyToManyTrail:
    """Show ``"{display_name}" added`` / ``removed`` rows for the records related through a
    relation entity (the seed's ``[DisplayManyToManyAuditTrail]``). ``own_field`` is found
    when exactly one field of the relation references this entity; ``related_type``
    shows only related records of that class, ``any_related_type`` those of any class."""

    relation: type | str
    related_field: str
    display_name: str | None = None
    own_field: str | None = None
    related_type: type | str | None = None
    any_related_type: bool = False
    name_field: str | None = None
    audited_fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "audited_fields", _fields(repr(self), self.audited_fields))


@dataclass(frozen=True, slots=True)
class ManyToOneTrail:
    """Show ``"{display_name}" added`` / ``removed`` rows for the records whose reference
    points at this entity, and their later updates as ``{name} updated`` (the seed's
    ``[DisplayManyToOneAuditTrail]``). ``related_field`` is found when exactly one field
    references this entity."""

    entity: type | str
    related_field: str | None = None
    display_name: str | None = None
    name_field: str | None = None
    audited_fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "audited_fields", _fields(repr(self), self.audited_fields))


@dataclass(frozen=True, slots=True)
class StopTrail:
    """The trail ends at the change of ``property`` to ``value`` (the seed's
    ``[PropertyChangeToStopAuditTrail]``): later rows are not shown, that one is. The
    value is compared with the text the trail prints (an enum's label) and the stored
    value."""

    property: str
    value: str


TrailOption: TypeAlias = (
    ChildTrail | GenericChildTrail | ManyToManyTrail | ManyToOneTrail | StopTrail
)


@dataclass(frozen=True, slots=True)
class Audited:
    """What auditkeeper records for one mapped class; set by ``@audited`` or as
    ``__audited__ = Audited(...)`` in the class body."""

    entity_type: IntEnum
    create: IntEnum | None = None
    update: IntEnum | None = None
    delete: IntEnum | None = None
    on_change: tuple[DomainAction, ...] = ()
    exclude: frozenset[str] = field(default_factory=frozenset)
    redact: frozenset[str] = field(default_factory=frozenset)
    display_name: str | None = None
    full_name: str | None = None
    """The name SQL procedures use for this entity type (the seed's
    ``EntityTypeFullName``); by default ``module.QualifiedName`` of the class."""
    event: IntEnum | None = None
    """The action of this class's custom history events (``add_history_event``); by
    default the ``Auditkeeper``'s ``event_action``, else the update action."""
    name_field: str | None = None
    """The column that names a record in other records' trails (references, relations)."""
    soft_delete: str | None = None
    """A column whose change to a true or non-null value is a deletion in the trail."""
    trail: tuple[TrailOption, ...] = ()
    """The audit trail's related entities and end (``ChildTrail``, ``StopTrail``, ...)."""

    def __post_init__(self) -> None:
        if not isinstance(self.entity_type, IntEnum):
            raise ConfigurationError(
                f"entity_type must be a member of the application's IntEnum, "
                f"got {self.entity_type!r}"
            )
        for verb in ("create", "update", "delete"):
            value = getattr(self, verb)
            if value is not None and not isinstance(value, IntEnum):
                raise ConfigurationError(
                    f"{verb} must be a member of the application's actions IntEnum or None, "
                    f"got {value!r}"
                )
        if (
            self.create is None
            and self.update is None
            and self.delete is None
            and not self.on_change
        ):
            raise ConfigurationError(
                f"audited entity type {self.entity_type!r} declares no action: give at least "
                "one of create=, update=, delete= or on_change="
            )
        object.__setattr__(self, "on_change", tuple(self.on_change))
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        object.__setattr__(self, "redact", frozenset(self.redact))
        self._check_trail_options()

    def _check_trail_options(self) -> None:
        if self.event is not None and not isinstance(self.event, IntEnum):
            raise ConfigurationError(
                f"event must be a member of the application's actions IntEnum or None, "
                f"got {self.event!r}"
            )
        trail = tuple(self.trail)
        for option in trail:
            if not isinstance(option, _TRAIL_OPTION_TYPES):
                raise ConfigurationError(
                    f"trail= of entity type {self.entity_type!r} holds {option!r}; expected "
                    "ChildTrail, GenericChildTrail, ManyToManyTrail, ManyToOneTrail or StopTrail"
                )
        object.__setattr__(self, "trail", trail)


def audited(
    *,
    entity_type: IntEnum,
    create: IntEnum | None = None,
    update: IntEnum | None = None,
    delete: IntEnum | None = None,
    on_change: Iterable[DomainAction] = (),
    exclude: Iterable[str] = (),
    redact: Iterable[str] = (),
    display_name: str | None = None,
    full_name: str | None = None,
    event: IntEnum | None = None,
    name_field: str | None = None,
    soft_delete: str | None = None,
    trail: Iterable[TrailOption] = (),
) -> Callable[[T], T]:
    """Class decorator: audit this mapped class (and its subclasses) with these actions."""
    declaration = Audited(
        entity_type=entity_type,
        create=create,
        update=update,
        delete=delete,
        on_change=tuple(on_change),
        exclude=frozenset(exclude),
        redact=frozenset(redact),
        display_name=display_name,
        full_name=full_name,
        event=event,
        name_field=name_field,
        soft_delete=soft_delete,
        trail=tuple(trail),
    )

    def decorate(cls: T) -> T:
        setattr(cls, "__audited__", declaration)  # noqa: B010 - T is any class
        return cls

    return decorate


def declaration_of(cls: type) -> Audited | None:
    """The declaration that applies to ``cls`` (its own or inherited), or None."""
    declaration = getattr(cls, "__audited__", None)
    if declaration is None:
        return None
    if not isinstance(declaration, Audited):
        raise ConfigurationError(
            f"{cls.__name__}.__audited__ must be an auditkeeper.Audited, got {declaration!r}"
        )
    return declaration


def column_options(info: dict[str, Any]) -> ColumnOptions:
    """The options stored in a column's ``info`` (defaults when there are none)."""
    options = info.get(INFO_KEY)
    if options is None:
        return _DEFAULT_OPTIONS
    if not isinstance(options, ColumnOptions):
        raise ConfigurationError(
            f"column info[{INFO_KEY!r}] must come from auditkeeper.audit_column(), got {options!r}"
        )
    return options


_DEFAULT_OPTIONS = ColumnOptions()
_TRAIL_OPTION_TYPES = (ChildTrail, GenericChildTrail, ManyToManyTrail, ManyToOneTrail, StopTrail)
