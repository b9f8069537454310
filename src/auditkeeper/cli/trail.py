"""``auditkeeper trail ENTITY ID``: a record's audit trail as a table.

The command needs the application's models: ``--app module:attribute`` names its
``Auditkeeper`` (imported from the current directory, like ``uvicorn app:app``), and
``ENTITY`` is an audited class's name. Without ``--app`` it reads the demo CRM's
database (``auditkeeper demo`` writes one), whose users are named by their full name.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, mapperlib

from ..capture.declaration import declaration_of
from ..capture.keeper import Auditkeeper
from ..capture.plan import coerce
from ..errors import AuditkeeperError
from ..trail import SORT_FIELDS, TrailPage, trail
from ..trail.users import UserNames
from .demo import DEFAULT_DATABASE, open_database
from .render import make_console, one_line

__all__ = ["find_entity", "load_keeper", "trail_command", "trail_table"]


@click.command("trail")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.option(
    "--app",
    metavar="MODULE:ATTRIBUTE",
    help="The application's Auditkeeper, e.g. myapp.audit:keeper (default: the demo CRM).",
)
@click.option(
    "--db",
    "database",
    default=DEFAULT_DATABASE,
    show_default=True,
    metavar="URL_OR_PATH",
    help="A SQLite file path, or a SQLAlchemy URL such as postgresql+psycopg://user@host/db.",
)
@click.option("--search", help="Only rows whose texts contain this (any case).")
@click.option(
    "--sort",
    default="-date",
    show_default=True,
    help=f"One of {', '.join(SORT_FIELDS)}; prefix - for descending.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option(
    "--related/--no-related", default=True, show_default=True, help="Include related records."
)
def trail_command(
    entity: str,
    record_id: str,
    app: str | None,
    database: str,
    search: str | None,
    sort: str,
    limit: int | None,
    related: bool,
) -> None:
    """Print the audit trail of one record: Type of event, Description, User, Date.

    ENTITY is the audited class's name (or its full name) and ID the record's key.
    Examples: `auditkeeper trail Lead 1` (the demo's database), `auditkeeper trail User 42
    --app myapp.audit:keeper --db postgresql+psycopg://localhost/myapp`.
    """
    user_names: UserNames | None = None
    if app is None:
        from ..demo.crm import build_crm

        crm = build_crm()
        keeper = crm.keeper
        user_names = crm.User.full_name
    else:
        keeper = load_keeper(app)
    cls = find_entity(keeper, entity)
    engine = open_database(database)
    try:
        with Session(engine) as session:
            page = trail(
                session,
                cls,
                _key(cls, record_id),
                keeper=keeper,
                user_names=user_names,
                related=related,
                search=search,
                sort=sort,
                limit=limit,
            )
    except (AuditkeeperError, SQLAlchemyError) as error:
        raise click.ClickException(one_line(error)) from None
    finally:
        engine.dispose()
    console = make_console()
    console.print(trail_table(page, title=f"{cls.__name__} {record_id}"))
    shown = f"{len(page)} of {page.total} rows" if len(page) < page.total else f"{page.total} rows"
    console.print(Text(shown))


def trail_table(page: TrailPage, *, title: str) -> Table:
    """The trail as a Rich table; texts are shown as they are (never as markup)."""
    table = Table(title=title, show_lines=True, expand=True)
    table.add_column("Type of event", overflow="fold", ratio=2)
    table.add_column("Description", overflow="fold", ratio=5)
    table.add_column("User", overflow="fold", ratio=2)
    table.add_column("Date (UTC)", no_wrap=True)
    for row in page:
        table.add_row(
            Text(row.event),
            Text(row.description),
            Text(row.user),
            row.date.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def load_keeper(spec: str) -> Auditkeeper:
    """The ``Auditkeeper`` named by ``module:attribute`` (the attribute may be dotted)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"{spec!r} is not module:attribute", param_hint="--app")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {one_line(error)}", param_hint="--app"
        ) from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise click.BadParameter(f"{module_name} has no {attribute!r}", param_hint="--app")
        found = getattr(found, part)
    if not isinstance(found, Auditkeeper):
        raise click.BadParameter(
            f"{spec} is {type(found).__name__}, not an auditkeeper.Auditkeeper",
            param_hint="--app",
        )
    return found


def find_entity(keeper: Auditkeeper, name: str) -> type:
    """The audited class of ``keeper``'s metadata called ``name`` (or its full name)."""
    metadata = keeper.table.metadata
    classes = []
    for registry in mapperlib._all_registries():
        for mapper in registry.mappers:
            table = getattr(mapper.local_table, "metadata", None)
            if table is metadata and declaration_of(mapper.class_) is not None:
                classes.append(mapper.class_)
    found = [
        c
        for c in classes
        if name in (c.__name__, f"{c.__module__}.{c.__qualname__}", _full_name(c))
    ]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted({c.__name__ for c in classes})) or "none"
    problem = "several audited classes are" if found else "no audited class is"
    raise click.BadParameter(f"{problem} named {name!r}; audited: {known}", param_hint="ENTITY")


def _full_name(cls: type) -> str | None:
    declaration = declaration_of(cls)
    return None if declaration is None else declaration.full_name


def _key(cls: type, text: str) -> Any:
    """``text`` as the class's primary key (an int for an integer key, a UUID...)."""
    columns: Any = inspect(cls).primary_key
    if len(columns) != 1:
        raise click.BadParameter(
            f"{cls.__name__} has a composite key; the command takes single keys", param_hint="ID"
        )
    value = coerce(text, columns[0].type)
    try:
        wants_int = columns[0].type.python_type is int
    except NotImplementedError:
        wants_int = False
    if wants_int and not isinstance(value, int):
        raise click.BadParameter(f"{text!r} is not an integer key", param_hint="ID")
    return value
