"""``auditkeeper trail ENTITY ID``: a record's audit trail as a table.

The command needs the application's models: ``--app module:attribute`` names its
``Auditkeeper`` (imported from the current directory, like ``uvicorn app:app``), and
``ENTITY`` is an audited class's name. Without ``--app`` it reads the demo CRM's
database (``auditkeeper demo`` writes one), whose users are named by their full name.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, mapperlib

from ..capture.declaration import declaration_of
from ..capture.document import decode_key
from ..capture.keeper import Auditkeeper
from ..capture.plan import coerce
from ..errors import AuditkeeperError
from ..trail import SORT_FIELDS, TrailPage, trail
from ..trail.users import UserNames
from .context import DEFAULT_APP, CliError, app_option, database_option, load_app
from .demo import DEFAULT_DATABASE, open_database
from .render import make_console, one_line

__all__ = ["find_entity", "trail_command", "trail_table"]


@click.command("trail")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@app_option
@database_option
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
    app: str,
    database: str | None,
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
    keeper, owner = load_app(app)
    # The demo's users have full names; other applications pass a resolver in Python.
    user_names: UserNames | None = owner.User.full_name if app == DEFAULT_APP else None
    cls = find_entity(keeper, entity)
    engine = open_database(database or DEFAULT_DATABASE)
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
        raise CliError(one_line(error)) from None
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
    """``text`` as the class's primary key (an int for an integer key, a UUID...; a
    composite key's parts as the log writes them, a JSON array: ``'["a", 1]'``)."""
    columns: Any = inspect(cls).primary_key
    if len(columns) != 1:
        parts = decode_key(text, len(columns))
        if parts is None:
            raise click.BadParameter(
                f"{cls.__name__} has a key of {len(columns)} parts: give them as a JSON "
                f"array such as '[\"a\", 1]', not {text!r}",
                param_hint="ID",
            )
        return tuple(coerce(part, c.type) for part, c in zip(parts, columns, strict=True))
    value = coerce(text, columns[0].type)
    try:
        wants_int = columns[0].type.python_type is int
    except NotImplementedError:
        wants_int = False
    if wants_int and not isinstance(value, int):
        raise click.BadParameter(f"{text!r} is not an integer key", param_hint="ID")
    return value
