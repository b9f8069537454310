"""The audit tables' column types: created_at as fixed-width UTC text on SQLite."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy.dialects import sqlite

from auditkeeper.model.types import UTCDateTime, utc_iso

BIND = UTCDateTime().bind_processor(sqlite.dialect())


def test_every_row_of_a_flush_binds_the_same_text() -> None:
    moment = dt.datetime(2026, 11, 23, 12, 0, 0, 5, tzinfo=dt.UTC)
    assert [BIND(moment) for _ in range(3)] == ["2026-11-23T12:00:00.000005+00:00"] * 3


def test_equal_datetimes_that_are_different_instants_bind_their_own_text() -> None:
    """Remembering the last text by equality would give the second one the first's."""
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    first = dt.datetime(2026, 10, 25, 2, 30, tzinfo=berlin)  # the hour that repeats
    second = first.replace(fold=1)
    assert first == second
    assert BIND(first) == "2026-10-25T00:30:00.000000+00:00" == utc_iso(first)
    assert BIND(second) == "2026-10-25T01:30:00.000000+00:00" == utc_iso(second)
    assert BIND(first) == "2026-10-25T00:30:00.000000+00:00"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        BIND(dt.datetime(2026, 1, 1))
