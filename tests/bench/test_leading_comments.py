"""The leading-comments benchmark (bench/leading_comments.py) still runs, once."""

from __future__ import annotations

from bench.leading_comments import FORMS, measure

from tests._support import databases_named


def test_every_form_is_timed_and_the_database_dropped(pg_server_url: str):
    result = measure(pg_server_url, runs=1)
    assert list(result) == list(FORMS) == ["prefix", "behind comments", "behind comments, traced"]
    assert all(micros > 0 for micros in result.values())
    assert databases_named(pg_server_url, "leading_comments_") == 0
