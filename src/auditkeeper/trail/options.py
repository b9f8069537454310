"""The trail's view of the declarations: each class's columns and related-entity options,
resolved against the mappers and checked once (``ConfigurationError`` naming the class
and the property), then cached per audit log.
"""

from __future__ import annotations

import enum
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, inspect
from sqlalchemy.orm import Mapper, RelationshipDirection, mapperlib
from sqlalchemy.types import TypeEngine

from ..capture.declaration import (
    TRAIL_WORDS,
    Audited,
    ChildTrail,
    EventCreator,
    GenericChildTrail,
    ManyToManyTrail,
    ManyToOneTrail,
    PropertyChange,
    StopTrail,
    column_options,
    declaration_of,
)
from ..capture.keeper import KEEPERS_INFO_KEY, Auditkeeper
from ..capture.plan import ClassPlan, build_plan
from ..errors import ConfigurationError

__all__ = [
    "ChildSpec",
    "ClassSpec",
    "ColumnSpec",
    "GenericSpec",
    "ManyToManySpec",
    "ManyToOneSpec",
    "NameSpec",
    "RelatedSpec",
    "Specs",
    "friendly_name",
    "keeper_of",
    "specs_for",
]

NAME_FIELDS = ("display_name", "name", "full_name", "address", "full_address")
"""Columns that name a record when no ``name_field`` is declared (Shesha's list)."""

Creator = Callable[[PropertyChange], Any]


@dataclass(frozen=True, eq=False)
class NameSpec:
    """How to print a record of ``cls`` in another record's trail."""

    cls: type
    label: str
    primary_key: Column[Any] | None
    """None for a class with a composite key, whose records are shown by key."""
    name_column: Column[Any] | None
    name_key: str | None
    """The name column's name in the stored documents."""

    def key_column(self) -> Column[Any]:
        """The single-column key that relates a record of ``cls`` to another's trail."""
        if self.primary_key is None:
            raise ConfigurationError(
                f"{self.cls.__name__} has a composite primary key; a trail shows related "
                "records only with a single-column key (its own trail shows it by key)"
            )
        return self.primary_key


@dataclass(frozen=True, eq=False)
class ColumnSpec:
    """How the trail prints one audited column."""

    key: str
    name: str
    display: str
    position: int
    column: Column[Any]
    column_type: TypeEngine[Any]
    redacted: bool
    true_text: str | None
    false_text: str | None
    creator: Creator | None
    creator_label: str
    enum_class: type[enum.Enum] | None
    reference: NameSpec | None


@dataclass(frozen=True, eq=False)
class ClassSpec:
    """One audited class as the trail sees it."""

    cls: type
    mapper: Mapper[Any]
    plan: ClassPlan
    declaration: Audited
    label: str
    """The entity's display name."""
    columns: dict[str, ColumnSpec]
    """By column name (the keys of the stored documents)."""
    by_key: dict[str, ColumnSpec]
    names: NameSpec
    soft_delete: ColumnSpec | None
    stops: tuple[tuple[ColumnSpec, str], ...]
    references: dict[str, ColumnSpec]
    """The columns printed as a referenced record's name, by column name."""

    def column(self, name: str) -> ColumnSpec | None:
        """The column stored as ``name``, or None for a column no longer audited."""
        return self.columns.get(name)


@dataclass(frozen=True, eq=False)
class ChildSpec:
    """``ChildTrail``: the record a reference of the owner points at."""

    child: ClassSpec
    column: ColumnSpec
    """The owner's reference column."""
    display: str
    fields: frozenset[str] | None
    words: frozenset[str]


@dataclass(frozen=True, eq=False)
class GenericSpec:
    """``GenericChildTrail``: children naming their owner by id and type."""

    child: ClassSpec
    owner_id: ColumnSpec
    owner_type: ColumnSpec
    owner_types: frozenset[str]
    display: str
    name_key: str | None


