"""The announcement benchmark (bench/announcement.py) still runs, at a tiny size."""

from __future__ import annotations

from bench.announcement import FORMS, measure
from sqlalchemy import create_engine, text


def test_every_form_is_timed_and_the_database_dropped(pg_server_url: str):
    result = measure(pg_server_url, runs=1)
    assert list(result) == list(FORMS) == ["none", "prefix", "search"]
    assert all(micros > 0 for micros in result.values())
    engine = create_engine(pg_server_url)
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM pg_database WHERE datname LIKE 'announcement_%'")
        ).scalar_one()
    engine.dispose()
    assert left == 0
