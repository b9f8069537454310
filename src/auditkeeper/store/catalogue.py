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

__all__ = ["enum_members", "sync_catalogue"]


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


def sync_catalogue(
    connection: Connection,
    tables: AuditTables,
    enums: dict[str, type[IntEnum]],
) -> int:
    """Check the application's enums against the catalogue, record new codes, and return
    how many were added.

    Raises ``CatalogueConflictError`` when a recorded code now has another name, or a recorded
    name now has another code (a renumbered member): either would make existing logs
    display as something they are not. Members removed from the enum are fine: their
    codes stay in the catalogue, so old logs still read correctly.
    """
    catalogue = tables.catalogue
    stored: dict[tuple[str, int], str] = {
        (row.kind, row.code): row.name
        for row in connection.execute(select(catalogue.c.kind, catalogue.c.code, catalogue.c.name))
    }
    new_rows = []
    now = dt.datetime.now(dt.UTC)
    for kind, enum in enums.items():
        members = enum_members(kind, enum)
        stored_codes = {name: code for (k, code), name in stored.items() if k == kind}
        for code, name in members.items():
            recorded = stored.get((kind, code))
            if recorded is not None and recorded != name:
                raise CatalogueConflictError(kind, code, recorded, name)
            if recorded is None:
                old_code = stored_codes.get(name)
                if old_code is not None:
                    raise CatalogueConflictError(
                        kind, old_code, name, members.get(old_code), moved_to=code
                    )
                new_rows.append({"kind": kind, "code": code, "name": name, "first_seen": now})
    if new_rows:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(catalogue).on_conflict_do_nothing(), new_rows)
    return len(new_rows)
