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
from .model.statements import execute_text
from .trail import trail_index_statements

__all__ = ["install"]


def install(op: Any, keeper: Auditkeeper) -> None:
    """Install or refresh the triggers (and PostgreSQL procedures) with Alembic's ``op``.

    The statements go to the migration's connection as they are, not through
    ``op.execute``, whose ``text()`` would read a ``:`` in a table's name as a
    parameter."""
    connection = op.get_bind()
    for statement in keeper.trigger_sql(connection.dialect.name):  # already as sent
        connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
    if connection.dialect.name == "postgresql":
        publish_entities(keeper._recorder, connection)
    for statement in trail_index_statements(keeper, connection.dialect.name):
        execute_text(connection, statement)
