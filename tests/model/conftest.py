"""Fixtures of the value rules' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text

from tests.conftest import Database


@pytest.fixture
def utc_connection(postgresql_database: Database) -> Iterator[Connection]:
    """A connection to a private PostgreSQL schema, its session in UTC."""
    engine: Engine = postgresql_database.engine()
    with engine.connect() as connection:
        connection.execute(text("SET TIME ZONE 'UTC'"))
        yield connection
