"""Rendering the page: Jinja2 templates with autoescape on, and the static files.

Every value an audit log holds is someone's input (a lead's name, a reason, an
e-mail), so every template escapes everything: ``autoescape=True`` for every template
whatever its name, and no template marks a value ``|safe``. Undefined names are
errors (``StrictUndefined``), so a template mistake fails the tests instead of
printing an empty cell.

Each answer carries the same Content-Security-Policy as ``create_app``'s, so the page
is as strict when an application mounts the router in its own app: scripts and styles
come from this router's ``static/`` files only, never inline.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, Response

from ..api.app import CSP

__all__ = ["SECURITY_HEADERS", "STATIC_FILES", "render", "static_file"]

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # audit data stays out of shared and disk caches
}

STATIC_FILES = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""The page's files under ``static/``, with their media types; nothing else is served."""

_ENVIRONMENT = Environment(
    loader=PackageLoader("auditkeeper.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """The HTML answer of ``template`` with ``context``, with the security headers."""
    html = _ENVIRONMENT.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def static_file(name: str) -> Response | None:
    """One of ``STATIC_FILES``, or None for any other name."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return None
    content = (files("auditkeeper.web") / "static" / name).read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(content, media_type=media_type, headers=headers)
