"""The compression benchmark (bench/compression.py) still runs, at a tiny size."""

from __future__ import annotations

from bench.compression import METHODS, measure
from sqlalchemy import create_engine, text


def test_both_methods_are_timed_and_used(pg_server_url: str):
    result = measure(pg_server_url, repeat=2, size=5)
    assert list(result) == list(METHODS)
    for method, found in result.items():
        assert len(found["seconds"]) == 2
        assert found["used"] == [method]  # every document past the TOAST threshold
        assert found["bytes"] > 1000
    engine = create_engine(pg_server_url)
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM pg_database WHERE datname LIKE 'compression_%'")
        ).scalar_one()
    engine.dispose()
    assert left == 0
