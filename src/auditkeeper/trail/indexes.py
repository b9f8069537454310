"""Expression indexes for the trail's "related before" lookups, and those lookups' SQL.

A record that used to be related (a comment moved to another owner, a deleted
appointment) is found by the value its row's ``previous`` document held, e.g.
``changed_objects -> 'previous' ->> 'owner_id'`` among the rows of one entity type.
Without an index that reads every row of the type; ``create_trail_indexes(keeper,
engine)`` adds one small partial expression index per related option (PostgreSQL and
SQLite), which the lookup's SQL matches exactly: keys and entity type are literals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, func, literal_column, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import mapperlib

from ..capture.declaration import declaration_of
from ..capture.keeper import Auditkeeper
from ..errors import ConfigurationError
from .options import GenericSpec, ManyToManySpec, ManyToOneSpec, specs_for

__all__ = [
    "Lookup",
    "create_trail_indexes",
    "lookup_expression",
    "lookups",
    "trail_index_statements",
]

SECTIONS = ("previous", "difference")
"""Where a former value is stored: the full ``previous`` document (rows of the ORM),
or the old side of ``difference`` (rows written by SQL)."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """One ``(entity type, column)`` whose former values the trail looks up."""

    entity_type: int
    column: str


def lookup_expression(table: Table, dialect: str, section: str, column: str) -> ColumnElement[Any]:
    """``changed_objects.<section>.<column>`` (the old side for ``difference``), written
    as the index's expression."""
    document = table.c.changed_objects
    key: ColumnElement[Any] = literal_column(_sql_string(column))
    if dialect == "postgresql":
        inner = document.op("->", return_type=JSONB)(literal_column(_sql_string(section)))
        if section == "difference":
            inner = inner.op("->", return_type=JSONB)(key)
            return inner.op("->>", return_type=Text)(literal_column("0"))
        return inner.op("->>", return_type=Text)(key)
    return func.json_extract(document, literal_column(_sql_string(_sqlite_path(section, column))))


def lookups(keeper: Auditkeeper) -> list[Lookup]:
    """The lookups of every related option declared on ``keeper``'s audited classes."""
    found: set[Lookup] = set()
    metadata = keeper.table.metadata
    for registry in mapperlib._all_registries():
        for mapper in registry.mappers:
            table = mapper.local_table
            if getattr(table, "metadata", None) is not metadata:
                continue
            declaration = declaration_of(mapper.class_)
            if declaration is None or not declaration.trail:
                continue
            for option in specs_for(keeper, mapper.class_).related:
                if isinstance(option, GenericSpec):
                    found.add(Lookup(option.child.plan.entity_type, option.owner_id.name))
                elif isinstance(option, ManyToManySpec):
                    found.add(Lookup(option.relation.plan.entity_type, option.own.name))
                elif isinstance(option, ManyToOneSpec):
                    found.add(Lookup(option.child.plan.entity_type, option.column.name))
    return sorted(found, key=lambda lookup: (lookup.entity_type, lookup.column))


def trail_index_statements(keeper: Auditkeeper, dialect: str) -> list[str]:
    """``CREATE INDEX IF NOT EXISTS`` statements for ``keeper``'s related options, for a
    migration (``op.execute``) on ``postgresql`` or ``sqlite``."""
    if dialect not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f"trail indexes exist for 'postgresql' and 'sqlite', not {dialect!r}"
        )
    log = keeper.table
    qualified = f'"{log.schema}"."{log.name}"' if log.schema else f'"{log.name}"'
    statements = []
    for lookup in lookups(keeper):
        for section in SECTIONS:
            name = _index_name(log.name, lookup, section)
            expression = _ddl_expression(dialect, section, lookup.column)
            statements.append(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON {qualified} ({expression}) '
                f"WHERE entity_type = {int(lookup.entity_type)}"
            )
    return statements


def create_trail_indexes(keeper: Auditkeeper, bind: Engine | Connection) -> list[str]:
    """Create the indexes of ``trail_index_statements`` if missing; return them."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return create_trail_indexes(keeper, connection)
    statements = trail_index_statements(keeper, bind.dialect.name)
    for statement in statements:
        bind.execute(text(statement))
    return statements


def _ddl_expression(dialect: str, section: str, column: str) -> str:
    key = _sql_string(column)
    if dialect == "postgresql":
        if section == "difference":
            return f"(((changed_objects -> 'difference') -> {key}) ->> 0)"
        return f"((changed_objects -> 'previous') ->> {key})"
    return f"json_extract(changed_objects, {_sql_string(_sqlite_path(section, column))})"


def _sqlite_path(section: str, column: str) -> str:
    quoted = column.replace('"', '""')
    return f'$."{section}"."{quoted}"' + ("[0]" if section == "difference" else "")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _index_name(table: str, lookup: Lookup, section: str) -> str:
    digest = hashlib.sha1(lookup.column.encode("utf-8")).hexdigest()[:8]
    return f"ix_{table}_trail_{lookup.entity_type}_{section[:4]}_{digest}"
