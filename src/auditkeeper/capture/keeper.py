"""``Auditkeeper``: one audit log, its tables and enums, and the sessions it watches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import MetaData, Table, event, inspect
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Mapper, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeEngine

from ..errors import ConfigurationError, ReadOnlyLogError
from ..model.ddl import attach_to_metadata, install_statements, install_triggers
from ..model.procedures import procedure_statements
from ..model.statements import as_sent, execute_text
from ..model.tables import (
    AuditEntry,
    AuditTables,
    build_tables,
    map_entry_class,
    storage_statements,
)
from ..store.catalogue import enum_members, sync_catalogue
from .health import Problem, check_database
from .history import EntityHistoryItem, publish_entities, write_history
from .recorder import KEEPERS_INFO_KEY, Recorder
from .trigger_state import unwatch_engine, watch_engine
from .triggers import capture_statements, capture_targets, install_capture

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["KEEPERS_INFO_KEY", "Auditkeeper", "Installation"]


SessionTarget: TypeAlias = (
    "Session | type[Session] | sessionmaker[Any] | scoped_session[Any] | AsyncSession"
    " | async_sessionmaker[Any]"
)


@dataclass
class Installation:
    """What ``Auditkeeper.install`` attached; ``uninstall()`` detaches it."""

    keeper: Auditkeeper
    target: Any
    listened: Any
    _restore: Any = None

    def uninstall(self) -> None:
        """Stop auditing the sessions of this target."""
        if isinstance(self.listened, Engine):
            unwatch_engine(self.listened)
            return
        recorder = self.keeper._recorder
        for name, handler in _handlers(recorder):
            if event.contains(self.listened, name, handler):
                event.remove(self.listened, name, handler)
        if self._restore is not None:
            self._restore()
            self._restore = None


class Auditkeeper:
    """One append-only audit log for the application's audited classes.

    ::

        keeper = Auditkeeper(Base.metadata, actions=Action, entity_types=EntityType,
                             users="users.id")
        keeper.create_all(engine)      # tables, triggers, catalogue check
        keeper.install(SessionLocal)   # every flush of these sessions is audited

    ``actions`` and ``entity_types`` are the application's ``IntEnum`` classes; their
    codes are recorded in a catalogue and may never change meaning. ``users`` is the
    ``"table.column"`` of the users' key (``ON DELETE SET NULL`` keeps logs when a user
    is deleted). ``require_actor=True`` refuses to save audited changes made outside
    ``acting_as(...)`` / ``acting_as_system(...)``. ``event_action`` is the action
    recorded for custom history events of classes that declare no ``event=``.
    ``leading_comments=True`` has PostgreSQL's capture triggers read auditkeeper's marks
    behind the comments a tracer puts before statements (Datadog's database monitoring
    does): without it each flushed change is then logged twice, and with it each
    flushed UPDATE and DELETE costs the server about 10 µs more (docs/raw-sql.md);
    ``check`` reports which a database needs.
    """

    def __init__(
        self,
        metadata: MetaData,
        *,
        actions: type[IntEnum],
        entity_types: type[IntEnum],
        users: str | None = None,
        user_id_type: TypeEngine[Any] | None = None,
        table_name: str = "audit_log",
        schema: str | None = None,
        require_actor: bool = False,
        event_action: IntEnum | None = None,
        leading_comments: bool = False,
    ) -> None:
        for label, enum in (("actions", actions), ("entity_types", entity_types)):
            if not (isinstance(enum, type) and issubclass(enum, IntEnum)):
                raise ConfigurationError(f"{label} must be an IntEnum class, got {enum!r}")
            enum_members(label, enum)
        if users is not None and users.count(".") < 1:
            raise ConfigurationError(
                f'users must name the key column as "table.column", got {users!r}'
            )
        if not isinstance(leading_comments, bool):
            raise ConfigurationError(
                f"leading_comments must be True or False, got {leading_comments!r}"
            )
        if event_action is not None and not isinstance(event_action, actions):
            raise ConfigurationError(
                f"event_action must be a member of {actions.__name__}, got {event_action!r}"
            )
        self.actions = actions
        self.entity_types = entity_types
        self.event_action = event_action
        """The default action of custom history events (``add_history_event``)."""
        self.tables: AuditTables = build_tables(
            metadata, name=table_name, users=users, user_id_type=user_id_type, schema=schema
        )
        attach_to_metadata(self.tables)
        event.listen(metadata, "after_create", self._after_metadata_create)
        self.Entry: type[AuditEntry] = map_entry_class(self.tables.log)
        entry_mapper: Mapper[Any] = inspect(self.Entry)
        for name in ("before_insert", "before_update", "before_delete"):
            event.listen(entry_mapper, name, _refuse_entry_write(name))
        self._recorder = Recorder(
            self.tables,
            actions=actions,
            entity_types=entity_types,
            require_actor=require_actor,
            entry_mapper=entry_mapper,
            leading_comments=leading_comments,
        )
        self._recorder.event_action = None if event_action is None else int(event_action)
        # The trail and add_history_event find the audit log of a mapped class this way.
        metadata.info.setdefault(KEEPERS_INFO_KEY, []).append(self)

    def _after_metadata_create(self, target: MetaData, connection: Connection, **kw: Any) -> None:
        """``metadata.create_all`` made the audited tables: give them capture triggers."""
        if inspect(connection).has_table(self.tables.log.name, schema=self.tables.log.schema):
            install_capture(self._recorder, connection)

    @property
    def table(self) -> Table:
        """The Core ``audit_log`` table."""
        return self.tables.log

    @property
    def require_actor(self) -> bool:
        return self._recorder.require_actor

    def __repr__(self) -> str:
        return (
            f"<Auditkeeper table={self.table.fullname!r} actions={self.actions.__name__} "
            f"entity_types={self.entity_types.__name__}>"
        )

    # -- the database ---------------------------------------------------------------

    def create_all(self, bind: Engine | Connection) -> None:
        """Create the audit tables and their triggers if missing, and check the catalogue.

        Safe to call at every start: existing tables are kept, triggers are replaced
        with the current version, and a code whose meaning changed raises
        ``CatalogueConflictError`` before anything is written.
        """
        if isinstance(bind, Engine):
            with bind.begin() as connection:
                self._create_all(connection)
        else:
            self._create_all(bind)

    def _create_all(self, connection: Connection) -> None:
        for table in (self.tables.log, self.tables.catalogue):
            if inspect(connection).has_table(table.name, schema=table.schema):
                # Existing table: bring its triggers to this version.
                install_triggers(self.tables, connection, only=table)
            else:
                table.create(connection)  # its after_create hook installs the triggers
        for statement in storage_statements(self.tables.log, connection.dialect.name):
            execute_text(connection, statement)  # tables made by an older version too
        sync_catalogue(connection, self.tables, self._recorder.enums())
        if connection.dialect.name == "postgresql":
            for statement in procedure_statements(self.tables, connection.dialect):
                execute_text(connection, statement)
            publish_entities(self._recorder, connection)
        install_capture(self._recorder, connection)

    def check_catalogue(self, bind: Engine | Connection) -> None:
        """Raise ``CatalogueConflictError`` if an enum code now means something else; record
        new codes. Call it at application start to refuse to run with renumbered enums."""
        if isinstance(bind, Engine):
            with bind.begin() as connection:
                sync_catalogue(connection, self.tables, self._recorder.enums())
        else:
            sync_catalogue(bind, self.tables, self._recorder.enums())

    def check(self, bind: Engine | Connection) -> list[Problem]:
        """What is wrong with the database's audit set-up (nothing is changed): missing
        tables, missing, disabled or outdated triggers, catalogue conflicts, missing
        procedures. An empty list means ready; ``create_all`` repairs the rest."""
        if isinstance(bind, Engine):
            with bind.connect() as connection:
                return check_database(self, connection)
        return check_database(self, bind)

    def trigger_sql(self, dialect_name: str) -> list[str]:
        """The trigger DDL (and, on PostgreSQL, the history procedures and the capture
        triggers of the audited tables) for ``op.execute`` in an Alembic migration, as
        the database is to read it (``as_sent``)."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialects: dict[str, Dialect] = {
            "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
            "sqlite": sqlite.dialect(),
        }
        if dialect_name not in dialects:
            raise ConfigurationError(
                f"auditkeeper supports 'sqlite' and 'postgresql', not {dialect_name!r}"
            )
        dialect = dialects[dialect_name]
        statements = install_statements(self.tables, dialect)
        if dialect_name == "postgresql":
            statements += procedure_statements(self.tables, dialect)
            statements += storage_statements(self.tables.log, dialect_name)
        statements += capture_statements(self.tables, capture_targets(self._recorder), dialect)
        return [as_sent(statement, dialect) for statement in statements]

    # -- changes made outside the ORM ---------------------------------------------------

    def add_entity_history_events(
        self,
        bind: Session | Connection,
        changes: Sequence[EntityHistoryItem],
        *,
        change_time: dt.datetime | None = None,
        reason: str | None = None,
        tenant_id: str | int | None = None,
        user_id: Any = None,
    ) -> int:
        """Record changes made directly in the database (the seed's
        ``Core_AddEntityHistoryEvents``), in ``bind``'s transaction; returns the number
        of rows written. Every item is validated first: a bad one raises
        ``CaptureError`` and nothing is written. ``change_time`` None means now."""
        return write_history(
            self._recorder,
            bind,
            list(changes),
            change_time=change_time,
            reason=reason,
            tenant_id=tenant_id,
            user_id=user_id,
        )

    def add_single_entity_history_event(
        self,
        bind: Session | Connection,
        *,
        change_type: int,
        entity_id: str | int,
        entity_type_full_name: str,
        property_name: str | None = None,
        property_type_full_name: str | None = None,
        new_value: str | None = None,
        old_value: str | None = None,
        description: str | None = None,
        change_time: dt.datetime | None = None,
        reason: str | None = None,
        tenant_id: str | int | None = None,
        user_id: Any = None,
    ) -> int:
        """One change made directly in the database (``Core_AddSingleEntityHistoryEvent``)."""
        item = EntityHistoryItem(
            change_type=change_type,
            entity_id=entity_id,
            entity_type_full_name=entity_type_full_name,
            property_name=property_name,
            property_type_full_name=property_type_full_name,
            new_value=new_value,
            old_value=old_value,
            description=description,
        )
        return self.add_entity_history_events(
            bind,
            [item],
            change_time=change_time,
            reason=reason,
            tenant_id=tenant_id,
            user_id=user_id,
        )

    # -- sessions ---------------------------------------------------------------------

    def install(self, target: SessionTarget | Engine) -> Installation:
        """Audit every flush of ``target``'s sessions.

        ``target`` is a ``sessionmaker``, ``scoped_session``, ``Session`` class or
        instance, ``AsyncSession`` or ``async_sessionmaker``. Returns a handle whose
        ``uninstall()`` stops it. An ``Engine`` (for Core-only code) gets no flush
        hooks: on PostgreSQL, its data-changing statements carry the current actor to
        the capture triggers (docs/raw-sql.md); sessions do that on their own.
        """
        restore = None
        listened: Any
        async_session, async_maker = _async_classes()
        if isinstance(target, Engine):
            watch_engine(target)
            return Installation(self, target, target)
        if async_maker is not None and isinstance(target, async_maker):
            base = target.kw.get("sync_session_class", Session)
            audited_class = type(f"Audited{base.__name__}", (base,), {})
            had_key = "sync_session_class" in target.kw
            target.kw["sync_session_class"] = audited_class
            listened = audited_class

            def restore() -> None:
                if had_key:
                    target.kw["sync_session_class"] = base
                else:
                    target.kw.pop("sync_session_class", None)

        elif async_session is not None and isinstance(target, async_session):
            listened = target.sync_session
        elif isinstance(target, Session | sessionmaker | scoped_session) or (
            isinstance(target, type) and issubclass(target, Session)
        ):
            listened = target
        else:
            raise ConfigurationError(
                "install() takes a sessionmaker, scoped_session, Session class or instance, "
                f"AsyncSession or async_sessionmaker, got {target!r}"
            )
        handlers = _handlers(self._recorder)
        if any(event.contains(listened, name, handler) for name, handler in handlers):
            raise ConfigurationError(f"{self!r} is already installed on {target!r}")
        for name, handler in handlers:
            event.listen(listened, name, handler)
        return Installation(self, target, listened, restore)


def _handlers(recorder: Recorder) -> list[tuple[str, Any]]:
    return [
        ("after_begin", recorder.after_begin),
        ("before_flush", recorder.before_flush),
        ("after_flush", recorder.after_flush),
        ("after_flush_postexec", recorder.after_flush_postexec),
        ("after_soft_rollback", recorder.after_soft_rollback),
        ("do_orm_execute", recorder.on_execute),
    ]


def _refuse_entry_write(event_name: str) -> Any:
    verb = event_name.removeprefix("before_").upper()

    def refuse(mapper: Any, connection: Any, target: Any) -> None:
        raise ReadOnlyLogError(
            f"{verb} of audit log entries is refused: logs are written by auditkeeper only "
            "and never change"
        )

    return refuse


def _async_classes() -> tuple[Any, Any]:
    """``(AsyncSession, async_sessionmaker)``, or Nones where SQLAlchemy's asyncio
    extension cannot load (it needs greenlet): then no target can be async either."""
    try:
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    except ImportError:
        return None, None
    return AsyncSession, async_sessionmaker
