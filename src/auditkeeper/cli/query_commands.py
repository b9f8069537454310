"""``auditkeeper logs``, ``show``, ``as-of`` and ``export``: the query layer from a shell.

Each command opens the log named by ``--db`` / ``--app`` (``context.py``), and turns
every mistake (a wrong URL, an unknown entity type, a malformed date or cursor) into one
line on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..query import EXPORT_FORMATS, ExportFormat, as_of, export_log, read_page
from ..query.pagination import MAX_PAGE_SIZE
from .context import CliError, app_option, database_option, open_log, parse_moment, reported
from .query_options import build_filter, filter_options
from .query_render import entries_table, entry_record, entry_view, state_record, state_view
from .render import make_console

__all__ = ["as_of_command", "export_command", "logs_command", "show_command"]

_SUFFIX_FORMATS: dict[str, ExportFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _json_out(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@click.command("logs")
@database_option
@app_option
@filter_options
@click.option(
    "--oldest-first/--newest-first", default=False, help="Order of the rows (newest first)."
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=50,
    show_default=True,
    help="Rows per page.",
)
@click.option("--cursor", metavar="CURSOR", help="Show the page after the one that printed it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def logs_command(
    database: str | None,
    app: str,
    oldest_first: bool,
    limit: int,
    cursor: str | None,
    as_json: bool,
    **filters: Any,
) -> None:
    """Print a page of audit rows, newest first, filtered by the options.

    Examples: `auditkeeper logs --db auditkeeper-demo.sqlite3 -e LEAD -r 1` (one record),
    `--email carol@example.com --since 2026-03-01 --until 2026-04-01` (what she did in
    March), `--field status --changed-to won` (who won leads).
    """
    with open_log(database, app) as source:
        keeper = source.keeper
        log_filter = build_filter(keeper, filters, newest_first=not oldest_first)
        with reported(), Session(source.engine) as session:
            page = read_page(session, keeper, log_filter, limit=limit, cursor=cursor)
    if as_json:
        _json_out(
            {
                "entries": [entry_record(entry, keeper) for entry in page],
                "next_cursor": page.next_cursor,
            }
        )
        return
    console = make_console()
    if not page.entries:
        console.print(Text("No audit rows match."))
        return
    console.print(entries_table(page, keeper, ascii_only=console.options.ascii_only))
    order = "oldest" if oldest_first else "newest"
    console.print(Text(f"{len(page)} rows, {order} first."))
    if page.next_cursor is not None:
        # Not through Rich: a cursor must stay on one line to be copied.
        click.echo(f"More rows: repeat the command with --cursor {page.next_cursor}")


@click.command("show")
@click.argument("entry_id", metavar="ID", type=int)
@database_option
@app_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def show_command(entry_id: int, database: str | None, app: str, as_json: bool) -> None:
    """Print one audit row: who, when, and each field's previous and current value."""
    with open_log(database, app) as source:
        keeper = source.keeper
        with reported(), Session(source.engine) as session:
            entry = session.scalars(
                select(keeper.Entry).where(keeper.table.c.id == entry_id)
            ).one_or_none()
        if entry is None:
            raise CliError(f"no audit row has id {entry_id} in {source.shown_url}")
    if as_json:
        _json_out(entry_record(entry, keeper))
        return
    make_console().print(entry_view(entry, keeper))


@click.command("as-of")
@click.argument("entity_type", metavar="ENTITY_TYPE")
@click.argument("record", metavar="KEY")
@database_option
@app_option
@click.option("--at", "at", metavar="WHEN", help="An ISO-8601 date or time (UTC if bare).")
@click.option("--transaction", metavar="UUID", help="Just after this transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def as_of_command(
    entity_type: str,
    record: str,
    database: str | None,
    app: str,
    at: str | None,
    transaction: str | None,
    as_json: bool,
) -> None:
    """Print a record as it was at a moment (--at), just after a transaction
    (--transaction), or now: not yet created, its fields, or deleted.

    Example: `auditkeeper as-of LEAD 1 --at 2026-03-01T12:00 --db auditkeeper-demo.sqlite3`.
    """
    moment = None if at is None else parse_moment("--at", at)
    if moment is not None and transaction is not None:
        raise CliError("give --at or --transaction, not both")
    with open_log(database, app) as source:
        keeper = source.keeper
        with reported(), Session(source.engine) as session:
            state = as_of(
                session, keeper, entity_type, record, at=moment, transaction_id=transaction
            )
    if as_json:
        _json_out(state_record(state, entity_type, record))
        return
    when = (
        f"as of {moment.isoformat()}"
        if moment is not None
        else f"just after transaction {transaction}"
        if transaction is not None
        else "now"
    )
    make_console().print(state_view(state, keeper, f"{entity_type} {record} {when}"))


@click.command("export")
@database_option
@app_option
@filter_options
@click.option(
    "--format",
    "format_name",
    metavar="|".join(EXPORT_FORMATS),
    help="The file format (default: from the --output suffix, else jsonl).",
)
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    metavar="PATH",
    help="The file to write; - writes to stdout.",
)
@click.option(
    "--oldest-first/--newest-first", default=True, help="Order of the rows (oldest first)."
)
def export_command(
    database: str | None,
    app: str,
    format_name: str | None,
    output: str,
    oldest_first: bool,
    **filters: Any,
) -> None:
    """Write the matching audit rows to JSON Lines or CSV, streaming (constant memory),
    with a progress bar on a terminal.

    Example: `auditkeeper export --db auditkeeper-demo.sqlite3 -o march.csv --since
    2026-03-01 --until 2026-04-01`. A file is written under a temporary name and renamed
    when complete, so an interrupted export leaves no partial file.
    """
    export_format = _format(format_name, output)
    with open_log(database, app) as source:
        keeper = source.keeper
        log_filter = build_filter(keeper, filters, newest_first=not oldest_first)
        with (
            _destination(output) as out,
            _progress() as on_progress,
            reported(),
            source.engine.connect() as connection,
        ):
            count = export_log(
                connection,
                keeper,
                out,
                log_filter,
                format=export_format,
                on_progress=on_progress,
            )
    where = "stdout" if output == "-" else output
    click.echo(f"Exported {count} rows to {where} ({export_format}).", err=True)


def _format(name: str | None, output: str) -> ExportFormat:
    if name is None:
        return _SUFFIX_FORMATS.get(Path(output).suffix.lower(), "jsonl")
    for known in EXPORT_FORMATS:
        if name.lower() == known:
            return known
    raise CliError(f"--format {name!r} is not one of {', '.join(EXPORT_FORMATS)}")


@contextlib.contextmanager
def _destination(output: str) -> Iterator[TextIO]:
    """stdout, or ``output`` written as ``output.partial`` and renamed at the end."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    final = Path(output)
    partial = final.with_name(final.name + ".partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror or error}") from None
    try:
        with handle:
            yield handle
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """A running count of exported rows on stderr, when stderr is a terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("exporting"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=None)
        yield lambda count: progress.update(task, completed=count)
