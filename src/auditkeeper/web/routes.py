"""``create_page_router``: the log viewer's HTML pages, for an application to mount.

Three pages and their two static files, all ``GET``: the log table (filters, order,
keyset pages back and forth), one log's difference, and a record's audit trail. The
pages are rendered on the server from forms and links, so every feature works with
the keyboard and without JavaScript; ``page.js`` only makes a whole table row open its
log on a click. Bad parameters answer a 422 page naming them, unknown logs and records
a 404 page, never a 500.

(No ``from __future__ import annotations``: FastAPI evaluates the annotations, which
name the local tenant dependency.)
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..api.params import BadInputError, NotFoundError, parse_int, parse_key
from ..api.routes import no_tenant
from ..api.service import LogReader, SessionSource
from ..capture.keeper import Auditkeeper
from ..trail.users import UserNames
from .forms import PAGE_SIZES, SORTS, read_log_query, read_trail_query
from .links import Links
from .templating import render, static_file
from .views import field_rows, log_row, shown, when

__all__ = ["create_page_router"]

_TRAIL_COLUMNS = (
    ("event", "Type of event"),
    ("description", "Description"),
    ("user", "User"),
    ("date", "Date"),
)


def create_page_router(
    keeper: Auditkeeper,
    sessions: SessionSource,
    *,
    dependencies: Sequence[Any] = (),
    tenant: Callable[..., str | None] | None = None,
    user_names: UserNames | None = None,
) -> APIRouter:
    """The viewer's pages for ``keeper``'s log, read through ``sessions``; mount it
    with a prefix (``app.include_router(router, prefix="/audit")``). ``dependencies``
    guard every page, ``tenant`` scopes every read to the caller's tenant, and
    ``user_names`` names users in trails, as for ``create_router``."""
    reader = LogReader(keeper, sessions, user_names=user_names)
    router = APIRouter(dependencies=list(dependencies), include_in_schema=False)
    tenant_of = tenant or no_tenant

    def page(request: Request, template: str, context: dict[str, Any]) -> Response:
        links = Links(request.url_for("auditkeeper_page_logs").path)
        return render(template, {"links": links, "when": when, **context})

    def refused(request: Request, error: BadInputError | NotFoundError) -> Response:
        links = Links(request.url_for("auditkeeper_page_logs").path)
        if isinstance(error, BadInputError):
            status, param, message = 422, error.param, error.message
        else:
            status, param, message = 404, None, str(error)
        context = {"links": links, "status": status, "param": param, "message": message}
        return render("error.html", context, status_code=status)

    @router.get("/", name="auditkeeper_page_logs")
    def logs_page(request: Request, scope: Annotated[str | None, Depends(tenant_of)]) -> Response:
        """The log table: filters, order, and keyset pages."""
        try:
            query = read_log_query(reader, request.query_params)
            found = reader.page(
                query.log_filter, limit=query.limit, cursor=query.cursor, tenant=scope
            )
        except BadInputError as error:
            return refused(request, error)
        classes = reader.entity_classes()
        traceable = {entity.name for entity in classes.values()}
        values = dict(query.values)
        flipped = {**values, "sort": "oldest" if query.newest_first else "newest"}
        return page(
            request,
            "logs.html",
            {
                "rows": [log_row(entry, keeper) for entry in found],
                "values": values,
                "newest_first": query.newest_first,
                "entity_types": [member.name for member in keeper.entity_types],
                "actions": [member.name for member in keeper.actions],
                "sorts": SORTS,
                "page_sizes": PAGE_SIZES,
                "limit": query.limit,
                "traceable": traceable,
                "first_page": values if query.cursor else None,
                "previous": found.previous_cursor and {**values, "cursor": found.previous_cursor},
                "next": found.next_cursor and {**values, "cursor": found.next_cursor},
                "flipped": flipped,
            },
        )

    @router.get("/logs/{entry_id}", name="auditkeeper_page_entry")
    def entry_page(
        request: Request, entry_id: str, scope: Annotated[str | None, Depends(tenant_of)]
    ) -> Response:
        """One log: who, when, why, and the record before and after, side by side."""
        try:
            entry = reader.entry(parse_int("entry_id", entry_id), tenant=scope)
        except (BadInputError, NotFoundError) as error:
            return refused(request, error)
        row = log_row(entry, keeper)
        return page(
            request,
            "entry.html",
            {
                "entry": row,
                "fields": field_rows(entry.previous, entry.current, entry.difference),
                "context": {
                    name: shown(value).text for name, value in (entry.context or {}).items()
                },
                "has_trail": entry.entity_type in reader.entity_classes(),
            },
        )

    @router.get("/records/{entity_type}/{key:path}", name="auditkeeper_page_trail")
    def trail_page(
        request: Request,
        entity_type: str,
        key: str,
        scope: Annotated[str | None, Depends(tenant_of)],
    ) -> Response:
        """A record's audit trail: Type of event, Description, User, Date."""
        try:
            query = read_trail_query(request.query_params)
            entity = reader.entity_class("entity_type", entity_type)
            found = reader.trail(
                entity,
                parse_key("key", entity.cls, key),
                search=query.search or None,
                sort=query.sort,
                skip=query.skip,
                limit=query.limit,
                tenant=scope,
            )
        except (BadInputError, NotFoundError) as error:
            return refused(request, error)
        params: dict[str, str | int] = {"limit": query.limit}
        if query.search:
            params["search"] = query.search
        paging = {**params, "sort": query.sort}
        end = query.skip + len(found)
        return page(
            request,
            "trail.html",
            {
                "entity_type": entity.name,
                "key": key,
                "rows": list(found),
                "total": found.total,
                "first": query.skip + 1,
                "last": end,
                "search": query.search,
                "sort": query.sort,
                "limit": query.limit,
                "page_sizes": PAGE_SIZES,
                "columns": _trail_columns(query.sort, params),
                "previous": (
                    {**paging, "skip": max(query.skip - query.limit, 0)} if query.skip else None
                ),
                "next": {**paging, "skip": end} if end < found.total else None,
            },
        )

    @router.get("/static/{name}", name="auditkeeper_page_static")
    def static(request: Request, name: str) -> Response:
        """The page's style sheet and script (nothing else)."""
        found = static_file(name)
        if found is None:
            return refused(request, NotFoundError(f"no static file {name[:40]!r}"))
        return found

    return router


def _trail_columns(sort: str, params: dict[str, str | int]) -> list[dict[str, Any]]:
    """The trail's column headers: a link that sorts by the column (again: the other
    way), and the ``aria-sort`` state of the column the trail is sorted by."""
    sorted_by, descending = sort.removeprefix("-"), sort.startswith("-")
    columns = []
    for field, label in _TRAIL_COLUMNS:
        if field == sorted_by:
            state: str | None = "descending" if descending else "ascending"
            next_sort = field if descending else f"-{field}"
        else:
            state, next_sort = None, "-date" if field == "date" else field
        columns.append({"label": label, "sort": state, "params": {**params, "sort": next_sort}})
    return columns
