"""Small helpers the tests share."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.capture.trigger_state import watch_engine
from auditkeeper.demo.crm import Crm


class Action(enum.IntEnum):
    """The actions of a test module's one audited class."""

    CREATE = 1
    UPDATE = 2
    DELETE = 3


def log_rows(engine: Engine, keeper: auditkeeper.Auditkeeper) -> list[Any]:
    """Every row of ``keeper``'s log, oldest first."""
    with Session(engine) as session:
        return list(session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)))


def entries(crm: Crm, engine: Engine) -> list[Any]:
    """Every stored audit entry of the seed's CRM, oldest first."""
    return log_rows(engine, crm.keeper)


class StatementCounter:
    """Counts the statements an engine sends that touch a given table."""

    def __init__(self, engine: Engine, table: str) -> None:
        self.engine = engine
        self.table = table
        self.statements: list[tuple[str, bool]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if f"INSERT INTO {self.table} " in statement or f'INSERT INTO "{self.table}"' in statement:
            self.statements.append((statement, executemany))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def __enter__(self) -> StatementCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


POSTGRES_ONLY = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
"""For what only PostgreSQL has (stored procedures, TRUNCATE): runs there, never skips."""


def model_engine(database: Any, metadata: MetaData, keeper: auditkeeper.Auditkeeper) -> Engine:
    """An engine on the test's database, with a test module's own model and its log."""
    engine: Engine = database.engine()
    metadata.create_all(engine)
    keeper.create_all(engine)
    return engine


def model_fixtures(metadata: MetaData, keeper: auditkeeper.Auditkeeper) -> tuple[Any, Any]:
    """The ``engine`` and ``sessions`` fixtures of a test module with its own model, on
    the test's database: ``engine, sessions = model_fixtures(Base.metadata, keeper)``."""

    @pytest.fixture
    def engine(database: Any) -> Engine:
        return model_engine(database, metadata, keeper)

    @pytest.fixture
    def sessions(engine: Engine) -> Iterator[Any]:
        yield from installed_sessions(engine, keeper)

    return engine, sessions


def installed_sessions(engine: Engine, keeper: auditkeeper.Auditkeeper) -> Iterator[Any]:
    """A fixture's body: a session factory audited by ``keeper`` while the test runs."""
    factory = sessionmaker(engine, expire_on_commit=False)
    installation = keeper.install(factory)
    yield factory
    installation.uninstall()


def sent_statements(engine: Engine) -> Iterator[list[str]]:
    """A fixture's body: the statements ``engine`` sends, as sent, after auditkeeper's own
    listeners put their comments (and a carried audit row) in."""
    watch_engine(engine)  # what a session's first transaction does, before this listener
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def databases_named(server_url: str, prefix: str) -> int:
    """How many databases on the server have names starting with ``prefix``: what a
    benchmark that makes its own left behind."""
    engine = create_engine(server_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM pg_database WHERE starts_with(datname, :prefix)")
            return int(connection.execute(query, {"prefix": prefix}).scalar_one())
    finally:
        engine.dispose()


def drop_capture_triggers(engine: Engine, table: str) -> None:
    """As in a database whose triggers were never installed: the bulk path reads the
    rows and logs them from Python."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            found = connection.exec_driver_sql(
                f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
            )
            for (name,) in found.all():
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            found = connection.exec_driver_sql(
                f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{table}'::regclass "
                "AND NOT tgisinternal"
            )
            for (name,) in found.all():
                connection.exec_driver_sql(f'DROP TRIGGER "{name}" ON {table}')
