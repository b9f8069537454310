"""What every command that reads a log needs: the database (``--db``) and the
application's ``Auditkeeper`` (``--app``), and one-line errors for what was mistyped.

The ``Auditkeeper`` gives the names of the application's actions and entity types and
the shape of its records' keys; without ``--app`` the demo CRM's is used, so that
``auditkeeper logs --db auditkeeper-demo.sqlite3`` works right after ``auditkeeper demo``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..capture.keeper import Auditkeeper
from ..errors import AuditkeeperError
from .demo import database_url, open_database
from .render import one_line

__all__ = [
    "APP_ENV",
    "DB_ENV",
    "DEFAULT_APP",
    "CliError",
    "LogSource",
    "app_option",
    "database_option",
    "load_app",
    "open_log",
    "parse_moment",
    "parse_user_id",
    "reported",
]

DB_ENV = "AUDITKEEPER_DB"
APP_ENV = "AUDITKEEPER_APP"
DEFAULT_APP = "auditkeeper.demo.crm:build_crm"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """Something given on the command line is wrong: one line on stderr, exit code 2."""

    exit_code = 2


def database_option(function: F) -> F:
    """``--db URL_OR_PATH`` (or ``$AUDITKEEPER_DB``)."""
    return click.option(
        "--db",
        "database",
        envvar=DB_ENV,
        metavar="URL_OR_PATH",
        help=f"The database: a SQLite file path or a SQLAlchemy URL (default: ${DB_ENV}).",
    )(function)


def app_option(function: F) -> F:
    """``--app module:attribute`` (or ``$AUDITKEEPER_APP``)."""
    return click.option(
        "--app",
        envvar=APP_ENV,
        default=DEFAULT_APP,
        show_default=True,
        metavar="MODULE:ATTRIBUTE",
        help="The application's Auditkeeper: an Auditkeeper, an object with a .keeper, or "
        f"a function of no arguments returning one (default: ${APP_ENV}, else the demo CRM).",
    )(function)


@dataclass
class LogSource:
    """An open database and the ``Auditkeeper`` whose log it holds."""

    engine: Engine
    keeper: Auditkeeper
    owner: Any = None
    """What ``--app`` named (a CRM, a module...): kept alive with the keeper, because
    SQLAlchemy refers to mapped classes weakly and would forget the ones only it held."""

    @property
    def shown_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


@contextlib.contextmanager
def open_log(database: str | None, app: str) -> Iterator[LogSource]:
    """The log named by ``--db`` and ``--app``, checked before anything is printed: the
    file exists, the server answers, the audit table is there."""
    keeper, owner = load_app(app)
    if not database:
        raise CliError(
            f"no database given: pass --db URL_OR_PATH or set {DB_ENV} "
            "(after `auditkeeper demo`: --db auditkeeper-demo.sqlite3)"
        )
    _require_sqlite_file(database)
    engine = open_database(database)
    try:
        source = LogSource(engine, keeper, owner)
        table = keeper.table
        with reported():
            present = inspect(engine).has_table(table.name, schema=table.schema)
        if not present:
            raise CliError(
                f"{source.shown_url} has no {table.fullname} table: is it the right database "
                "(and --app the right application)?"
            )
        yield source
    finally:
        engine.dispose()


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn auditkeeper's and the database's errors into one-line command errors."""
    try:
        yield
    except AuditkeeperError as error:
        raise CliError(str(error)) from None
    except SQLAlchemyError as error:
        raise CliError(f"the database refused the query: {one_line(error)}") from None


def load_app(spec: str) -> tuple[Auditkeeper, Any]:
    """The ``Auditkeeper`` that ``module:attribute`` names (modules of the current folder
    can be named, as with ``python -m``), and what it was found on. Keep the second alive
    while the keeper is used: SQLAlchemy holds mapped classes weakly."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(f"--app {spec!r} must be MODULE:ATTRIBUTE, e.g. myapp.audit:keeper")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise CliError(f"--app {spec!r}: cannot import {module_name}: {error}") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise CliError(f"--app {spec!r}: {module_name} has no attribute {attribute!r}")
        found = getattr(found, part)
    if callable(found) and not isinstance(found, Auditkeeper):
        try:
            found = found()
        except Exception as error:
            raise CliError(f"--app {spec!r}: calling it failed: {one_line(error)}") from None
    keeper = getattr(found, "keeper", found)
    if not isinstance(keeper, Auditkeeper):
        raise CliError(
            f"--app {spec!r} is {type(found).__name__}, not an Auditkeeper (or an object "
            "with a .keeper, or a function returning one)"
        )
    return keeper, found


def parse_moment(option: str, value: str) -> dt.datetime:
    """An ISO-8601 date or time from the command line; without an offset it is UTC."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"{option}: {value!r} is not a date or time; use ISO-8601, e.g. 2026-03-01, "
            "2026-03-01T14:30 or 2026-03-01T14:30:00+02:00 (no offset means UTC)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def parse_user_id(option: str, value: str, keeper: Auditkeeper) -> Any:
    """A user id as the log's ``user_id`` column holds it (an integer, a UUID...)."""
    try:
        python_type = keeper.table.c.user_id.type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is int:
            return int(value)
        if python_type is uuid.UUID:
            return uuid.UUID(value)
    except ValueError:
        raise CliError(
            f"{option}: {value!r} is not a user id (user ids are {python_type.__name__}s here)"
        ) from None
    return value


def _require_sqlite_file(database: str) -> None:
    """Refuse a SQLite path that does not exist: opening it would create an empty file."""
    try:
        url = database_url(database)
    except (ArgumentError, ValueError):  # open_database reports it in its own words
        return
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    if path.startswith("file:") or Path(path).exists():
        return
    raise CliError(
        f"{path}: no such SQLite file; run `auditkeeper demo` to create one, or pass --db "
        "with the URL of your database"
    )
