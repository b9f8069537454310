"""auditkeeper: a complete, append-only audit log for SQLAlchemy applications.

::

    import auditkeeper

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action,
                                     entity_types=EntityType, users="users.id")

    @auditkeeper.audited(entity_type=EntityType.LEAD, create=Action.LEAD_CREATE,
                         update=Action.LEAD_UPDATE, delete=Action.LEAD_DELETE)
    class Lead(Base): ...

    keeper.create_all(engine)
    keeper.install(SessionLocal)
    with auditkeeper.acting_as(user.id, email=user.email):
        ...  # every flush writes its audit rows in the same transaction
"""

from __future__ import annotations

from .capture.context import (
    MAX_CONTEXT_BYTES,
    MAX_EMAIL_LENGTH,
    MAX_REASON_LENGTH,
    Actor,
    acting_as,
    acting_as_system,
    current_actor,
    reset_actor,
    set_actor,
)
from .capture.declaration import (
    DEFAULT_SECRET_WORDS,
    REDACTED,
    Audited,
    ChildTrail,
    ColumnOptions,
    DomainAction,
    EventCreator,
    GenericChildTrail,
    HistoryEventInfo,
    ManyToManyTrail,
    ManyToOneTrail,
    PropertyChange,
    StopTrail,
    audit_column,
    audited,
    on_change,
)
from .capture.events import (
    add_history_event,
    add_property_change_comment,
    add_property_change_description,
)
from .capture.history import EntityHistoryItem
from .capture.keeper import Auditkeeper, Installation
from .capture.middleware import ActorMiddleware
from .errors import (
    ActorError,
    AuditkeeperError,
    AuditkeeperWarning,
    CaptureError,
    CatalogueConflictError,
    ConfigurationError,
    InvalidCursorError,
    InvalidFilterError,
    QueryError,
    ReadOnlyLogError,
    StoreError,
)
from .model.tables import AuditEntry
from .query import (
    FieldChange,
    LogFilter,
    LogPage,
    RecordState,
    RecordStatus,
    as_of,
    as_of_async,
    export_log,
    field_history,
    history,
    iter_entries,
    read_page,
    read_page_async,
)
from .store.engine import configure_sqlite
from .trail import (
    RowKind,
    TrailPage,
    TrailRow,
    create_trail_indexes,
    trail,
    trail_async,
    trail_index_statements,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SECRET_WORDS",
    "MAX_CONTEXT_BYTES",
    "MAX_EMAIL_LENGTH",
    "MAX_REASON_LENGTH",
    "REDACTED",
    "Actor",
    "ActorError",
    "ActorMiddleware",
    "AuditEntry",
    "Audited",
    "Auditkeeper",
    "AuditkeeperError",
    "AuditkeeperWarning",
    "CaptureError",
    "CatalogueConflictError",
    "ChildTrail",
    "ColumnOptions",
    "ConfigurationError",
    "DomainAction",
    "EntityHistoryItem",
    "EventCreator",
    "FieldChange",
    "GenericChildTrail",
    "HistoryEventInfo",
    "Installation",
    "InvalidCursorError",
    "InvalidFilterError",
    "LogFilter",
    "LogPage",
    "ManyToManyTrail",
    "ManyToOneTrail",
    "PropertyChange",
    "QueryError",
    "ReadOnlyLogError",
    "RecordState",
    "RecordStatus",
    "RowKind",
    "StopTrail",
    "StoreError",
    "TrailPage",
    "TrailRow",
    "__version__",
    "acting_as",
    "acting_as_system",
    "add_history_event",
    "add_property_change_comment",
    "add_property_change_description",
    "as_of",
    "as_of_async",
    "audit_column",
    "audited",
    "configure_sqlite",
    "create_trail_indexes",
    "current_actor",
    "export_log",
    "field_history",
    "history",
    "iter_entries",
    "on_change",
    "read_page",
    "read_page_async",
    "reset_actor",
    "set_actor",
    "trail",
    "trail_async",
    "trail_index_statements",
]
