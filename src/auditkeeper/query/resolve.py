"""Turning what a user names (entity types, actions, record keys) into what the log stores.

Users say ``"LEAD"``, ``"lead"``, ``AuditLogEntityTypes.LEAD`` or ``2``; the log stores
``2``. A name or code the application's enum does not know is an error that lists the
known ones, never a silent empty result. Record keys are encoded exactly as the capture
layer encodes them (``capture.document.identify``), so a query finds what a flush wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeAlias

from ..capture.document import decode_key, encode_key, identify
from ..capture.history import EntityRegistry
from ..capture.plan import ClassPlan, coerce
from ..errors import InvalidFilterError

if TYPE_CHECKING:
    from ..capture.keeper import Auditkeeper

__all__ = [
    "CodeRef",
    "RecordIdentity",
    "column_name",
    "entity_plans",
    "resolve_code",
    "resolve_codes",
    "resolve_record",
]

CodeRef: TypeAlias = "IntEnum | int | str"
"""An action or entity type: an enum member, its integer code, or its name (any case)."""


@dataclass(frozen=True, slots=True)
class RecordIdentity:
    """One record as the log identifies it: exactly one of ``number_identifier`` and
    the entity keys is set. The keys differ only where the key holds an instant, which
    each database identifies its own way (``capture.document.identify``):
    ``entity_key`` as PostgreSQL does, ``sqlite_entity_key`` as SQLite does."""

    number_identifier: int | None
    entity_key: str | None
    sqlite_entity_key: str | None

    def entity_key_in(self, dialect: str) -> str | None:
        """The record's ``entity_key`` in a log stored by ``dialect``."""
        return self.sqlite_entity_key if dialect == "sqlite" else self.entity_key


def resolve_code(kind: str, enum: type[IntEnum], value: CodeRef) -> int:
    """The code of ``value`` in ``enum``; ``kind`` ("entity type", "action") names it in
    the error, which lists every known ``NAME (code)``."""
    if isinstance(value, IntEnum):
        if isinstance(value, enum):
            return int(value)
        raise InvalidFilterError(
            f"{kind} {value!r} is not a member of {enum.__name__}; {_known(enum)}"
        )
    if isinstance(value, bool):
        raise InvalidFilterError(f"{kind} must be a name or a code, got {value!r}")
    if isinstance(value, int):
        if value in enum._value2member_map_:
            return value
        raise InvalidFilterError(f"unknown {kind} code {value}; {_known(enum)}")
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.lstrip("-").isdigit():  # not "²", which int() refuses
            return resolve_code(kind, enum, int(text))
        by_name = {name.casefold(): int(member) for name, member in enum.__members__.items()}
        code = by_name.get(text.casefold())
        if code is not None:
            return code
        raise InvalidFilterError(f"unknown {kind} {value!r}; {_known(enum)}")
    raise InvalidFilterError(f"{kind} must be a name or a code, got {value!r}")


def resolve_codes(
    kind: str, enum: type[IntEnum], value: CodeRef | Iterable[CodeRef]
) -> tuple[int, ...]:
    """Codes of one value or several, sorted and without repeats."""
    items: Iterable[CodeRef] = [value] if isinstance(value, IntEnum | int | str) else value
    codes = sorted({resolve_code(kind, enum, item) for item in items})
    if not codes:
        raise InvalidFilterError(f"an empty list of {kind}s matches nothing; leave it out instead")
    return tuple(codes)


def entity_plans(keeper: Auditkeeper) -> dict[int, ClassPlan]:
    """The audited classes of ``keeper`` by entity-type code (the first one where several
    classes share a code: they share their keys' shape too)."""
    registry = EntityRegistry(keeper._recorder)
    plans: dict[int, ClassPlan] = {}
    for _, plan in registry.plans.values():
        plans.setdefault(plan.entity_type, plan)
    return plans


def resolve_record(plan: ClassPlan | None, value: Any) -> RecordIdentity:
    """Where the log keeps the key ``value`` of a record of ``plan``'s class.

    With the class known, the key is encoded as capture encodes it (an integer key given
    as the text ``"17"`` is 17; a composite key as a tuple, or as the JSON array text the
    log writes). Without it (an entity type no mapped class declares in
    this process), integers are ``number_identifier`` and anything else ``entity_key``.
    """
    if value is None or isinstance(value, bool):
        raise InvalidFilterError(f"a record key must be a value, got {value!r}")
    parts = list(value) if isinstance(value, tuple | list) else [value]
    if not parts:
        raise InvalidFilterError("a record key must not be empty")
    if plan is not None:
        if plan.integer_key:
            return RecordIdentity(_integer_key(plan.class_name, value), None, None)
        if isinstance(value, str) and len(plan.primary_key) > 1:
            parts = list(decode_key(value, len(plan.primary_key)) or parts)  # as the log writes it
        if len(parts) != len(plan.primary_key):
            raise InvalidFilterError(
                f"{plan.class_name} has a key of {len(plan.primary_key)} parts, got {value!r}: "
                'give a tuple, or the JSON array the log writes (["a", 1])'
                if len(plan.primary_key) > 1
                else f"{plan.class_name} has a key of 1 part, got {value!r}"
            )
        # As the column stores it: "1" for an integer part is 1, a UUID's text a UUID.
        parts = [
            coerce(part, pk.column.type) for part, pk in zip(parts, plan.primary_key, strict=True)
        ]
        _, key = identify(plan, parts, dialect="postgresql")
        _, sqlite_key = identify(plan, parts, dialect="sqlite")
        return RecordIdentity(None, key, sqlite_key)
    if len(parts) == 1 and isinstance(parts[0], int):
        return RecordIdentity(int(parts[0]), None, None)
    key = encode_key(parts)
    return RecordIdentity(None, key, key)


def column_name(plans: Iterable[ClassPlan | None], field: str) -> str:
    """The column name of ``field`` when it is an audited attribute of one of ``plans``'
    classes whose column is named differently; else ``field`` as given.

    An unknown name is not an error: old rows may hold columns the model has since
    renamed or dropped, and their history must stay searchable.
    """
    for plan in plans:
        if plan is None:
            continue
        for column in plan.columns:
            if field == column.name:
                return field
        for column in plan.columns:
            if field == column.key:
                return column.name
    return field


def _integer_key(class_name: str, value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidFilterError(
            f"{class_name} records have integer keys; {value!r} is not an integer"
        ) from None


def _known(enum: type[IntEnum]) -> str:
    members = ", ".join(f"{name} ({int(member)})" for name, member in enum.__members__.items())
    return f"{enum.__name__} has {members}"
