"""The audit trail: a record's rows as Type of event, Description, User and Date.

It implements the Shesha entity-history rules of the seed document on top of the
audit log: ``render.py`` turns one audit row into texts, ``values.py`` prints stored
values, ``related.py`` brings in related records, ``log.py`` reads the rows, ``indexes.py``
serves the lookups of related records, ``options.py`` checks the declarations,
``users.py`` names users, ``builder.py`` is ``trail()``.
"""

from __future__ import annotations

from .builder import SORT_FIELDS, TrailPage, TrailRow, trail, trail_async
from .indexes import create_trail_indexes, trail_index_statements
from .render import RowKind
from .users import UserNames

__all__ = [
    "SORT_FIELDS",
    "RowKind",
    "TrailPage",
    "TrailRow",
    "UserNames",
    "create_trail_indexes",
    "trail",
    "trail_async",
    "trail_index_statements",
]
