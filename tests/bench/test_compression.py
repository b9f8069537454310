"""The compression benchmark (bench/compression.py) still runs, at a tiny size."""

from __future__ import annotations

from bench.compression import METHODS, measure

from tests._support import databases_named


def test_both_methods_are_timed_and_used(pg_server_url: str):
    result = measure(pg_server_url, repeat=2, size=5)
    assert list(result) == list(METHODS)
    for method, found in result.items():
        assert len(found["seconds"]) == 2
        assert found["used"] == [method]  # every document past the TOAST threshold
        assert found["bytes"] > 1000
    assert databases_named(pg_server_url, "compression_") == 0
