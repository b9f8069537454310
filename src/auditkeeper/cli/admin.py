"""Commands that set up and look after a database: ``install``, ``check``, ``add-events``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, TextIO

import click

from ..capture.history import EntityHistoryItem
from ..trail import create_trail_indexes
from .context import CliError, app_option, database_option, load_app, parse_moment, reported
from .demo import open_database
from .render import make_console

__all__ = ["add_events_command", "check_command", "install_command"]

_ITEM_FIELDS = {field.replace("_", ""): field for field in EntityHistoryItem.__slots__}


@click.command("install")
@database_option
@app_option
def install_command(database: str | None, app: str) -> None:
    """Create or upgrade the audit tables, their triggers, (PostgreSQL) procedures and
    the trail's indexes for related records.

    Safe to run at every deployment: existing logs are kept, triggers and procedures
    are replaced with this version's, and enum codes are checked against the catalogue.
    """
    keeper, owner = load_app(app)
    engine = _engine(database)
    try:
        with reported():
            keeper.create_all(engine)
            create_trail_indexes(keeper, engine)
            problems = keeper.check(engine)
    finally:
        engine.dispose()
    console = make_console()
    console.print(f"{keeper.table.fullname}: installed on {_shown(engine)}")
    _print_problems(problems)
    del owner
    if problems:
        raise SystemExit(1)


@click.command("check")
@database_option
@app_option
def check_command(database: str | None, app: str) -> None:
    """Report what is wrong with the database's audit set-up; exit 1 if anything is.

    Missing tables; append-only triggers missing, disabled or out of date; enum codes
    that now mean something else; missing PostgreSQL procedures. Changes nothing.
    """
    keeper, owner = load_app(app)
    engine = _engine(database)
    try:
        with reported():
            problems = keeper.check(engine)
    finally:
        engine.dispose()
    if not problems:
        make_console().print(f"{keeper.table.fullname} on {_shown(engine)}: ready")
    _print_problems(problems)
    del owner
    if problems:
        raise SystemExit(1)


@click.command("add-events")
@click.argument("source", type=click.File("r", encoding="utf-8"))
@database_option
@app_option
@click.option("--reason", help="Why the changes were made, e.g. 'Support ticket #12345'.")
@click.option("--user-id", help="Who made them (the users table's key).")
@click.option("--tenant", help="The tenant they belong to.")
@click.option("--change-time", help="When they were made (ISO-8601; default: now).")
def add_events_command(
    source: TextIO,
    database: str | None,
    app: str,
    reason: str | None,
    user_id: str | None,
    tenant: str | None,
    change_time: str | None,
) -> None:
    """Record changes made directly in the database, read from a JSON or CSV file.

    The Python form of the seed's Core_AddEntityHistoryEvents. Each change has
    change_type (0 Created, 1 Updated, 2 Deleted), entity_id, entity_type_full_name and,
    optionally, property_name, property_type_full_name, new_value, old_value and
    description (the seed's PascalCase names work too). JSON: a list of changes, or an
    object with "changes" and optional "reason", "user_id", "tenant_id", "change_time".
    CSV: a header row naming the fields. Every change is checked before anything is
    written; one bad change writes nothing.
    """
    options, items = _read_changes(source.name, _read_text(source))
    moment = change_time or options.get("change_time")
    keeper, owner = load_app(app)
    engine = _engine(database)
    try:
        with reported(), engine.begin() as connection:
            written = keeper.add_entity_history_events(
                connection,
                items,
                change_time=parse_moment("--change-time", str(moment)) if moment else None,
                reason=reason if reason is not None else options.get("reason"),
                tenant_id=tenant if tenant is not None else options.get("tenant_id"),
                user_id=_user_id(
                    keeper, user_id if user_id is not None else options.get("user_id")
                ),
            )
    finally:
        engine.dispose()
    del owner
    make_console().print(f"{written} change(s) recorded in {keeper.table.fullname}")


def _engine(database: str | None) -> Any:
    if not database:
        raise CliError("no database given: pass --db URL_OR_PATH or set AUDITKEEPER_DB")
    return open_database(database)


def _shown(engine: Any) -> str:
    return str(engine.url.render_as_string(hide_password=True))


def _print_problems(problems: list[Any]) -> None:
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)


def _user_id(keeper: Any, value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    from .context import parse_user_id

    return parse_user_id("--user-id", value, keeper)


def _read_changes(source: str, text: str) -> tuple[dict[str, Any], list[EntityHistoryItem]]:
    """The options and changes of a JSON or CSV text."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise CliError(f"{source}: not valid JSON: {error}") from None
        options = document if isinstance(document, dict) else {}
        rows = document.get("changes", []) if isinstance(document, dict) else document
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise CliError(f"{source}: expected a list of changes (JSON objects)")
    else:
        options, rows = {}, list(csv.DictReader(io.StringIO(text)))
    return options, [_item(source, number, row) for number, row in enumerate(rows, start=1)]


def _read_text(source: TextIO) -> str:
    try:
        return source.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"{source.name}: cannot read it: {error}") from None


def _item(source: str, number: int, row: dict[str, Any]) -> EntityHistoryItem:
    fields: dict[str, Any] = {}
    for name, value in row.items():
        field = _ITEM_FIELDS.get(str(name).replace("_", "").lower())
        if field is None:
            known = ", ".join(EntityHistoryItem.__slots__)
            raise CliError(f"{source}, change {number}: unknown field {name!r} (fields: {known})")
        fields[field] = None if value in ("", None) else value
    for required in ("change_type", "entity_id", "entity_type_full_name"):
        if fields.get(required) is None:
            raise CliError(f"{source}, change {number}: {required} is missing")
    try:
        fields["change_type"] = int(fields["change_type"])
    except (TypeError, ValueError):
        raise CliError(
            f"{source}, change {number}: change_type {fields['change_type']!r} is not 0, 1 or 2"
        ) from None
    for text_field in ("new_value", "old_value"):
        if fields.get(text_field) is not None and not isinstance(fields[text_field], str):
            fields[text_field] = json.dumps(fields[text_field])
    return EntityHistoryItem(**fields)
