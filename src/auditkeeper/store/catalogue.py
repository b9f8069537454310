"""The catalogue of enum codes: once a code is used, it keeps its meaning forever."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ..errors import CatalogueConflictError, ConfigurationError
from ..model.tables import AuditTables

__all__ = ["compare_catalogue", "enum_members", "sync_catalogue"]


def enum_members(kind: str, enum: type[IntEnum]) -> dict[int, str]:
    """``{code: name}`` of an application enum, refusing aliases (two names, one code)."""
    members: dict[int, str] = {}
    for name, member in enum.__members__.items():
        if name != member.name:  # an alias: a second name for an existing code
            raise ConfigurationError(
                f"{kind} enum {enum.__name__} gives code {int(member)} two names, "
                f"{member.name!r} and {name!r}: each code needs exactly one name"
            )
        members[int(member)] = name
    return members


def compare_catalogue(
    connection: Connection,
    tables: AuditTables,
    enums: dict[str, type[IntEnum]],
) -> tuple[list[CatalogueConflictError], list[dict[str, object]]]:
    """The conflicts between the enums and the catalogue, and the codes it lacks.

    A conflict is a recorded code that now has another name, or a recorded name that now
    has another code (a renumbered member): either would make existing logs display as
    something they are not. Members removed from the enum are fine: their codes stay in
    the catalogue, so old logs still read correctly.
    """
    catalogue = tables.catalogue
    stored: dict[tuple[str, int], str] = {
        (row.kind, row.code): row.name
        for row in connection.execute(select(catalogue.c.kind, catalogue.c.code, catalogue.c.name))
    }
    conflicts: list[CatalogueConflictError] = []
    missing: list[dict[str, object]] = []
    now = dt.datetime.now(dt.UTC)
    for kind, enum in enums.items():
        members = enum_members(kind, enum)
        stored_codes = {name: code for (k, code), name in stored.items() if k == kind}
        for code, name in members.items():
            recorded = stored.get((kind, code))
            if recorded is not None and recorded != name:
                conflicts.append(CatalogueConflictError(kind, code, recorded, name))
            elif recorded is None:
                old_code = stored_codes.get(name)
                if old_code is not None:
                    conflicts.append(
                        CatalogueConflictError(
                            kind, old_code, name, members.get(old_code), moved_to=code
                        )
                    )
                else:
                    missing.append({"kind": kind, "code": code, "name": name, "first_seen": now})
    return conflicts, missing


def sync_catalogue(
    connection: Connection,
    tables: AuditTables,
    enums: dict[str, type[IntEnum]],
) -> int:
    """Check the application's enums against the catalogue (raising the first
    ``CatalogueConflictError``), record new codes, and return how many were added."""
    conflicts, missing = compare_catalogue(connection, tables, enums)
    if conflicts:
        raise conflicts[0]
    if missing:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(tables.catalogue).on_conflict_do_nothing(), missing)
    return len(missing)
