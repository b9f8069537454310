"""``LogReader``: the reads the API and the page share, over the query and trail layers.

It owns the sessions (one short-lived session per call, from the application's engine
or sessionmaker) and the tenant scope: every read takes ``tenant`` and never returns a
row of another tenant. Input arrives already parsed by ``params.py``; errors of the
query layer come back as ``BadInputError`` naming the parameter they concern.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ..capture.history import EntityRegistry
from ..capture.keeper import Auditkeeper
from ..errors import AuditkeeperError, InvalidCursorError
from ..model.tables import AuditEntry
from ..query import LogFilter, LogPage, RecordState, as_of, read_page
from ..query.resolve import resolve_code
from ..trail import TrailPage, trail
from ..trail.users import UserNames
from .params import BadInputError, NotFoundError

__all__ = ["EntityClass", "LogReader", "SessionSource"]

SessionSource = Engine | sessionmaker[Session] | Callable[[], Session]
"""Where the reader gets its sessions: an engine, or the application's session factory."""

_FILTER_PARAMS = (
    "entity_type",
    "action",
    "user_id",
    "record",
    "since",
    "until",
    "field",
    "text",
)


@dataclass(frozen=True)
class EntityClass:
    """An audited class: its entity-type code and name, and the mapped class."""

    code: int
    name: str
    cls: type


class LogReader:
    """Read-only access to one ``Auditkeeper``'s log, scoped to a tenant per call."""

    def __init__(
        self,
        keeper: Auditkeeper,
        sessions: SessionSource,
        *,
        user_names: UserNames | None = None,
    ) -> None:
        self.keeper = keeper
        self._sessions = sessions
        self.user_names = user_names

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that only reads: it is closed (its transaction rolled back, its
        objects detached but still loaded), never committed."""
        source = self._sessions
        session = Session(source) if isinstance(source, Engine) else source()
        try:
            yield session
        finally:
            session.close()

    # -- the catalogue ----------------------------------------------------------------

    def entity_classes(self) -> dict[int, EntityClass]:
        """The audited classes by entity-type code (the first where several share one)."""
        found: dict[int, EntityClass] = {}
        for mapper, plan in EntityRegistry(self.keeper._recorder).plans.values():
            name = self.keeper.entity_types(plan.entity_type).name
            found.setdefault(plan.entity_type, EntityClass(plan.entity_type, name, mapper.class_))
        return found

    def entity_type_code(self, param: str, value: str) -> int:
        """The code of the entity type ``value`` names (a name in any case, or a code)."""
        text = value.strip()
        try:
            return resolve_code(
                "entity type",
                self.keeper.entity_types,
                text,
            )
        except AuditkeeperError as error:
            raise BadInputError(param, f"{param}: {error}") from None

    def entity_class(self, param: str, value: str) -> EntityClass:
        code = self.entity_type_code(param, value)
        found = self.entity_classes().get(code)
        if found is None:
            raise NotFoundError(f"no audited class has entity type {value!r} in this application")
        return found

    # -- reads --------------------------------------------------------------------------

    def page(
        self, log_filter: LogFilter, *, limit: int, cursor: str | None, tenant: str | None
    ) -> LogPage:
        """A keyset page of the log; ``tenant`` overrides any tenant in the filter."""
        if tenant is not None:
            log_filter = _with_tenant(log_filter, tenant)
        with self.session() as session:
            try:
                return read_page(session, self.keeper, log_filter, limit=limit, cursor=cursor)
            except InvalidCursorError as error:
                raise BadInputError("cursor", f"cursor: {error}") from None
            except AuditkeeperError as error:
                raise BadInputError(_param_of(str(error)), str(error)) from None

    def entry(self, entry_id: int, *, tenant: str | None) -> AuditEntry:
        """One audit row, unless it belongs to another tenant (then: not found)."""
        with self.session() as session:
            found = session.get(self.keeper.Entry, entry_id)
            if found is None or (tenant is not None and found.tenant_id != tenant):
                raise NotFoundError(f"no audit log {entry_id}")
            return found

    def trail(
        self,
        entity: EntityClass,
        key: Any,
        *,
        search: str | None,
        sort: str,
        skip: int,
        limit: int,
        tenant: str | None,
    ) -> TrailPage:
        """A record's trail page; in a tenant, only that tenant's rows (404 if none)."""
        with self.session() as session:
            try:
                if tenant is None:
                    return trail(
                        session,
                        entity.cls,
                        key,
                        keeper=self.keeper,
                        user_names=self.user_names,
                        search=search,
                        sort=sort,
                        skip=skip,
                        limit=limit,
                    )
                page = trail(
                    session,
                    entity.cls,
                    key,
                    keeper=self.keeper,
                    user_names=self.user_names,
                    search=search,
                    sort=sort,
                )
            except AuditkeeperError as error:
                param = "sort" if "sort=" in str(error) else "key"
                raise BadInputError(param, str(error)) from None
            mine = self._tenant_rows(session, {row.entry_id for row in page}, tenant)
            if not self._in_tenant(session, entity, key, tenant):
                raise NotFoundError(f"no {entity.name} {key!r} in this tenant")
            rows = [row for row in page if row.entry_id in mine]
            return TrailPage(rows[skip : skip + limit], len(rows))

    def as_of(
        self, entity: EntityClass, key: Any, *, at: dt.datetime | None, tenant: str | None
    ) -> RecordState:
        """The record's state at ``at`` (or now)."""
        with self.session() as session:
            if tenant is not None and not self._in_tenant(session, entity, key, tenant):
                raise NotFoundError(f"no {entity.name} {key!r} in this tenant")
            try:
                state = as_of(session, self.keeper, entity.code, key, at=at)
            except AuditkeeperError as error:
                raise BadInputError("key", str(error)) from None
            return state

    def _in_tenant(self, session: Session, entity: EntityClass, key: Any, tenant: str) -> bool:
        log_filter = LogFilter(entity_type=entity.code, record=key, tenant_id=tenant)
        try:
            return len(read_page(session, self.keeper, log_filter, limit=1)) > 0
        except AuditkeeperError as error:
            raise BadInputError("key", str(error)) from None

    def _tenant_rows(self, session: Session, ids: set[int], tenant: str) -> set[int]:
        if not ids:
            return set()
        table = self.keeper.table
        statement = select(table.c.id).where(table.c.id.in_(ids), table.c.tenant_id == tenant)
        return set(session.scalars(statement))


def _with_tenant(log_filter: LogFilter, tenant: str) -> LogFilter:
    return dataclasses.replace(log_filter, tenant_id=tenant)


def _param_of(message: str) -> str:
    """The filter parameter a query-layer message is about (messages start with it)."""
    lowered = message.lower()
    for name in _FILTER_PARAMS:
        if lowered.startswith(name) or lowered.startswith(name.replace("_", " ")):
            return name
    for name in _FILTER_PARAMS:
        if name in lowered or name.replace("_", " ") in lowered:
            return name
    return "filter"
