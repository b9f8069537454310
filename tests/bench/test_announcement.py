"""The announcement benchmark (bench/announcement.py) still runs, at a tiny size."""

from __future__ import annotations

from bench.announcement import FORMS, measure

from tests._support import databases_named


def test_every_form_is_timed_and_the_database_dropped(pg_server_url: str):
    result = measure(pg_server_url, runs=1)
    assert list(result) == list(FORMS) == ["none", "prefix", "search"]
    assert all(micros > 0 for micros in result.values())
    assert databases_named(pg_server_url, "announcement_") == 0
