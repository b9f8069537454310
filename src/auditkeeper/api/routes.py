"""``create_router``: the read-only JSON API an application mounts in its FastAPI app.

Only GET routes exist, so POST, PUT, PATCH and DELETE answer 405. Every parameter is
read as text and parsed by ``params.py``: malformed input is a 422 naming it, never 500.
(No ``from __future__ import annotations``: FastAPI must evaluate the annotations,
which name the local tenant dependency.)
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from ..capture.keeper import Auditkeeper
from ..trail.users import UserNames
from .filters import parse_log_filter
from .models import (
    CatalogueOut,
    CodeName,
    EntityTypeOut,
    EntryDetail,
    LogPageOut,
    RecordStateOut,
    TrailPageOut,
)
from .params import (
    BadInputError,
    NotFoundError,
    check_text,
    parse_instant,
    parse_int,
    parse_key,
)
from .service import LogReader, SessionSource

__all__ = ["create_router"]

Text = Annotated[str | None, Query(max_length=512)]


def no_tenant() -> None:
    """The tenant dependency of an application without tenants: every row is visible."""
    return None


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except BadInputError as error:
        detail = [{"loc": ["query", error.param], "msg": error.message, "type": "value_error"}]
        raise HTTPException(422, detail=detail) from None
    except NotFoundError as error:
        raise HTTPException(404, detail=str(error)) from None


def create_router(
    keeper: Auditkeeper,
    sessions: SessionSource,
    *,
    dependencies: Sequence[Any] = (),
    tenant: Callable[..., str | None] | None = None,
    user_names: UserNames | None = None,
) -> APIRouter:
    """The API's routes for ``keeper``'s log, read through ``sessions`` (an engine or a
    sessionmaker). ``dependencies`` (e.g. ``[Depends(require_auditor)]``) guard every
    route; ``tenant`` is a dependency returning the caller's tenant id: rows of other
    tenants are never returned."""
    reader = LogReader(keeper, sessions, user_names=user_names)
    router = APIRouter(dependencies=list(dependencies), tags=["audit log"])
    tenant_of = tenant or no_tenant

    @router.get("/logs", response_model=LogPageOut)
    def list_logs(
        scope: Annotated[str | None, Depends(tenant_of)],
        entity_type: Text = None,
        action: Text = None,
        record: Text = None,
        user_id: Text = None,
        user_email: Text = None,
        since: Text = None,
        until: Text = None,
        field: Text = None,
        text: Text = None,
        oldest_first: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Text = None,
    ) -> LogPageOut:
        """Audit logs, newest first, filtered; page on with ``next_cursor`` (back with
        ``previous_cursor``). ``text`` finds a substring, in any case, in the documents,
        the user's e-mail or the reason."""
        with _answers():
            log_filter = parse_log_filter(
                reader,
                entity_type=entity_type,
                action=action,
                record=record,
                user_id=user_id,
                user_email=user_email,
                since=since,
                until=until,
                field=field,
                text=text,
                oldest_first=oldest_first,
            )
            if cursor is not None:
                check_text("cursor", cursor)
            page = reader.page(log_filter, limit=limit, cursor=cursor, tenant=scope)
            return LogPageOut.of(page, keeper)

    @router.get("/logs/{entry_id}", response_model=EntryDetail)
    def one_log(entry_id: str, scope: Annotated[str | None, Depends(tenant_of)]) -> EntryDetail:
        """One audit log with previous, current and difference."""
        with _answers():
            entry = reader.entry(parse_int("entry_id", entry_id), tenant=scope)
            return EntryDetail.of(entry, keeper)

    @router.get("/records/{entity_type}/{key:path}/trail", response_model=TrailPageOut)
    def record_trail(
        entity_type: str,
        key: str,
        scope: Annotated[str | None, Depends(tenant_of)],
        search: Text = None,
        sort: Annotated[str, Query(max_length=32)] = "-date",
        skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> TrailPageOut:
        """A record's audit trail: Type of event, Description, User, Date."""
        with _answers():
            entity = reader.entity_class("entity_type", entity_type)
            page = reader.trail(
                entity,
                parse_key("key", entity.cls, key),
                search=None if search is None else check_text("search", search),
                sort=check_text("sort", sort),
                skip=skip,
                limit=limit,
                tenant=scope,
            )
            return TrailPageOut.of(page, skip=skip, limit=limit)

    @router.get("/records/{entity_type}/{key:path}/as-of", response_model=RecordStateOut)
    def record_as_of(
        entity_type: str,
        key: str,
        scope: Annotated[str | None, Depends(tenant_of)],
        at: Text = None,
    ) -> RecordStateOut:
        """A record's audited fields as of ``at`` (default: now)."""
        with _answers():
            entity = reader.entity_class("entity_type", entity_type)
            moment = None if at is None else parse_instant("at", at)
            state = reader.as_of(entity, parse_key("key", entity.cls, key), at=moment, tenant=scope)
            return RecordStateOut.of(state, keeper)

    @router.get("/catalogue", response_model=CatalogueOut)
    def catalogue() -> CatalogueOut:
        """The codes and names of the application's actions and entity types."""
        classes = reader.entity_classes()
        return CatalogueOut(
            actions=[CodeName(code=int(m), name=m.name) for m in keeper.actions],
            entity_types=[
                EntityTypeOut(
                    code=int(m),
                    name=m.name,
                    entity_class=(c.cls.__name__ if (c := classes.get(int(m))) else None),
                )
                for m in keeper.entity_types
            ],
        )

    return router