@dataclass(frozen=True, eq=False)
class ManyToManySpec:
    """``ManyToManyTrail``: records related through a relation entity."""

    relation: ClassSpec
    own: ColumnSpec
    related: ColumnSpec
    target: NameSpec
    history: tuple[ClassSpec, ...]
    """The classes whose own rows show as the related record's history."""
    only_type: type | None
    """Show only related records of this class (``related_type``)."""
    display: str
    fields: frozenset[str] | None
    words: frozenset[str]


@dataclass(frozen=True, eq=False)
class ManyToOneSpec:
    """``ManyToOneTrail``: records whose reference points at the owner."""

    child: ClassSpec
    column: ColumnSpec
    display: str
    name_key: str | None
    fields: frozenset[str] | None
    words: frozenset[str]


RelatedSpec = ChildSpec | GenericSpec | ManyToManySpec | ManyToOneSpec


@dataclass(frozen=True, eq=False)
class Specs:
    """A class's spec and its related-entity options, in declaration order."""

    own: ClassSpec
    related: tuple[RelatedSpec, ...]


def keeper_of(cls: type) -> Auditkeeper:
    """The ``Auditkeeper`` built on the metadata of ``cls``'s table."""
    mapper = _mapper(cls)
    metadata = getattr(mapper.local_table, "metadata", None)
    keepers: list[Auditkeeper] = [] if metadata is None else metadata.info.get(KEEPERS_INFO_KEY, [])
    if len(keepers) == 1:
        return keepers[0]
    if not keepers:
        raise ConfigurationError(
            f"no Auditkeeper was built on the metadata of {cls.__name__}: pass keeper="
        )
    raise ConfigurationError(
        f"several Auditkeepers were built on the metadata of {cls.__name__}: pass keeper="
    )


def specs_for(keeper: Auditkeeper, cls: type) -> Specs:
    """The (cached) trail options of ``cls``; ConfigurationError when they are wrong."""
    cache = _cache(keeper)
    found = cache.specs.get(cls)
    if found is None:
        found = Specs(own=cache.class_spec(cls), related=_related(cache, cls))
        with cache.lock:
            cache.specs[cls] = found
    return found


def friendly_name(name: str) -> str:
    """``ShaRoleAppointedPerson`` -> ``Sha Role Appointed Person``; ``submitted_by`` ->
    ``Submitted by``."""
    if "_" in name or name.islower():
        words = [w for w in name.split("_") if w]
        text = " ".join(words)
        return text[:1].upper() + text[1:]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)


def enum_label(member: enum.Enum) -> str:
    """An enum member's label: its ``label`` attribute when it has one, else its name
    in words (``DELETED_BY_PARENT`` -> ``Deleted By Parent``)."""
    label = getattr(member, "label", None)
    if isinstance(label, str):
        return label
    name = member.name
    if name.isupper() or "_" in name:
        return " ".join(word.capitalize() for word in name.split("_") if word)
    return friendly_name(name)


# -- the per-keeper cache -------------------------------------------------------------


class _Cache:
    def __init__(self, keeper: Auditkeeper) -> None:
        self.keeper = keeper
        self.lock = threading.Lock()
        self.classes: dict[type, ClassSpec] = {}
        self.specs: dict[type, Specs] = {}
        self.names: dict[type, NameSpec] = {}

    def class_spec(self, cls: type) -> ClassSpec:
        found = self.classes.get(cls)
        if found is None:
            found = _class_spec(self, cls)
            with self.lock:
                self.classes[cls] = found
        return found

    def name_spec(self, cls: type, name_field: str | None = None) -> NameSpec:
        if name_field is not None:
            return _name_spec(cls, name_field)
        found = self.names.get(cls)
        if found is None:
            declaration = declaration_of(cls)
            found = _name_spec(cls, None if declaration is None else declaration.name_field)
            with self.lock:
                self.names[cls] = found
        return found


