"""The read-only JSON API (FastAPI): ``create_router`` to mount in an application,
``create_app`` for a standalone server. FastAPI is the optional ``web`` extra."""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f'auditkeeper.api needs {error.name}: pip install "auditkeeper[web]"', name=error.name
    ) from None

from .app import CSP, create_app
from .routes import create_router
from .service import LogReader

__all__ = ["CSP", "LogReader", "create_app", "create_router"]
