"""Writing audit rows: one batched statement per flush, on the flush's own connection."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnElement, TextClause
from sqlalchemy.types import TypeDecorator

from ..errors import StoreError
from ..model import values

__all__ = ["OWN_STATEMENT", "PARAMETER_PREFIX", "driver_insert", "write_rows"]

OWN_STATEMENT = "auditkeeper_own"
"""Execution option on auditkeeper's own writes to the log, which connection hooks (the
capture triggers' actor and flush marks) leave alone."""


PARAMETER_PREFIX = "auditkeeper_"
"""How the names of the log INSERT's parameters start (``driver_insert``)."""


def write_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    computed: Mapping[str, ColumnElement[Any]] | None = None,
    settings: Mapping[str, str] | None = None,
) -> None:
    """Insert ``rows`` in the connection's current transaction with a single statement.

    ``computed`` gives columns whose value the database computes for every row (a SQL
    expression, such as the current transaction's id). ``settings`` are PostgreSQL
    transaction-local settings that the same statement sets (ignored elsewhere), so
    that the database's own writers later in the transaction (the capture triggers)
    read what the rows say, at no extra round trip.

    On PostgreSQL the rows travel as one JSON parameter that ``jsonb_to_recordset``
    unpacks: one execution on the server instead of one per row, which measured about a
    quarter less time per audit row than psycopg's pipelined executemany (bench/README.md).
    Elsewhere an executemany (which, as SQLAlchemy's, wants the same keys in every row).
    Failure raises ``StoreError``; the caller's flush then rolls back, so no change goes
    unaudited.
    """
    if not rows:
        return
    computed = dict(computed or {})
    try:
        names = tuple(rows[0])
        keys = set(names)
        if connection.dialect.name == "postgresql" and all(r.keys() == keys for r in rows):
            _insert_as_json(connection, table, names, rows, computed, settings or {})
            return
        statement = table.insert().execution_options(**{OWN_STATEMENT: True})
        if computed:
            statement = statement.values(computed)
        connection.execute(statement, list(rows))
    except DBAPIError as error:
        raise StoreError(
            f"could not write {len(rows)} audit row(s) to {table.fullname}, so the change was "
            f"not saved either: {error.orig}. Is the audit table installed "
            f"(Auditkeeper.create_all) and writable?"
        ) from error


def _insert_as_json(
    connection: Connection,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    computed: Mapping[str, ColumnElement[Any]],
    settings: Mapping[str, str],
) -> None:
    statement, parameters = _json_insert(connection.dialect, table, names, rows, computed, settings)
    connection.execute(statement, parameters)


