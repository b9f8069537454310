"""The log writer keeps every value exactly, whichever way the rows travel."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from auditkeeper import StoreError
from auditkeeper.demo.crm import Crm
from auditkeeper.store.writer import write_rows
from tests._support import POSTGRES_ONLY


def _row(**changes) -> dict:
    row = {
        "action": 1,
        "entity_type": 1,
        "number_identifier": 7,
        "entity_key": None,
        "changed_objects": {"previous": None, "current": {"n": 1}, "difference": {"n": [None, 1]}},
        "user_id": None,
        "user_email": "o'brien\u00e9@example.com",
        "is_impersonated": False,
        "context": {"ip": "10.0.0.1", "nested": {"list": [1, "two", None]}},
        "created_at": dt.datetime(2026, 11, 23, 10, 30, 0, 123456, tzinfo=dt.UTC),
        "transaction_id": None,
    }
    return row | changes


def _stored(crm: Crm, engine: Engine) -> list:
    with engine.connect() as connection:
        table = crm.keeper.table
        return list(connection.execute(select(table).order_by(table.c.id)))


def test_values_survive_the_batch(crm: Crm, engine: Engine):
    big = 2**70  # beyond 64 bits: JSON keeps every digit
    hostile = 'quote " backslash \\ newline \n nul-free \u2028 emoji \U0001f600 colon :rows'
    rows = [
        _row(),
        _row(
            number_identifier=None,
            entity_key=hostile,
            changed_objects={"previous": {"big": big}, "current": None, "difference": {}},
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
            context=None,
        ),
    ]
    with engine.begin() as connection:
        write_rows(connection, crm.keeper.table, rows)
    first, second = _stored(crm, engine)
    assert first.user_email == "o'brien\u00e9@example.com"
    assert first.context == {"ip": "10.0.0.1", "nested": {"list": [1, "two", None]}}
    assert first.created_at == rows[0]["created_at"]
    assert second.entity_key == hostile and second.number_identifier is None
    assert second.changed_objects["previous"] == {"big": big}
    assert second.created_at == dt.datetime(2025, 12, 31, 19, 0, tzinfo=dt.UTC)
    assert second.context is None


def test_a_naive_time_is_refused_and_nothing_is_written(crm: Crm, engine: Engine):
    # ValueError from the column type; SQLAlchemy wraps it when it binds the parameters.
    refused = pytest.raises((ValueError, StatementError), match="timezone-aware")
    with refused, engine.begin() as connection:
        write_rows(connection, crm.keeper.table, [_row(created_at=dt.datetime(2026, 1, 1))])
    assert _stored(crm, engine) == []


@POSTGRES_ONLY
def test_settings_are_set_by_the_write_for_the_rest_of_the_transaction(crm: Crm, engine: Engine):
    second = _row(number_identifier=8)
    rows = [_row(), dict(reversed(second.items()))]  # the same columns, in another order
    hostile = 'it\'s "quoted" :value_0 \u00e9'
    with engine.begin() as connection:
        write_rows(connection, crm.keeper.table, rows, settings={"auditkeeper.test": hostile})
        seen = connection.execute(text("SELECT current_setting('auditkeeper.test', true)"))
        assert seen.scalar_one() == hostile
    assert [r.number_identifier for r in _stored(crm, engine)] == [7, 8]
    with engine.connect() as connection:  # transaction-local: gone after commit
        seen = connection.execute(text("SELECT current_setting('auditkeeper.test', true)"))
        assert seen.scalar_one() in (None, "")


def test_a_write_with_settings_stores_its_rows_on_every_dialect(crm: Crm, engine: Engine):
    with engine.begin() as connection:
        write_rows(connection, crm.keeper.table, [_row()], settings={"auditkeeper.test": "x"})
    assert len(_stored(crm, engine)) == 1


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("current", "path"),
    [
        ({"doc": {"a\x00": 1}}, '["current"]["doc"]["a\\u0000"]'),
        ({"doc": ["x", "y\x00"]}, '["current"]["doc"][1]'),
    ],
)
def test_a_nul_jsonb_cannot_hold_is_refused_by_name(
    crm: Crm, engine: Engine, current: dict, path: str
):
    """PostgreSQL's jsonb cannot store U+0000: the error names where it is, and nothing
    is written."""
    changed_objects = {"previous": None, "current": current, "difference": {}}
    with engine.begin() as connection, pytest.raises(StoreError, match="U\\+0000") as refused:
        write_rows(connection, crm.keeper.table, [_row(changed_objects=changed_objects)])
    assert "changed_objects" + path in str(refused.value)
    assert "record 7" in str(refused.value)
    assert _stored(crm, engine) == []


@POSTGRES_ONLY
def test_a_nul_in_a_text_column_of_the_log_is_refused_by_name(crm: Crm, engine: Engine):
    with engine.begin() as connection, pytest.raises(StoreError, match="text") as refused:
        write_rows(connection, crm.keeper.table, [_row(user_email="a\x00b@example.com")])
    assert "user_email holds the character U+0000" in str(refused.value)
    assert _stored(crm, engine) == []


@POSTGRES_ONLY
def test_an_escaped_backslash_u0000_is_stored_as_text(crm: Crm, engine: Engine):
    """A backslash followed by ``u0000`` is text, not the character."""
    current = {"path": "C:\\u0000\\x"}
    with engine.begin() as connection:
        write_rows(
            connection,
            crm.keeper.table,
            [_row(changed_objects={"previous": None, "current": current, "difference": {}})],
        )
    (stored,) = _stored(crm, engine)
    assert stored.changed_objects["current"] == current
