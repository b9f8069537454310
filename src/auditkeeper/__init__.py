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
    ColumnOptions,
    DomainAction,
    audit_column,
    audited,
    on_change,
)
from .capture.history import EntityHistoryItem
from .capture.keeper import Auditkeeper, Installation
from .capture.middleware import ActorMiddleware
from .errors import (
    ActorError,
    AuditkeeperError,
    CaptureError,
    CatalogueConflictError,
    ConfigurationError,
    ReadOnlyLogError,
    StoreError,
)
from .model.tables import AuditEntry
from .store.engine import configure_sqlite

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
    "AuditkeeperError",
    "Auditkeeper",
    "CaptureError",
    "CatalogueConflictError",
    "ColumnOptions",
    "ConfigurationError",
    "DomainAction",
    "EntityHistoryItem",
    "Installation",
    "ReadOnlyLogError",
    "StoreError",
    "__version__",
    "acting_as",
    "acting_as_system",
    "audit_column",
    "audited",
    "configure_sqlite",
    "current_actor",
    "on_change",
    "reset_actor",
    "set_actor",
]
