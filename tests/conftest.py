"""Shared fixtures: every storage-facing test runs on SQLite and on PostgreSQL.

PostgreSQL is a throw-away cluster started once per run (``pgcluster.py``), unless
``AUDITKEEPER_TEST_PG_URL`` points at one; each test gets its own schema in it. If
PostgreSQL cannot start, the PostgreSQL tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.demo.crm import Crm, build_crm
from tests.pgcluster import throwaway_cluster

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server for this run (fails, never skips, without one)."""
    given = os.environ.get("AUDITKEEPER_TEST_PG_URL")
    if given:
        yield given
        return
    with throwaway_cluster() as url:
        yield url


class Database:
    """One test's private database: a SQLite file or a PostgreSQL schema."""

    def __init__(self, dialect: str, url: str, connect_args: dict[str, Any]) -> None:
        self.dialect = dialect
        self.url = url
        self.connect_args = connect_args
        self._engines: list[Engine] = []

    def engine(self, **kw: Any) -> Engine:
        """A new engine on this database (several engines = several clients)."""
        engine = create_engine(self.url, connect_args=self.connect_args, **kw)
        auditkeeper.configure_sqlite(engine)
        self._engines.append(engine)
        return engine

    def cli_url(self) -> str:
        """The URL as a command-line ``--db`` takes it (the schema in its query)."""
        url = make_url(self.url).update_query_dict(self.connect_args)
        return url.render_as_string(hide_password=False)

    def async_url(self) -> str:
        if self.dialect == "sqlite":
            return self.url.replace("sqlite://", "sqlite+aiosqlite://", 1)
        return self.url

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()


@pytest.fixture(params=DIALECTS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite", f"sqlite:///{tmp_path / 'test.sqlite3'}", {})
        yield db
        db.dispose()
        return
    yield from _postgresql_schema(request.getfixturevalue("pg_server_url"))


@pytest.fixture
def postgresql_database(pg_server_url: str) -> Iterator[Database]:
    """A private PostgreSQL schema, for what only PostgreSQL has."""
    yield from _postgresql_schema(pg_server_url)


def _postgresql_schema(server: str) -> Iterator[Database]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(
        "postgresql",
        make_url(server).render_as_string(hide_password=False),
        {"options": f"-c search_path={schema}"},
    )
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database: Database) -> Engine:
    return database.engine()


@pytest.fixture
def crm(engine: Engine) -> Crm:
    """The seed's CRM with its tables and audit log created in this test's database."""
    crm = build_crm()
    crm.Base.metadata.create_all(engine)
    crm.keeper.create_all(engine)
    return crm


@pytest.fixture
def audited_sessions(crm: Crm, engine: Engine) -> Iterator[sessionmaker[Session]]:
    """An audited sessionmaker on the CRM database."""
    factory = sessionmaker(engine, expire_on_commit=False)
    installation = crm.keeper.install(factory)
    yield factory
    installation.uninstall()


@pytest.fixture
def users(crm: Crm, engine: Engine) -> list[Any]:
    """Three users: Alice, Bob (support) and Carol."""
    with Session(engine, expire_on_commit=False) as session:
        people = [
            crm.User(email="alice@example.com", full_name="Alice Adams"),
            crm.User(email="bob@example.com", full_name="Bob Brown"),
            crm.User(email="carol@example.com", full_name="Carol Chen"),
        ]
        session.add_all(people)
        session.commit()
        return people
