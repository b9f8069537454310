"""Declaring what is audited, next to the model: a class decorator and column options.

::

    @audited(
        entity_type=EntityType.LEAD,
        create=Action.LEAD_CREATE,
        update=Action.LEAD_UPDATE,
        delete=Action.LEAD_DELETE,
        on_change=[on_change("business_id", action=Action.LEAD_ASSIGN_TO_BUSINESS)],
    )
    class Lead(Base): ...

A verb left as None is not audited (the seed audits comment update and delete, not
create). Per column, ``info=audit_column(...)`` excludes or redacts it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_SECRET_WORDS",
    "REDACTED",
    "Audited",
    "ColumnOptions",
    "DomainAction",
    "audit_column",
    "audited",
    "declaration_of",
    "is_secret_name",
    "on_change",
]

T = TypeVar("T", bound=type)

INFO_KEY = "auditkeeper"

REDACTED = "[redacted]"
"""What the log stores instead of a redacted column's value."""

DEFAULT_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "otp",
        "totp",
        "hotp",
        "apikey",
        "salt",
        "pin",
        "cvv",
        "cvc",
        "credential",
        "credentials",
        "mfa",
        "privatekey",
    }
)
"""Words that mark a column as secret when they appear in its name (split at ``_`` and
case changes; ``api_key`` and ``private_key`` are matched as pairs). Boolean columns are
never secret: ``otp_enabled`` is audited."""

_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")})
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def is_secret_name(name: str, words: frozenset[str] = DEFAULT_SECRET_WORDS) -> bool:
    """Whether a column name matches the deny-list of secret words."""
    parts = [part.lower() for part in _WORDS.findall(name)]
    if any(part in words for part in parts):
        return True
    return any(pair in _PAIRS for pair in itertools.pairwise(parts))


@dataclass(frozen=True, slots=True)
class DomainAction:
    """A named action chosen when any of ``fields`` changed (e.g. assign lead to business)."""

    action: IntEnum
    fields: frozenset[str]


def on_change(*fields: str, action: IntEnum) -> DomainAction:
    """Record ``action`` instead of the update action when any of ``fields`` changed."""
    if not fields:
        raise ConfigurationError(f"on_change(action={action!r}) needs at least one field name")
    return DomainAction(action=action, fields=frozenset(fields))


@dataclass(frozen=True, slots=True)
class ColumnOptions:
    """Audit options of one column, kept in the column's ``info``."""

    exclude: bool = False
    """Leave the column out of the log entirely; its changes alone write no row."""
    redact: bool | None = None
    """Store ``REDACTED`` instead of the value (None: decided by the secret deny-list)."""
    display: str | None = None
    """The name the audit trail shows for the column."""


def audit_column(
    *,
    exclude: bool = False,
    redact: bool | None = None,
    display: str | None = None,
) -> dict[str, Any]:
    """Column ``info`` with audit options: ``mapped_column(info=audit_column(exclude=True))``."""
    return {INFO_KEY: ColumnOptions(exclude=exclude, redact=redact, display=display)}


@dataclass(frozen=True, slots=True)
class Audited:
    """What auditkeeper records for one mapped class; set by ``@audited`` or as
    ``__audited__ = Audited(...)`` in the class body."""

    entity_type: IntEnum
    create: IntEnum | None = None
    update: IntEnum | None = None
    delete: IntEnum | None = None
    on_change: tuple[DomainAction, ...] = ()
    exclude: frozenset[str] = field(default_factory=frozenset)
    redact: frozenset[str] = field(default_factory=frozenset)
    display_name: str | None = None
    full_name: str | None = None
    """The name SQL procedures use for this entity type (the seed's
    ``EntityTypeFullName``); by default ``module.QualifiedName`` of the class."""

    def __post_init__(self) -> None:
        if not isinstance(self.entity_type, IntEnum):
            raise ConfigurationError(
                f"entity_type must be a member of the application's IntEnum, "
                f"got {self.entity_type!r}"
            )
        for verb in ("create", "update", "delete"):
            value = getattr(self, verb)
            if value is not None and not isinstance(value, IntEnum):
                raise ConfigurationError(
                    f"{verb} must be a member of the application's actions IntEnum or None, "
                    f"got {value!r}"
                )
        if (
            self.create is None
            and self.update is None
            and self.delete is None
            and not self.on_change
        ):
            raise ConfigurationError(
                f"audited entity type {self.entity_type!r} declares no action: give at least "
                "one of create=, update=, delete= or on_change="
            )
        object.__setattr__(self, "on_change", tuple(self.on_change))
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        object.__setattr__(self, "redact", frozenset(self.redact))


def audited(
    *,
    entity_type: IntEnum,
    create: IntEnum | None = None,
    update: IntEnum | None = None,
    delete: IntEnum | None = None,
    on_change: Iterable[DomainAction] = (),
    exclude: Iterable[str] = (),
    redact: Iterable[str] = (),
    display_name: str | None = None,
    full_name: str | None = None,
) -> Callable[[T], T]:
    """Class decorator: audit this mapped class (and its subclasses) with these actions."""
    declaration = Audited(
        entity_type=entity_type,
        create=create,
        update=update,
        delete=delete,
        on_change=tuple(on_change),
        exclude=frozenset(exclude),
        redact=frozenset(redact),
        display_name=display_name,
        full_name=full_name,
    )

    def decorate(cls: T) -> T:
        setattr(cls, "__audited__", declaration)  # noqa: B010 - T is any class
        return cls

    return decorate


def declaration_of(cls: type) -> Audited | None:
    """The declaration that applies to ``cls`` (its own or inherited), or None."""
    declaration = getattr(cls, "__audited__", None)
    if declaration is None:
        return None
    if not isinstance(declaration, Audited):
        raise ConfigurationError(
            f"{cls.__name__}.__audited__ must be an auditkeeper.Audited, got {declaration!r}"
        )
    return declaration


def column_options(info: dict[str, Any]) -> ColumnOptions:
    """The options stored in a column's ``info`` (defaults when there are none)."""
    options = info.get(INFO_KEY)
    if options is None:
        return _DEFAULT_OPTIONS
    if not isinstance(options, ColumnOptions):
        raise ConfigurationError(
            f"column info[{INFO_KEY!r}] must come from auditkeeper.audit_column(), got {options!r}"
        )
    return options


_DEFAULT_OPTIONS = ColumnOptions()
