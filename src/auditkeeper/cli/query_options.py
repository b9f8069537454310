"""The filter options ``logs`` and ``export`` share, and the ``LogFilter`` they make."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..capture.keeper import Auditkeeper
from ..query import UNSET, LogFilter
from .context import parse_moment, parse_user_id, reported

__all__ = ["FILTER_OPTIONS", "build_filter", "filter_options"]

F = TypeVar("F", bound=Callable[..., Any])

FILTER_OPTIONS = (
    "entity_type",
    "record",
    "action",
    "user",
    "email",
    "impersonated",
    "impersonator",
    "impersonator_email",
    "tenant",
    "transaction",
    "since",
    "until",
    "field",
    "changed_to",
    "text",
)
"""The keyword arguments ``filter_options`` adds to a command."""

_OPTIONS = [
    click.option(
        "--entity-type",
        "-e",
        "entity_type",
        multiple=True,
        metavar="NAME|CODE",
        help="Only rows of this entity type (repeat for several).",
    ),
    click.option(
        "--record", "-r", metavar="KEY", help="Only rows of this record (needs one --entity-type)."
    ),
    click.option(
        "--action", "-a", multiple=True, metavar="NAME|CODE", help="Only this action (repeatable)."
    ),
    click.option("--user", metavar="ID", help="Only rows by this user id."),
    click.option(
        "--email", metavar="EMAIL", help="Only rows by this e-mail (kept after deletion)."
    ),
    click.option(
        "--impersonated/--not-impersonated",
        default=None,
        help="Only rows done while impersonating, or only the others.",
    ),
    click.option("--impersonator", metavar="ID", help="Only rows by this impersonator's id."),
    click.option("--impersonator-email", metavar="EMAIL", help="Only rows by this impersonator."),
    click.option("--tenant", metavar="TENANT", help="Only rows of this tenant."),
    click.option("--transaction", metavar="UUID", help="Only rows of this transaction."),
    click.option(
        "--since", metavar="WHEN", help="From this ISO-8601 date or time (inclusive; UTC if bare)."
    ),
    click.option("--until", metavar="WHEN", help="Before this ISO-8601 date or time (exclusive)."),
    click.option("--field", metavar="COLUMN", help="Only rows that changed this field."),
    click.option(
        "--changed-to",
        metavar="VALUE",
        help='...to this value: JSON (40, true, null, "40") or else plain text.',
    ),
    click.option(
        "--text",
        metavar="TEXT",
        help="Only rows whose values, field names, e-mail or reason contain this (any case).",
    ),
]


def filter_options(function: F) -> F:
    """Add every filter option to a command."""
    for option in reversed(_OPTIONS):
        function = option(function)
    return function


def build_filter(keeper: Auditkeeper, options: dict[str, Any], *, newest_first: bool) -> LogFilter:
    """The ``LogFilter`` of the options; a malformed value is a one-line error naming
    its option."""
    changed_to: Any = UNSET
    if options["changed_to"] is not None:
        changed_to = _json_or_text(options["changed_to"])
    with reported():
        return LogFilter(
            entity_type=tuple(options["entity_type"]) or None,
            record=options["record"],
            action=tuple(options["action"]) or None,
            user_id=_user(keeper, "--user", options["user"]),
            user_email=options["email"],
            impersonated=options["impersonated"],
            impersonator_id=_user(keeper, "--impersonator", options["impersonator"]),
            impersonator_email=options["impersonator_email"],
            tenant_id=options["tenant"],
            transaction_id=options["transaction"],
            since=None if options["since"] is None else parse_moment("--since", options["since"]),
            until=None if options["until"] is None else parse_moment("--until", options["until"]),
            field=options["field"],
            changed_to=changed_to,
            text=options["text"] or None,
            newest_first=newest_first,
        )


def _user(keeper: Auditkeeper, option: str, value: str | None) -> Any:
    return None if value is None else parse_user_id(option, value, keeper)


def _json_or_text(value: str) -> Any:
    """``40`` is a number, ``true`` a boolean, ``null`` null, ``"40"`` text; anything
    that is not JSON is the text itself (``--changed-to won``)."""
    try:
        return json.loads(value)
    except ValueError:
        return value
