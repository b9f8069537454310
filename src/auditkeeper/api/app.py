"""``create_app``: the standalone viewer that ``auditkeeper serve`` runs: the JSON API
under ``/api`` and the HTML pages (``auditkeeper.web``) at ``/``, with a strict
Content-Security-Policy on every answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from ..capture.keeper import Auditkeeper
from ..trail.users import UserNames
from .routes import create_router
from .service import SessionSource

__all__ = ["CSP", "create_app"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(
    keeper: Auditkeeper,
    sessions: SessionSource,
    *,
    dependencies: Any = (),
    tenant: Any = None,
    user_names: UserNames | None = None,
    page: bool = True,
) -> FastAPI:
    """A FastAPI app serving ``keeper``'s log read-only: the API at ``/api`` (OpenAPI at
    ``/openapi.json``, docs at ``/docs``) and, unless ``page=False``, the viewer's pages
    at ``/``. ``dependencies``, ``tenant`` and ``user_names`` apply to both."""
    app = FastAPI(title="auditkeeper", version="0.1.0")
    options = {"dependencies": dependencies, "tenant": tenant, "user_names": user_names}
    app.include_router(create_router(keeper, sessions, **options), prefix="/api")
    if page:
        from ..web import create_page_router  # the pages sit beside the API, a layer up

        app.include_router(create_page_router(keeper, sessions, **options))

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith("/docs"):
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return app
