"""The page's URLs, relative to wherever the application mounted the router.

Links are built from the router's own root path (``/`` in ``create_app``, ``/audit/``
when mounted with that prefix), never from the request's host, so they stay right
behind a proxy. A record key is percent-encoded as one path segment: a key holding
``/``, ``?`` or ``#`` still names its record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

__all__ = ["Links"]


@dataclass(frozen=True)
class Links:
    """URLs under ``root`` (which ends with ``/``)."""

    root: str

    def logs(self, params: Mapping[str, str | int] | None = None) -> str:
        """The log table, with these query parameters."""
        return self.root + _query(params)

    def entry(self, entry_id: int) -> str:
        """One log's difference."""
        return f"{self.root}logs/{entry_id}"

    def trail(
        self, entity_type: str, key: str, params: Mapping[str, str | int] | None = None
    ) -> str:
        """A record's audit trail."""
        path = f"records/{quote(entity_type, safe='')}/{quote(key, safe='')}"
        return self.root + path + _query(params)

    def static(self, name: str) -> str:
        return f"{self.root}static/{name}"


def _query(params: Mapping[str, str | int] | None) -> str:
    return f"?{urlencode(params)}" if params else ""
