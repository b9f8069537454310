"""The log viewer's HTML pages: ``create_page_router``, served by ``auditkeeper.api``'s
``create_app`` at ``/`` and mountable in an application next to the JSON API.

The pages need FastAPI and Jinja2, the optional ``web`` extra; ``import auditkeeper``
never loads this package.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f'auditkeeper.web needs {error.name}: pip install "auditkeeper[web]"', name=error.name
    ) from None

from .routes import create_page_router

__all__ = ["create_page_router"]
