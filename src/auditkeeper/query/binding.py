"""Queries take what the application has: a ``Session`` or a ``Connection``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from ..capture.keeper import Auditkeeper

__all__ = ["Bind", "dialect_name", "orm_session"]

Bind: TypeAlias = "Session | Connection"
"""Where a query runs: the application's session, or a Core connection."""


def dialect_name(bind: Bind, keeper: Auditkeeper) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database that holds ``keeper``'s log."""
    if isinstance(bind, Session):
        return bind.get_bind(mapper=inspect(keeper.Entry)).dialect.name
    return bind.dialect.name


@contextlib.contextmanager
def orm_session(bind: Bind) -> Iterator[Session]:
    """``bind`` itself, or a short-lived session on the connection (which stays open, in
    whatever transaction it was), to load ``keeper.Entry`` objects."""
    if isinstance(bind, Session):
        yield bind
        return
    with Session(bind=bind) as session:
        yield session
