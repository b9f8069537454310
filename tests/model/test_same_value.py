"""``sql_values.same_value_expression`` for arrays whose items are no exact twins (a
stored array is compared with a document's item by item, as the items' type) and for
times with a zone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import ARRAY, Column, Connection, DateTime, Numeric, Time, text
from sqlalchemy.dialects import postgresql

from auditkeeper.model.sql_values import same_value_expression
from auditkeeper.model.values import dumps


@pytest.mark.parametrize(
    ("item_type", "written", "stored", "same"),
    [
        (Numeric(10, 2), ["9.5", None], "{9.50,NULL}", True),
        (Numeric(10, 2), ["9.5"], "{9.51}", False),
        (Numeric(10, 2), ["9.5"], "{9.50,1}", False),  # one item more
        (Numeric(10, 2), [], "{}", True),
        (Numeric(10, 2), None, None, True),
        (Numeric(10, 2), [], None, False),  # an empty array is no NULL
        (Numeric(10, 2), None, "{}", False),
        (Numeric(10, 2), ["1"], "{{1},{2}}", True),  # two dimensions: not compared
        (
            DateTime(timezone=True),
            ["2024-01-01T10:00:00+01:00"],
            "{2024-01-01 09:00:00+00}",
            True,
        ),
        (DateTime(timezone=True), ["2024-01-01T10:00:00+01:00"], "{2024-01-01 10:00:00+00}", False),
        # An offset PostgreSQL cannot read is left uncompared rather than failing.
        (DateTime(timezone=True), ["2024-01-01T10:00:00+18:00"], "{2000-01-01 00:00:00+00}", True),
    ],
)
def test_an_array_is_compared_item_by_item(
    utc_connection: Connection, item_type: Any, written: Any, stored: Any, same: bool
) -> None:
    array = ARRAY(item_type)
    name = array.compile(dialect=postgresql.dialect())
    condition = same_value_expression(
        "CAST(:written AS jsonb)", f"CAST(:stored AS {name})", Column("c", array)
    )
    query = text(f"SELECT {condition}")
    parameters = {"written": dumps(written), "stored": stored}
    assert utc_connection.execute(query, parameters).scalar_one() is same


@pytest.mark.parametrize(
    ("written", "stored", "same"),
    [
        ("09:30:00+01:30", "09:30:00+01:30", True),
        ("09:30:00+01:30", "09:31:00+01:30", False),
        (None, "09:30:00+01:30", False),
        (None, None, True),
        # An offset PostgreSQL cannot read is left uncompared rather than failing.
        ("09:30:00+18:00", "00:00:00+00", True),
    ],
)
def test_a_time_with_a_zone_is_compared_as_one(
    utc_connection: Connection, written: Any, stored: Any, same: bool
) -> None:
    condition = same_value_expression(
        "CAST(:written AS jsonb)", "CAST(:stored AS timetz)", Column("c", Time(timezone=True))
    )
    query = text(f"SELECT {condition}")
    parameters = {"written": dumps(written), "stored": stored}
    assert utc_connection.execute(query, parameters).scalar_one() is same
