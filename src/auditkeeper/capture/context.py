"""Actor context: who is making the current changes, and why.

The actor lives in a ``ContextVar``, so each thread and each asyncio task sees its own,
and leaving a ``with acting_as(...)`` block restores exactly what was there before.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ActorError, CaptureError
from ..model import values

__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_EMAIL_LENGTH",
    "MAX_REASON_LENGTH",
    "Actor",
    "acting_as",
    "acting_as_system",
    "actor_columns",
    "current_actor",
    "reset_actor",
    "set_actor",
]

MAX_REASON_LENGTH = 10_000
"""Characters a ``reason`` may have; longer ones are refused, never cut."""

MAX_EMAIL_LENGTH = 320
"""Characters of an e-mail address (64 for the local part, @, 255 for the domain)."""

MAX_CONTEXT_BYTES = 65_536
"""Bytes of the request ``context`` once encoded as JSON."""

_MAX_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the user (None for the system), impersonation, tenant, reason, request."""

    user_id: Any = None
    email: str | None = None
    impersonator_user_id: Any = None
    impersonator_email: str | None = None
    tenant_id: str | None = None
    reason: str | None = None
    context: Mapping[str, Any] | None = field(default=None)
    is_impersonated: bool = False

    def __post_init__(self) -> None:
        impersonated = (
            self.is_impersonated
            or self.impersonator_user_id is not None
            or self.impersonator_email is not None
        )
        object.__setattr__(self, "is_impersonated", impersonated)
        for name, limit in (
            ("email", MAX_EMAIL_LENGTH),
            ("impersonator_email", MAX_EMAIL_LENGTH),
            ("reason", MAX_REASON_LENGTH),
        ):
            _check_text(name, getattr(self, name), limit)
        if self.tenant_id is not None:
            object.__setattr__(self, "tenant_id", _id_text("tenant_id", self.tenant_id))
        for name in ("user_id", "impersonator_user_id"):
            _check_id(name, getattr(self, name))
        if self.context is not None:
            object.__setattr__(self, "context", _checked_context(self.context))

    @property
    def is_system(self) -> bool:
        """True when no user acts (a system action)."""
        return self.user_id is None and self.email is None


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "auditkeeper_actor", default=None
)


def current_actor() -> Actor | None:
    """The actor of this thread or task, or None when nothing was set."""
    return _actor.get()


def set_actor(actor: Actor | None) -> contextvars.Token[Actor | None]:
    """Set the actor until ``reset_actor(token)``: for middleware and job runners."""
    if actor is not None and not isinstance(actor, Actor):
        raise ActorError(f"set_actor takes an Actor or None, got {actor!r}")
    return _actor.set(actor)


def reset_actor(token: contextvars.Token[Actor | None]) -> None:
    """Restore the actor that was current before ``set_actor`` returned ``token``."""
    _actor.reset(token)


@contextlib.contextmanager
def acting_as(
    user_id: Any = None,
    *,
    email: str | None = None,
    impersonator_user_id: Any = None,
    impersonator_email: str | None = None,
    tenant_id: str | int | None = None,
    reason: str | None = None,
    context: Mapping[str, Any] | None = None,
    is_impersonated: bool = False,
) -> Iterator[Actor]:
    """Attribute the changes flushed inside the block to this user.

    ``impersonator_*`` names who is really at the keyboard when a support user acts as
    someone else; the row is then marked ``is_impersonated``.
    """
    actor = Actor(
        user_id=user_id,
        email=email,
        impersonator_user_id=impersonator_user_id,
        impersonator_email=impersonator_email,
        tenant_id=None if tenant_id is None else str(tenant_id),
        reason=reason,
        context=context,
        is_impersonated=is_impersonated,
    )
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


@contextlib.contextmanager
def acting_as_system(
    *,
    reason: str | None = None,
    tenant_id: str | int | None = None,
    context: Mapping[str, Any] | None = None,
) -> Iterator[Actor]:
    """Declare the block's changes a system action (allowed in strict mode)."""
    with acting_as(reason=reason, tenant_id=tenant_id, context=context) as actor:
        yield actor


def _checked_context(context: object) -> Mapping[str, Any]:
    """A read-only JSON snapshot of ``context``: later changes to the caller's dict
    cannot slip past these checks into the log."""
    if not isinstance(context, Mapping):
        raise ActorError(f"context must be a mapping, got {context!r}")
    try:
        snapshot = values.to_json_value(dict(context))
        size = len(values.dumps(snapshot).encode("utf-8"))
    except (CaptureError, UnicodeEncodeError) as error:
        raise ActorError(f"context cannot be stored: {error}") from None
    if size > MAX_CONTEXT_BYTES:
        raise ActorError(f"context is {size} bytes as JSON; the limit is {MAX_CONTEXT_BYTES}")
    _check_texts_within(snapshot)
    return MappingProxyType(snapshot)


def _check_texts_within(value: object) -> None:
    if isinstance(value, str):
        _check_text("context", value, None)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text("context", key, None)
            _check_texts_within(item)
    elif isinstance(value, list):
        for item in value:
            _check_texts_within(item)


def _check_text(name: str, value: object, limit: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ActorError(f"{name} must be a string, got {value!r}")
    if limit is not None and len(value) > limit:
        raise ActorError(f"{name} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise ActorError(f"{name} contains a NUL character, which databases cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ActorError(f"{name} is not valid Unicode text: {error}") from None


def _check_id(name: str, value: object) -> None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ActorError(f"{name} must be a finite id, got {value!r}")
    if isinstance(value, str):
        _check_text(name, value, _MAX_ID_LENGTH)
        return
    if isinstance(value, bool):
        raise ActorError(f"{name} must be an id, not a boolean ({value!r})")


def _id_text(name: str, value: object) -> str:
    text = str(value)
    _check_text(name, text, _MAX_ID_LENGTH)
    return text


def actor_columns(actor: Actor | None) -> dict[str, Any]:
    """The audit row's columns that say who acted (all empty for a system action)."""
    if actor is None:
        return {
            "user_id": None,
            "user_email": None,
            "is_impersonated": False,
            "impersonator_user_id": None,
            "impersonator_email": None,
            "tenant_id": None,
            "reason": None,
            "context": None,
        }
    return {
        "user_id": actor.user_id,
        "user_email": actor.email,
        "is_impersonated": actor.is_impersonated,
        "impersonator_user_id": actor.impersonator_user_id,
        "impersonator_email": actor.impersonator_email,
        "tenant_id": actor.tenant_id,
        "reason": actor.reason,
        "context": None if actor.context is None else values.to_json_value(dict(actor.context)),
    }
