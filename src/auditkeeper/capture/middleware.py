"""ASGI middleware: every request runs with the actor the application resolves for it.

Plain ASGI, so it works with FastAPI and Starlette (and any ASGI framework) without
importing either::

    async def actor_for(scope):           # read the session, a JWT, a header...
        user = await current_user(scope)
        return auditkeeper.Actor(user_id=user.id, email=user.email,
                                 context={"request_id": ...})

    app.add_middleware(auditkeeper.ActorMiddleware, resolve=actor_for)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any

from .context import Actor, reset_actor, set_actor

__all__ = ["ActorMiddleware"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
Resolver = Callable[[Scope], Awaitable[Actor | None]]


class ActorMiddleware:
    """Sets the actor that ``resolve(scope)`` returns for the duration of each request.

    Requests for which it returns None are system actions (or refused in strict
    mode). With ``include_request_context`` (the default) the client address, user
    agent and ``x-request-id`` header are added to the actor's ``context``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolve: Resolver,
        include_request_context: bool = True,
    ) -> None:
        self.app = app
        self.resolve = resolve
        self.include_request_context = include_request_context

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        actor = await self.resolve(scope)
        if actor is not None and self.include_request_context:
            actor = _with_request_context(actor, scope)
        token = set_actor(actor)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_actor(token)


MAX_REQUEST_VALUE_LENGTH = 1_000
"""Characters kept of each request detail (path, user agent, request id): clients choose
these, and no client may make a request fail or bloat the log through them."""


def _with_request_context(actor: Actor, scope: Scope) -> Actor:
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
    }
    details = {
        "ip": (scope.get("client") or (None,))[0],
        "user_agent": headers.get("user-agent"),
        "request_id": headers.get("x-request-id"),
        "path": scope.get("path"),
        "method": scope.get("method"),
    }
    request = {key: _clean(value) for key, value in details.items() if value is not None}
    return replace(actor, context={**request, **dict(actor.context or {})})


def _clean(value: object) -> str:
    """Text a database can store: no NUL, no lone surrogates, at most the limit."""
    text = str(value).replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:MAX_REQUEST_VALUE_LENGTH]