_CACHES: weakref.WeakKeyDictionary[Auditkeeper, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(keeper: Auditkeeper) -> _Cache:
    with _CACHES_LOCK:
        found = _CACHES.get(keeper)
        if found is None:
            found = _CACHES[keeper] = _Cache(keeper)
        return found


# -- one class ----------------------------------------------------------------------------


def _mapper(cls: type) -> Mapper[Any]:
    try:
        mapper: Mapper[Any] = inspect(cls)
    except Exception:
        raise ConfigurationError(f"{cls!r} is not a mapped class") from None
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(f"{cls!r} is not a mapped class")
    return mapper


def _class_spec(cache: _Cache, cls: type) -> ClassSpec:
    mapper = _mapper(cls)
    declaration = declaration_of(cls)
    plan = build_plan(mapper, actions=cache.keeper.actions, entity_types=cache.keeper.entity_types)
    if declaration is None or plan is None:
        raise ConfigurationError(
            f"{cls.__name__} is not audited: declare it with @auditkeeper.audited to show "
            "its audit trail"
        )
    columns: dict[str, ColumnSpec] = {}
    for position, audited in enumerate(plan.columns):
        columns[audited.name] = _column_spec(cache, cls, mapper, audited, position)
    by_key = {c.key: c for c in columns.values()}

    def find(name: str, option: str) -> ColumnSpec:
        found = by_key.get(name) or columns.get(name)
        if found is None:
            raise ConfigurationError(
                f"{option} on {cls.__name__} names {name!r}, which is not an audited property "
                f"of {cls.__name__}; its audited properties are {sorted(by_key)}"
            )
        return found

    soft_delete = (
        None if declaration.soft_delete is None else find(declaration.soft_delete, "soft_delete=")
    )
    stops = tuple(
        (find(option.property, f"StopTrail({option.property!r})"), option.value)
        for option in declaration.trail
        if isinstance(option, StopTrail)
    )
    return ClassSpec(
        cls=cls,
        mapper=mapper,
        plan=plan,
        declaration=declaration,
        label=declaration.display_name or friendly_name(cls.__name__),
        columns=columns,
        by_key=by_key,
        names=cache.name_spec(cls),
        soft_delete=soft_delete,
        stops=stops,
        references={
            c.name: c for c in columns.values() if c.reference is not None and not c.redacted
        },
    )


def _column_spec(
    cache: _Cache, cls: type, mapper: Mapper[Any], audited: Any, position: int
) -> ColumnSpec:
    column: Column[Any] = audited.column
    options = column_options(column.info)
    where = f"{cls.__name__}.{audited.key}"
    if options.true_text is not None and not isinstance(column.type, Boolean):
        raise ConfigurationError(
            f"audit_column(true_text=..., false_text=...) on {where} needs a Boolean column, "
            f"not {column.type!r}"
        )
    creator, creator_label = _creator(options.event_creator, where)
    return ColumnSpec(
        key=audited.key,
        name=audited.name,
        display=options.display or audited.key,
        position=position,
        column=column,
        column_type=column.type,
        redacted=audited.redact,
        true_text=options.true_text,
        false_text=options.false_text,
        creator=creator,
        creator_label=creator_label,
        enum_class=_enum_class(column.type),
        reference=_reference(cache, mapper, column),
    )


def _creator(given: Any, where: str) -> tuple[Creator | None, str]:
    if given is None:
        return None, ""
    if isinstance(given, type):
        label = given.__name__
        try:
            instance = given()
        except Exception as error:
            raise ConfigurationError(
                f"the event creator {label} of {where} cannot be created without arguments: "
                f"{error!r}"
            ) from error
        if not isinstance(instance, EventCreator):  # pragma: no cover - audit_column checks
            raise ConfigurationError(f"the event creator {label} of {where} is no EventCreator")
        return instance.create_event, label
    label = getattr(given, "__qualname__", None) or type(given).__name__
    if isinstance(given, EventCreator):
        return given.create_event, type(given).__name__
    return given, str(label)


def _enum_class(type_: TypeEngine[Any]) -> type[enum.Enum] | None:
    found = getattr(type_, "enum_class", None)
    if isinstance(found, type) and issubclass(found, enum.Enum):
        return found
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return None
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return python_type
    return None


def _reference(cache: _Cache, mapper: Mapper[Any], column: Column[Any]) -> NameSpec | None:
    """The class a single-column foreign key points at, when it is mapped."""
    keys = list(column.foreign_keys)
    if len(keys) != 1:
        return None
    target_table = keys[0].column.table
    for candidate in _mappers(mapper):
        if candidate.local_table is target_table and candidate.inherits is None:
            return cache.name_spec(candidate.class_)
    return None


def _name_spec(cls: type, name_field: str | None) -> NameSpec:
    mapper = _mapper(cls)
    primary = [c for c in mapper.primary_key if isinstance(c, Column)]
    declaration = declaration_of(cls)
    label = (declaration.display_name if declaration else None) or friendly_name(cls.__name__)
    if len(primary) != 1:  # its own trail has its rows; no reference can name one record
        return NameSpec(cls, label, None, None, None)
    attrs = {prop.key: prop for prop in mapper.column_attrs}
    if name_field is not None:
        prop = attrs.get(name_field) or next(
            (p for p in attrs.values() if getattr(p.columns[0], "name", None) == name_field), None
        )
        if prop is None:
            raise ConfigurationError(
                f"name field {name_field!r} is not a property of {cls.__name__}; its "
                f"properties are {sorted(attrs)}"
            )
    else:
        lowered = {key.lower().replace("_", ""): p for key, p in attrs.items()}
        prop = next(
            (lowered[n.replace("_", "")] for n in NAME_FIELDS if n.replace("_", "") in lowered),
            None,
        )
    if prop is None:
        return NameSpec(cls, label, primary[0], None, None)
    name_column = prop.columns[0]
    if not isinstance(name_column, Column):
        raise ConfigurationError(f"name field {prop.key!r} of {cls.__name__} is not a column")
    return NameSpec(cls, label, primary[0], name_column, str(name_column.name))


def _mappers(mapper: Mapper[Any]) -> list[Mapper[Any]]:
    """Every mapper of ``mapper``'s registry, then of the others."""
    own = list(mapper.registry.mappers)
    others = [
        m
        for registry in mapperlib._all_registries()
        if registry is not mapper.registry
        for m in registry.mappers
    ]
    return own + others


def resolve_class(owner: type, given: type | str, option: str) -> type:
    """A class given as a class or by name (class name or ``module.QualName``), looked
    up in the owner's registry first, like ``relationship("Name")``."""
    if isinstance(given, type):
        _mapper(given)
        return given
    owner_mapper = _mapper(owner)
    own = list(owner_mapper.registry.mappers)
    others = [m for m in _mappers(owner_mapper) if m.registry is not owner_mapper.registry]
    for mappers in (own, others):
        matches = {
            m.class_
            for m in mappers
            if given in (m.class_.__name__, f"{m.class_.__module__}.{m.class_.__qualname__}")
        }
        if len(matches) == 1:
            return matches.pop()
        if matches:
            raise ConfigurationError(
                f"{option} on {owner.__name__}: several mapped classes are named {given!r}; "
                "pass the class"
            )
    raise ConfigurationError(f"{option} on {owner.__name__}: no mapped class is named {given!r}")


# -- related options ----------------------------------------------------------------------


def _related(cache: _Cache, cls: type) -> tuple[RelatedSpec, ...]:
    own = cache.class_spec(cls)
    result: list[RelatedSpec] = []
    for option in own.declaration.trail:
        if isinstance(option, ChildTrail):
            result.append(_child(cache, own, option))
        elif isinstance(option, GenericChildTrail):
            result.append(_generic(cache, own, option))
        elif isinstance(option, ManyToManyTrail):
            result.append(_many_to_many(cache, own, option))
        elif isinstance(option, ManyToOneTrail):
            result.append(_many_to_one(cache, own, option))
    return tuple(result)


def _fields(
    target: ClassSpec,
    fields: tuple[str, ...] | None,
    option: str,
    default_words: frozenset[str],
    always: frozenset[str] = frozenset(),
) -> tuple[frozenset[str] | None, frozenset[str]]:
    """``audited_fields`` split into column names and row words, each checked."""
    if fields is None:
        return None, default_words
    names: set[str] = set()
    words: set[str] = set(always)
    for item in fields:
        if item in TRAIL_WORDS:
            words.add(item)
            continue
        column = target.by_key.get(item) or target.columns.get(item)
        if column is None:
            raise ConfigurationError(
                f"{option}: audited_fields names {item!r}, which is neither an audited "
                f"property of {target.cls.__name__} ({sorted(target.by_key)}) nor one of "
                f"{sorted(TRAIL_WORDS)}"
            )
        names.add(column.name)
    return frozenset(names), frozenset(words)


def _child(cache: _Cache, own: ClassSpec, option: ChildTrail) -> ChildSpec:
    where = f"ChildTrail({option.relationship!r}) on {own.cls.__name__}"
    relationship = own.mapper.relationships.get(option.relationship)
    if relationship is None:
        raise ConfigurationError(
            f"{where}: {own.cls.__name__} has no relationship {option.relationship!r}; its "
            f"relationships are {sorted(own.mapper.relationships.keys())}"
        )
    if relationship.direction is not RelationshipDirection.MANYTOONE:
        raise ConfigurationError(
            f"{where}: the relationship must be a reference to one record (many-to-one), "
            f"not {relationship.direction.name.lower()}"
        )
    local = list(relationship.local_columns)
    column = own.columns.get(str(local[0].name)) if len(local) == 1 else None
    if column is None:
        raise ConfigurationError(
            f"{where}: its column must be a single audited column of {own.cls.__name__}"
        )
    child = cache.class_spec(relationship.mapper.class_)
    fields, words = _fields(child, option.audited_fields, where, TRAIL_WORDS)
    display = option.display_name or friendly_name(option.relationship)
    return ChildSpec(child, column, display, fields, words)


def _generic(cache: _Cache, own: ClassSpec, option: GenericChildTrail) -> GenericSpec:
    cls = resolve_class(own.cls, option.entity, "GenericChildTrail")
    where = f"GenericChildTrail({cls.__name__}) on {own.cls.__name__}"
    child = cache.class_spec(cls)

    def column(name: str, label: str) -> ColumnSpec:
        found = child.by_key.get(name) or child.columns.get(name)
        if found is None:
            raise ConfigurationError(
                f"{where}: {label}={name!r} is not an audited property of {cls.__name__}; its "
                f"audited properties are {sorted(child.by_key)}"
            )
        return found

    owner_id = column(option.owner_id_field, "owner_id_field")
    owner_type = column(option.owner_type_field, "owner_type_field")
    names = cache.name_spec(cls, option.name_field)
    names.key_column()
    if option.owner_type is not None:
        owner_types = frozenset({option.owner_type})
    else:
        owner_types = frozenset(
            {
                own.plan.full_name,
                own.cls.__name__,
                str(getattr(own.mapper.local_table, "name", own.cls.__name__)),
            }
        )
    return GenericSpec(
        child=child,
        owner_id=owner_id,
        owner_type=owner_type,
        owner_types=owner_types,
        display=option.display_name or child.label,
        name_key=_stored_name(child, names, where),
    )


def _stored_name(child: ClassSpec, names: NameSpec, where: str) -> str | None:
    """The document key of the child's name, which must be an audited column."""
    if names.name_key is None:
        return None
    if names.name_key not in child.columns:
        raise ConfigurationError(
            f"{where}: the name field {names.name_key!r} of {child.cls.__name__} must be an "
            "audited column: the trail reads names from the log"
        )
    return names.name_key


def _reference_fields(relation: ClassSpec, target: type) -> list[ColumnSpec]:
    """The relation's audited columns that reference ``target`` (or one of its bases)."""
    found = []
    for column in relation.columns.values():
        reference = column.reference
        if reference is not None and issubclass(target, reference.cls):
            found.append(column)
    return found


def _field(relation: ClassSpec, name: str, where: str, label: str) -> ColumnSpec:
    """A relation's reference named by its relationship or its column."""
    relationship = relation.mapper.relationships.get(name)
    if relationship is not None:
        local = list(relationship.local_columns)
        if len(local) == 1:
            found = relation.columns.get(str(local[0].name))
            if found is not None:
                return found
    found = relation.by_key.get(name) or relation.columns.get(name)
    if found is None or found.reference is None:
        raise ConfigurationError(
            f"{where}: {label}={name!r} is not an audited reference of "
            f"{relation.cls.__name__} (a relationship to one record, or its column)"
        )
    return found


def _auto_field(
    relation: ClassSpec, owner: type, where: str, label: str, other: ColumnSpec | None = None
) -> ColumnSpec:
    """The one field of ``relation`` that references ``owner`` (besides ``other``)."""
    candidates = [c for c in _reference_fields(relation, owner) if c is not other]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConfigurationError(
            f"{where}: no audited field of {relation.cls.__name__} references "
            f"{owner.__name__}; name it with {label}="
        )
    raise ConfigurationError(
        f"{where}: {len(candidates)} fields of {relation.cls.__name__} reference "
        f"{owner.__name__} ({', '.join(c.key for c in candidates)}); name one with {label}="
    )


def _many_to_many(cache: _Cache, own: ClassSpec, option: ManyToManyTrail) -> ManyToManySpec:
    cls = resolve_class(own.cls, option.relation, "ManyToManyTrail")
    where = f"ManyToManyTrail({cls.__name__}, {option.related_field!r}) on {own.cls.__name__}"
    relation = cache.class_spec(cls)
    related = _field(relation, option.related_field, where, "related_field")
    own_field = (
        _field(relation, option.own_field, where, "own_field")
        if option.own_field is not None
        else _auto_field(relation, own.cls, where, "own_field", other=related)
    )
    if own_field is related:
        raise ConfigurationError(f"{where}: own_field and related_field are the same field")
    reference = related.reference
    if reference is None:  # pragma: no cover - _field checks it
        raise ConfigurationError(f"{where}: related_field is not a reference")
    base = reference.cls
    target = cache.name_spec(base, option.name_field)
    target.key_column()
    only_type = None
    if option.related_type is not None:
        only_type = resolve_class(own.cls, option.related_type, f"{where}: related_type")
        if not issubclass(only_type, base):
            raise ConfigurationError(
                f"{where}: related_type={only_type.__name__} is not a {base.__name__}"
            )
    if option.any_related_type and only_type is not None:
        raise ConfigurationError(f"{where}: give related_type= or any_related_type=True, not both")
    history_root = only_type or base
    history_classes = (
        [m.class_ for m in _mapper(history_root).self_and_descendants]
        if option.any_related_type or only_type is not None
        else [history_root]
    )
    history = tuple(cache.class_spec(c) for c in history_classes if declaration_of(c) is not None)
    fields: frozenset[str] | None = None
    words: frozenset[str] = frozenset()
    if option.audited_fields is not None:
        if not history:
            raise ConfigurationError(
                f"{where}: audited_fields needs {history_root.__name__} to be audited"
            )
        fields, words = _fields(
            history[0], option.audited_fields, where, frozenset(), frozenset({"Updated"})
        )
    return ManyToManySpec(
        relation=relation,
        own=own_field,
        related=related,
        target=target,
        history=history if option.audited_fields is not None else (),
        only_type=only_type,
        display=option.display_name or friendly_name(cls.__name__),
        fields=fields,
        words=words,
    )


def _many_to_one(cache: _Cache, own: ClassSpec, option: ManyToOneTrail) -> ManyToOneSpec:
    cls = resolve_class(own.cls, option.entity, "ManyToOneTrail")
    where = f"ManyToOneTrail({cls.__name__}) on {own.cls.__name__}"
    child = cache.class_spec(cls)
    column = (
        _field(child, option.related_field, where, "related_field")
        if option.related_field is not None
        else _auto_field(child, own.cls, where, "related_field")
    )
    updated = frozenset({"Updated"})
    fields, words = _fields(child, option.audited_fields, where, updated, updated)
    names = cache.name_spec(cls, option.name_field)
    names.key_column()
    return ManyToOneSpec(
        child=child,
        column=column,
        display=option.display_name or child.label,
        name_key=_stored_name(child, names, where),
        fields=fields,
        words=words,
    )
