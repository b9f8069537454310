"""``auditkeeper demo``: the seed document's CRM scenario, end to end, on a real database.

It shows in one run what the library promises: every audited change writes a row in
the same transaction, the row names its user (or the system), impersonation and reason,
a deleted user's rows keep her e-mail, and nobody can edit the log afterwards.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..demo.crm import Crm, build_crm
from ..errors import ConfigurationError
from ..store.engine import configure_sqlite
from .query_render import entries_table
from .render import make_console, one_line
from .scenario import Scenario
from .tamper import MALLORY, count_forged_rows, try_to_edit_the_log

__all__ = [
    "DEFAULT_DATABASE",
    "DatabaseError",
    "database_url",
    "demo",
    "open_database",
    "prepare_tables",
    "run_demo",
]

DEFAULT_DATABASE = "auditkeeper-demo.sqlite3"
VIEWER_URL = "http://127.0.0.1:8000/"
"""Where ``auditkeeper serve`` listens by default: the page the demo's last hint names."""


class DatabaseError(click.ClickException):
    """The database cannot be reached or set up: a one-line message and exit code 2,
    since this is a problem with what was given, not a failure of the demo."""

    exit_code = 2


@click.command()
@click.option(
    "--db",
    "database",
    default=DEFAULT_DATABASE,
    show_default=True,
    metavar="URL_OR_PATH",
    help="A SQLite file path, or a SQLAlchemy URL such as postgresql+psycopg://user@host/db.",
)
@click.option(
    "--reset/--keep",
    default=True,
    show_default=True,
    help="Drop and recreate the demo's tables (users, businesses, leads, comments, "
    "audit_log, audit_log_catalogue) first, or keep them and add another run to the log.",
)
def demo(database: str, reset: bool) -> None:
    """Play the seed's CRM scenario and print the audit log it wrote.

    Alice, Bob and Carol create, edit, assign and delete businesses, leads and comments;
    Bob impersonates Carol; a nightly job acts as the system; Carol's account is deleted.
    The demo then prints every audit row, shows that attempts to edit the log are
    refused, and says how to look at the database yourself.
    """
    engine = open_database(database)
    try:
        run_demo(engine, make_console(), reset=reset)
    finally:
        engine.dispose()


def database_url(value: str) -> URL:
    """A URL as given; a plain path is a SQLite file (made absolute for the hints)."""
    if "://" in value:
        return make_url(value)
    return URL.create("sqlite", database=str(Path(value).expanduser().absolute()))


def open_database(value: str) -> Engine:
    """An engine on ``value`` that has connected once, so a wrong URL, a missing driver
    or an unreachable server is reported before anything is printed."""
    try:
        url = database_url(value)
    except (ArgumentError, ValueError) as error:
        raise DatabaseError(f"{value!r} is not a database URL or path: {one_line(error)}") from None
    try:
        engine = configure_sqlite(create_engine(url))
        with engine.connect():
            pass
    except (SQLAlchemyError, ImportError) as error:
        shown = url.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot open {shown}: {one_line(error)}") from None
    return engine


def run_demo(engine: Engine, console: Console, *, reset: bool = True) -> Crm:
    """Play the scenario on ``engine``, print its log, the refused edits and the next
    steps; return the CRM so that callers can read what was written."""
    crm = build_crm()
    console.print(Text(f"auditkeeper demo on {engine.url.render_as_string(hide_password=True)}"))
    prepare_tables(crm, engine, reset=reset)
    earlier_rows = _last_id(crm, engine)
    sessions = sessionmaker(engine)
    installation = crm.keeper.install(sessions)
    try:
        _play(Scenario(crm, sessions), console)
    finally:
        installation.uninstall()
    _show_log(crm, engine, console, after_id=earlier_rows)
    _show_refusals(crm, engine, console)
    _show_next_steps(crm, engine.url, console)
    return crm