def driver_insert(
    dialect: Dialect,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    computed: Mapping[str, ColumnElement[Any]] | None = None,
    settings: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: ``write_rows``'s statement (rows with the same keys) as the driver
    receives it, and its parameters, for a caller that sends it inside another
    statement of the application's (capture/carried.py). Its parameters' names all
    start with ``PARAMETER_PREFIX``."""
    statement, parameters = _json_insert(
        dialect, table, tuple(rows[0]), rows, computed or {}, settings or {}
    )
    return _driver_sql(statement, dialect), parameters


def _json_insert(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    computed: Mapping[str, ColumnElement[Any]],
    settings: Mapping[str, str],
) -> tuple[TextClause, dict[str, Any]]:
    computed_sql = tuple((name, _sql(expression, dialect)) for name, expression in computed.items())
    statement, encoders = _recordset_insert(table, names, computed_sql, len(settings), dialect)
    batch = [
        {name: encode(row[name]) for name, encode in zip(names, encoders, strict=True)}
        for row in rows
    ]
    encoded = values.dumps(batch)
    if "\\u0000" in encoded:
        _refuse_nul(table, rows)
    parameters = {f"{PARAMETER_PREFIX}rows": encoded}
    for number, (name, value) in enumerate(settings.items()):
        parameters[f"{PARAMETER_PREFIX}setting_{number}"] = name
        parameters[f"{PARAMETER_PREFIX}value_{number}"] = value
    return statement, parameters


def _refuse_nul(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL's ``jsonb`` and ``text`` cannot hold the character U+0000 (its
    ``json``, and so the application's JSON columns, can): name the field that holds
    one, rather than leave the database's "unsupported Unicode escape sequence". (The
    escape found may also be a backslash and ``u0000`` in a text: then nothing is
    refused.)"""
    for row in rows:
        for name, value in row.items():
            path = _nul_path(value)
            if path is not None:
                record = row.get("number_identifier") or row.get("entity_key")
                raise StoreError(
                    f"cannot write the audit row of entity type {row.get('entity_type')}, "
                    f"record {record}, to {table.fullname}: {name}{path} holds the character "
                    "U+0000, which PostgreSQL cannot store in jsonb or text; the change was not "
                    "saved either. Exclude the column from the log, or keep U+0000 out of its "
                    "values"
                )


def _nul_path(value: Any) -> str | None:
    """Where in ``value`` (a JSON document) a text holds U+0000, as ``["key"][0]``."""
    if isinstance(value, str):
        return "" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = "" if "\x00" in str(key) else _nul_path(item)
            if found is not None:
                return f"[{values.dumps(str(key))}]{found}"
    elif isinstance(value, list | tuple):
        for number, item in enumerate(value):
            found = _nul_path(item)
            if found is not None:
                return f"[{number}]{found}"
    return None


@functools.lru_cache(maxsize=64)
def _sql(expression: ColumnElement[Any], dialect: Dialect) -> str:
    """An expression's SQL, compiled once per expression object (the caller keeps it)."""
    return str(expression.compile(dialect=dialect))


@functools.lru_cache(maxsize=64)
def _driver_sql(statement: TextClause, dialect: Dialect) -> str:
    return statement.compile(dialect=dialect).string


@functools.lru_cache(maxsize=64)
def _recordset_insert(
    table: Table,
    names: tuple[str, ...],
    computed: tuple[tuple[str, str], ...],
    settings: int,
    dialect: Dialect,
) -> tuple[TextClause, tuple[Callable[[Any], Any], ...]]:
    """The statement for rows with these columns (and ``settings`` settings to set), and
    each column's encoder."""
    quote = dialect.identifier_preparer.quote
    columns = [quote(name) for name in names] + [quote(name) for name, _ in computed]
    selected = [f"r.{quote(name)}" for name in names] + [sql for _, sql in computed]
    spec = ", ".join(f"{quote(n)} {table.c[n].type.compile(dialect=dialect)}" for n in names)
    target = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(columns)})"

    def escaped(sql: str) -> str:  # a colon in a name would read as a parameter
        return sql.replace(":", "\\:")

    rows = f"CAST(:{PARAMETER_PREFIX}rows AS jsonb)"
    source = f"jsonb_to_recordset({rows}) AS r({escaped(spec)})"
    if settings:
        # Set once, before the rows are read: the row source depends on the settings'
        # row (LATERAL), so the planner cannot run set_config once per audit row.
        prefix = PARAMETER_PREFIX
        calls = ", ".join(
            f"set_config(:{prefix}setting_{n}, :{prefix}value_{n}, true) AS s{n}"
            for n in range(settings)
        )
        source = (
            f"(SELECT {calls}) AS settings, LATERAL jsonb_to_recordset("
            f"CASE WHEN settings.s0 IS NULL THEN NULL ELSE {rows} END) AS r({escaped(spec)})"
        )
    statement = text(
        f"INSERT INTO {escaped(target)} SELECT {escaped(', '.join(selected))} FROM {source}"
    ).execution_options(**{OWN_STATEMENT: True})
    return statement, tuple(_encoder(table.c[name].type, dialect) for name in names)


def _encoder(type_: Any, dialect: Dialect) -> Callable[[Any], Any]:
    """A column value as the JSON batch carries it: the column type's own bind processing
    (UTC timestamps, refusing naive ones), except for JSON columns, whose documents are
    embedded as they are (already-encoded text as it is)."""
    stored = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if isinstance(stored, JSON):
        return _embedded_json
    process: Callable[[Any], Any] | None = type_._cached_bind_processor(dialect)
    return _unchanged if process is None else process


def _unchanged(value: Any) -> Any:
    return value


def _embedded_json(value: Any) -> Any:
    return orjson.Fragment(value) if isinstance(value, str) else value
