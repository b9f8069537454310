"""Where the benchmarks run PostgreSQL: the server a URL names, or a throw-away cluster
(``tests/pgcluster.py``), and a fresh database on it for each measurement."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text

__all__ = ["fresh_database", "postgresql_server"]


@contextlib.contextmanager
def postgresql_server(url: str | None, *, fsync: bool = False) -> Iterator[str]:
    """``url``, or the URL of a throw-away cluster (``fsync`` on or off) stopped after."""
    if url:
        yield url
        return
    from tests.pgcluster import throwaway_cluster

    with throwaway_cluster(fsync=fsync) as started:
        yield started


@contextlib.contextmanager
def fresh_database(server: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on ``server``, dropped after (its dirty pages written
    at once, not during the next measurement)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text("CHECKPOINT"))
    finally:
        admin.dispose()