def prepare_tables(crm: Crm, engine: Engine, *, reset: bool) -> None:
    """Create the demo's tables, dropping them first on ``reset``.

    The audit table refuses ``DELETE`` and ``TRUNCATE``, but ``DROP TABLE`` is allowed
    (on SQLite it drops the triggers before it empties the table), so a reset needs no
    special path and never deletes a file that might hold something else.
    """
    try:
        if reset:
            crm.Base.metadata.drop_all(engine)
        crm.Base.metadata.create_all(engine)
        crm.keeper.create_all(engine)
    except (SQLAlchemyError, ConfigurationError) as error:
        shown = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(
            f"cannot set up the demo's tables in {shown}: {one_line(error)}"
        ) from None


def _last_id(crm: Crm, engine: Engine) -> int:
    """The newest log row's id before this run (0 on a fresh log)."""
    with engine.connect() as connection:
        return connection.scalar(select(func.max(crm.keeper.table.c.id))) or 0


def _play(scenario: Scenario, console: Console) -> None:
    _heading(console, "The scenario")
    for number, (story, step) in enumerate(scenario.steps(), start=1):
        console.print(Text(f"{number:>3}. {story}"))
        step()


def _show_log(crm: Crm, engine: Engine, console: Console, *, after_id: int) -> None:
    log = crm.keeper.table
    with Session(engine) as session:
        entries = list(
            session.scalars(select(crm.keeper.Entry).where(log.c.id > after_id).order_by(log.c.id))
        )
    _heading(console, f"The audit log: {len(entries)} rows written by this run")
    if after_id:
        console.print(Text(f"(rows up to id {after_id} are from earlier runs, kept by --keep)"))
    console.print(entries_table(entries, crm.keeper, ascii_only=console.options.ascii_only))


def _show_refusals(crm: Crm, engine: Engine, console: Console) -> None:
    _heading(console, "Logs are read-only: every attempt to edit one is refused")
    table = Table(show_lines=True, expand=True)
    table.add_column("attempt", overflow="fold", ratio=1)
    table.add_column("refused with", overflow="fold", ratio=1)
    for refusal in try_to_edit_the_log(crm, engine):
        table.add_row(Text(refusal.attempt), Text(refusal.error))
    console.print(table)
    console.print(Text(f"Rows naming {MALLORY} afterwards: {count_forged_rows(crm, engine)}"))


def _show_next_steps(crm: Crm, url: URL, console: Console) -> None:
    table_name = crm.keeper.table.name
    query = f'"select * from {table_name}"'
    if url.get_backend_name() == "sqlite":
        where = f"The log is in the SQLite file {url.database}:"
        command = f"sqlite3 {shlex.quote(url.database or ':memory:')} {query}"
        database = str(url.database)
    else:
        psql_url = url.set(drivername="postgresql").render_as_string(hide_password=True)
        where = f"The log is in {psql_url}:"
        command = f"psql {shlex.quote(psql_url)} -c {query}"
        database = url.render_as_string(hide_password=True)  # with its driver, for serve
    _heading(console, "Explore further")
    for line in (
        where,
        f"    {command}",
        "Run `auditkeeper demo --keep` to add another run to the same log, or "
        "`auditkeeper demo` for a fresh one.",
        "docs/demo.md in the auditkeeper repository walks through this scenario; the other "
        "pages in docs/ explain capture, the actor, values, immutability and the catalogue.",
        "Browse it in the viewer: start it with",
        f"    auditkeeper serve --db {shlex.quote(database)}",
        f"and open {VIEWER_URL} in a browser (its JSON API is under {VIEWER_URL}api/).",
        *_where_the_command_is(),
    ):
        console.print(Text(line))


def _where_the_command_is() -> list[str]:
    """A line for a shell where ``auditkeeper`` is not on PATH (``./scripts/demo`` runs
    it from a virtual environment the user has not activated)."""
    if shutil.which("auditkeeper"):
        return []
    installed = Path(sys.executable).parent / "auditkeeper"
    if not installed.exists():
        return []
    try:
        shown = installed.relative_to(Path.cwd())
    except ValueError:
        shown = installed
    folder = shlex.quote(str(shown.parent))
    return [
        f"(`auditkeeper` is in {folder}: run `source {folder}/activate` first, or call "
        f"{shlex.quote(str(shown))} instead.)"
    ]


def _heading(console: Console, title: str) -> None:
    console.print()
    console.rule(Text(title, style="bold"))
