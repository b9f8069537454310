"""Alembic support: install or refresh auditkeeper's database objects in a migration.

::

    # in a migration's upgrade(), after the tables exist
    from myapp.audit import keeper
    from auditkeeper.migrations import install

    def upgrade() -> None:
        install(op, keeper)

The audit tables themselves are ordinary tables in the application's ``MetaData``, so
autogenerate writes them. What it cannot see (the append-only triggers and, on
PostgreSQL, the history procedures and the list of audited classes they read) is
installed here, with the trail's indexes for related records; every statement replaces
(or skips) what exists, so running ``install`` again in a later migration refreshes them
after an upgrade of auditkeeper or a new related-record option.
"""

from __future__ import annotations

from typing import Any

from .capture.history import publish_entities
from .capture.keeper import Auditkeeper
from .trail import trail_index_statements

__all__ = ["install"]


def install(op: Any, keeper: Auditkeeper) -> None:
    """Install or refresh the triggers (and PostgreSQL procedures) with Alembic's ``op``."""
    connection = op.get_bind()
    for statement in keeper.trigger_sql(connection.dialect.name):
        op.execute(statement)
    if connection.dialect.name == "postgresql":
        publish_entities(keeper._recorder, connection)
    for statement in trail_index_statements(keeper, connection.dialect.name):
        op.execute(statement)
