"""What the templates are given: values, field rows and the forms' readings, without a
browser."""

from __future__ import annotations

import datetime as dt

import pytest

from auditkeeper.api.params import BadInputError
from auditkeeper.web.forms import _through_the_day, read_trail_query
from auditkeeper.web.links import Links
from auditkeeper.web.views import FieldRow, Shown, field_rows, shown, when


def test_values_read_as_json_and_null_reads_apart_from_text() -> None:
    assert shown(None) == Shown("null", "null")
    assert shown("null") == Shown("null", "text")
    assert shown("<b>") == Shown("<b>", "text")  # escaping is the template's job
    assert shown(True) == Shown("true", "json")
    assert shown(40) == Shown("40", "json")
    assert shown({"b": 1, "a": [1, "x"]}) == Shown('{"a":[1,"x"],"b":1}', "json")


def test_an_update_shows_every_field_and_marks_the_changed_ones() -> None:
    rows = field_rows(
        {"id": 1, "name": "Jane", "score": 0},
        {"id": 1, "name": "Jane", "score": 40},
        {"score": [0, 40]},
    )
    assert rows == [
        FieldRow("id", Shown("1", "json"), Shown("1", "json"), changed=False),
        FieldRow("name", Shown("Jane", "text"), Shown("Jane", "text"), changed=False),
        FieldRow("score", Shown("0", "json"), Shown("40", "json"), changed=True),
    ]


def test_a_creation_has_no_before_and_a_deletion_no_after() -> None:
    created = field_rows(None, {"id": 1, "email": None}, {"id": [None, 1]})
    assert [(r.name, r.before, r.after, r.changed) for r in created] == [
        ("id", None, Shown("1", "json"), True),
        ("email", None, Shown("null", "null"), False),
    ]
    deleted = field_rows({"id": 1}, None, {"id": [1, None]})
    assert [(r.before, r.after) for r in deleted] == [(Shown("1", "json"), None)]


def test_a_procedure_row_shows_its_difference_on_both_sides() -> None:
    rows = field_rows(None, None, {"IsLocked": [True, False]})
    assert rows == [FieldRow("IsLocked", Shown("true", "json"), Shown("false", "json"), True)]


def test_times_say_utc() -> None:
    moment = dt.datetime(2026, 3, 1, 14, 30, 5, 999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert when(moment) == "2026-03-01 12:30:05 UTC"


def test_a_date_until_includes_that_day() -> None:
    assert _through_the_day("2026-02-28") == "2026-03-01"
    assert _through_the_day("2026-03-01T12:00") == "2026-03-01T12:00"  # a time stays
    assert _through_the_day("9999-12-31") is None
    assert _through_the_day("soon") == "soon"  # parse_instant names the mistake


def test_trail_queries_are_checked() -> None:
    query = read_trail_query({"sort": "user", "skip": "10", "limit": "10", "search": " x "})
    assert (query.sort, query.skip, query.limit, query.search) == ("user", 10, 10, "x")
    with pytest.raises(BadInputError) as error:
        read_trail_query({"skip": "2000000"})
    assert error.value.param == "skip"


def test_links_encode_a_key_as_one_segment() -> None:
    links = Links("/audit/")
    assert links.trail("LEAD", "a/b?c#d", {"q": "x y"}) == "/audit/records/LEAD/a%2Fb%3Fc%23d?q=x+y"
    assert links.logs() == "/audit/" and links.entry(7) == "/audit/logs/7"
