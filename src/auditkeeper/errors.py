"""The exceptions auditkeeper raises.

::

    AuditkeeperError
    ├── ConfigurationError       a declaration or an option is wrong
    │   └── CatalogueConflictError    an enum code now means something else than in the log
    ├── ActorError               the actor context is missing (strict mode) or invalid
    ├── CaptureError             a change could not be turned into an audit row
    ├── ReadOnlyLogError         something tried to change or delete a stored log row
    ├── StoreError               the audit rows could not be written or read
    └── QueryError               a query of the log was asked something it cannot answer
        ├── InvalidCursorError        a page cursor is malformed or belongs to another query
        └── InvalidFilterError        a filter names an unknown value or is inconsistent

Every message names the offending value and says what to do about it.

``AuditkeeperWarning`` (a ``UserWarning``) tells of a set-up that loses nothing but
logs wrongly, found while the application runs: ``Auditkeeper.check`` reports the same.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "AuditkeeperError",
    "AuditkeeperWarning",
    "CaptureError",
    "CatalogueConflictError",
    "ConfigurationError",
    "InvalidCursorError",
    "InvalidFilterError",
    "QueryError",
    "ReadOnlyLogError",
    "StoreError",
]


class AuditkeeperError(Exception):
    """Base class of every error auditkeeper raises."""


class AuditkeeperWarning(UserWarning):
    """A set-up that makes the log say more or other than what happened (each flushed
    change logged twice, say), found at run time; ``check`` names it too."""


class ConfigurationError(AuditkeeperError):
    """A declaration, an option or the database set-up is wrong."""


class CatalogueConflictError(ConfigurationError):
    """An action or entity-type code now means something else than in existing logs."""

    def __init__(
        self,
        kind: str,
        code: int,
        stored: str,
        current: str | None,
        *,
        moved_to: int | None = None,
    ) -> None:
        self.kind = kind
        self.code = code
        self.stored = stored
        self.current = current
        if moved_to is not None:
            message = (
                f"{kind} {stored!r} is recorded in the audit catalogue with code {code}, "
                f"but the application's enum now gives it code {moved_to}. Codes must "
                f"never change once logs exist: give {stored!r} back code {code}."
            )
        else:
            message = (
                f"{kind} code {code} is recorded in the audit catalogue as {stored!r}, "
                f"but the application's enum now calls it {current!r}. Codes must never "
                f"change once logs exist: give {current!r} a new code (max + 1) and keep "
                f"{code} for {stored!r}."
            )
        super().__init__(message)


class ActorError(AuditkeeperError):
    """The acting user is missing where it is required, or a context value is invalid."""


class CaptureError(AuditkeeperError):
    """A change of an audited object could not be turned into an audit row."""


class ReadOnlyLogError(AuditkeeperError):
    """Audit logs are append-only: an update, delete or manual insert was attempted."""


class StoreError(AuditkeeperError):
    """Audit rows could not be written or read."""


class QueryError(AuditkeeperError):
    """A query of the audit log cannot be answered as asked."""


class InvalidCursorError(QueryError):
    """A page cursor is not one that auditkeeper made, or was made for another query."""


class InvalidFilterError(QueryError):
    """A filter names an unknown entity type, action or field, or contradicts itself."""
