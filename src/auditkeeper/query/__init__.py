"""Reading the log: filters, keyset pages, point-in-time state, field history, export.

``filters.py`` says which rows (``LogFilter``), ``pagination.py`` reads them a page at a
time (``read_page``, ``iter_entries``, ``history``) with ``cursor.py``'s opaque cursors,
``as_of.py`` rebuilds a record at a moment (``as_of``, ``field_history``) and
``export.py`` streams rows to JSON Lines or CSV (``export_log``). Every function takes
the application's ``Session`` or a ``Connection`` and its ``Auditkeeper``.
"""

from __future__ import annotations

from .as_of import FieldChange, RecordState, RecordStatus, as_of, as_of_async, field_history
from .export import EXPORT_COLUMNS, EXPORT_FORMATS, ExportFormat, export_log
from .filters import UNSET, LogFilter
from .pagination import (
    MAX_PAGE_SIZE,
    LogPage,
    history,
    iter_entries,
    read_page,
    read_page_async,
)

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "MAX_PAGE_SIZE",
    "UNSET",
    "ExportFormat",
    "FieldChange",
    "LogFilter",
    "LogPage",
    "RecordState",
    "RecordStatus",
    "as_of",
    "as_of_async",
    "export_log",
    "field_history",
    "history",
    "iter_entries",
    "read_page",
    "read_page_async",
]
