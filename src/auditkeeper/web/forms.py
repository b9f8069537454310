"""The page's query parameters: the log table's filters, order, page size and cursor, and
a trail's search, sort and paging.

Everything arrives as text, from the page's forms or from a link someone edited or
bookmarked. A malformed value is a ``BadInputError`` naming its parameter, which the
page shows as a 422 message (never a 500), and an empty field means "not given", as an
HTML form sends it. The filters themselves are parsed by the API's
``parse_log_filter``, so the page and ``GET /api/logs`` accept the same values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ..api.filters import parse_log_filter
from ..api.params import BadInputError, check_text, parse_int
from ..api.service import LogReader
from ..query import LogFilter
from ..trail import SORT_FIELDS

__all__ = [
    "LOG_FIELDS",
    "PAGE_SIZES",
    "SORTS",
    "LogQuery",
    "TrailQuery",
    "read_log_query",
    "read_trail_query",
]

PAGE_SIZES = (10, 25, 50, 100)
"""The page sizes the forms offer; any other is refused, so a link cannot ask for a
page large enough to tie the server up."""

SORTS = {"newest": "Newest first", "oldest": "Oldest first"}
"""The log table's orders (keyset pages come in time order only)."""

LOG_FIELDS = ("entity_type", "action", "user", "since", "until", "text", "sort", "limit", "record")
"""The log table's parameters that make its query (the cursor only says where)."""

_MAX_LENGTH = 512
_MAX_SKIP = 1_000_000


@dataclass(frozen=True)
class LogQuery:
    """What the log table shows: the filter, the page size and position, and the form's
    values as given, to fill the form in again and to build the table's links."""

    values: Mapping[str, str]
    log_filter: LogFilter
    limit: int
    cursor: str | None

    @property
    def newest_first(self) -> bool:
        return self.log_filter.newest_first


@dataclass(frozen=True)
class TrailQuery:
    """A trail page: the search text, the sort (a ``trail()`` sort) and the window."""

    search: str
    sort: str
    skip: int
    limit: int


def read_log_query(reader: LogReader, params: Mapping[str, str]) -> LogQuery:
    """The log table's query. ``user`` is an e-mail when it holds an ``@``, else a user
    id; ``until`` given as a date includes that whole day (UTC), as a date picker's
    "to" field is read; ``sort`` is ``newest`` or ``oldest``."""
    values = {name: _text(params, name) for name in LOG_FIELDS}
    values = {name: value for name, value in values.items() if value}
    sort = values.get("sort", "newest")
    if sort not in SORTS:
        raise BadInputError("sort", f"sort: {sort[:40]!r} is not one of {', '.join(SORTS)}")
    user = values.get("user", "")
    log_filter = parse_log_filter(
        reader,
        entity_type=values.get("entity_type"),
        action=values.get("action"),
        record=values.get("record"),
        user_id=None if "@" in user else user,
        user_email=user if "@" in user else None,
        since=values.get("since"),
        until=_through_the_day(values.get("until")),
        field=None,
        text=values.get("text"),
        oldest_first=sort == "oldest",
    )
    cursor = _text(params, "cursor") or None
    return LogQuery(values, log_filter, _page_size(values.get("limit")), cursor)


def read_trail_query(params: Mapping[str, str]) -> TrailQuery:
    """A trail page's query: ``search``, ``sort`` (``date``, ``event``, ``description``,
    ``user``, ``entity``; ``-`` for descending), ``skip`` and ``limit``."""
    sort = _text(params, "sort") or "-date"
    if sort.removeprefix("-") not in SORT_FIELDS:
        raise BadInputError(
            "sort",
            f"sort: {sort[:40]!r} is not one of {', '.join(SORT_FIELDS)} (- for descending)",
        )
    given_skip = _text(params, "skip")
    skip = parse_int("skip", given_skip) if given_skip else 0
    if not 0 <= skip <= _MAX_SKIP:
        raise BadInputError("skip", f"skip must be from 0 to {_MAX_SKIP}, got {skip}")
    return TrailQuery(_text(params, "search"), sort, skip, _page_size(_text(params, "limit")))


def _text(params: Mapping[str, str], name: str) -> str:
    """A parameter's text, stripped ("" when absent): short, and without NUL bytes."""
    value = params.get(name) or ""
    if len(value) > _MAX_LENGTH:
        raise BadInputError(name, f"{name} is longer than {_MAX_LENGTH} characters")
    return check_text(name, value).strip()


def _page_size(given: str | None) -> int:
    if not given:
        return PAGE_SIZES[1]
    size = parse_int("limit", given)
    if size not in PAGE_SIZES:
        sizes = ", ".join(map(str, PAGE_SIZES))
        raise BadInputError("limit", f"limit: {size} rows per page is not offered; use {sizes}")
    return size


def _through_the_day(until: str | None) -> str | None:
    """``until`` as the API reads it (an exclusive instant): a bare date becomes the
    start of the next day, so the day itself is included."""
    if until is None:
        return None
    try:
        day = dt.date.fromisoformat(until)
    except ValueError:
        return until  # a time (exclusive, as in the API), or a mistake parse_instant names
    if day == dt.date.max:
        return None  # through the last day there is: no upper bound
    return (day + dt.timedelta(days=1)).isoformat()
