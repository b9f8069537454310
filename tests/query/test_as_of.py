"""A record as of an instant or a transaction, and the history of one field."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditkeeper import (
    EntityHistoryItem,
    QueryError,
    RecordStatus,
    acting_as,
    as_of,
    as_of_async,
    field_history,
    history,
)
from auditkeeper.demo.crm import AuditLogActions, Crm
from tests.conftest import Database

MICRO = dt.timedelta(microseconds=1)


@pytest.fixture
def acme_story(crm: Crm, audited_sessions: sessionmaker[Session], users: list[Any]) -> list[Any]:
    """Acme is created, renamed, given revenue, then deleted: four rows."""
    alice = users[0]
    with acting_as(alice.id, email=alice.email), audited_sessions() as session:
        acme = crm.Business(name="Acme", api_token="sk-1", internal_rank=3)
        session.add(acme)
        session.commit()
        acme.name = "Acme Ltd"
        acme.internal_rank = 4  # excluded: not in the row
        session.commit()
        acme.annual_revenue = decimal.Decimal("1000.00")
        session.commit()
        session.delete(acme)
        session.commit()
        return history(session, crm.keeper, "BUSINESS", acme.id)


def state(bind: Any, crm: Crm, key: Any, **when: Any) -> Any:
    return as_of(bind, crm.keeper, "BUSINESS", key, **when)


def test_before_creation_the_record_is_not_created(
    crm: Crm, engine: Engine, acme_story: list[Any]
) -> None:
    created = acme_story[0]
    with Session(engine) as session:
        before = state(session, crm, created.number_identifier, at=created.created_at - MICRO)
    assert before.status is RecordStatus.NOT_CREATED
    assert before.fields is None
    assert before.entry is None
    assert not before.exists


def test_after_each_change_the_fields_are_those_of_that_moment(
    crm: Crm, engine: Engine, acme_story: list[Any]
) -> None:
    created, renamed, revenue, deleted = acme_story
    key = created.number_identifier
    with Session(engine) as session:
        at_creation = state(session, crm, key, at=created.created_at)
        after_rename = state(session, crm, key, at=renamed.created_at + MICRO)
        after_revenue = state(session, crm, key, at=revenue.created_at)
        after_delete = state(session, crm, key, at=deleted.created_at)
        now = state(session, crm, key)
    assert at_creation.exists
    assert at_creation.fields["name"] == "Acme"
    assert at_creation.entry.id == created.id
    assert after_rename.fields["name"] == "Acme Ltd"
    assert after_rename.fields["annual_revenue"] is None
    assert after_revenue.fields["annual_revenue"] == "1000.00"
    assert after_delete.status is RecordStatus.DELETED
    assert after_delete.fields["name"] == "Acme Ltd"  # its values when it was deleted
    assert after_delete.entry.id == deleted.id
    assert now == after_delete


def test_excluded_columns_are_absent_and_secrets_redacted(
    crm: Crm, engine: Engine, acme_story: list[Any]
) -> None:
    with Session(engine) as session:
        for entry in acme_story:
            found = state(session, crm, entry.number_identifier, at=entry.created_at)
            assert "internal_rank" not in found.fields
            assert found.fields["api_token"] == "[redacted]"
            assert "sk-1" not in str(found.fields)


def test_as_of_a_transaction(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session]
) -> None:
    """Just after a transaction: its own changes included, later ones not, also for a
    record the transaction did not touch."""
    with audited_sessions() as session:
        jane = crm.Lead(name="Jane")
        john = crm.Lead(name="John")
        session.add_all([jane, john])
        session.commit()
        jane.score = 10
        session.flush()
        jane.score = 20  # a second flush of the same transaction
        session.commit()
        john.score = 30
        session.commit()
        jane.score = 40
        session.commit()
        rows = history(session, crm.keeper, "LEAD", jane.id)
    second = rows[1].transaction_id
    assert rows[2].transaction_id == second
    with Session(engine) as session:
        jane_then = as_of(session, crm.keeper, "LEAD", jane.id, transaction_id=second)
        john_then = as_of(session, crm.keeper, "LEAD", john.id, transaction_id=str(second))
    assert jane_then.fields["score"] == 20
    assert jane_then.entry.id == rows[2].id
    assert john_then.fields["score"] == 0  # before John's own update


def test_an_unknown_transaction_and_bad_arguments_are_errors(crm: Crm, engine: Engine) -> None:
    with Session(engine) as session:
        with pytest.raises(QueryError, match="no audit row has transaction_id"):
            as_of(session, crm.keeper, "LEAD", 1, transaction_id="0" * 32)
        with pytest.raises(QueryError, match="'nope' is not a UUID"):
            as_of(session, crm.keeper, "LEAD", 1, transaction_id="nope")
        with pytest.raises(QueryError, match="must be a timezone-aware datetime"):
            as_of(session, crm.keeper, "LEAD", 1, at=dt.datetime(2026, 1, 1))
        with pytest.raises(QueryError, match="not both"):
            as_of(
                session,
                crm.keeper,
                "LEAD",
                1,
                at=dt.datetime.now(dt.UTC),
                transaction_id="0" * 32,
            )


def test_rows_written_by_sql_procedures_patch_the_fields(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session]
) -> None:
    """Procedure rows carry only a difference: the state is the last snapshot, patched."""
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane", score=1)
        session.add(lead)
        session.commit()
        key = lead.id
    keeper = crm.keeper
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    def change(change_type: int, minutes: int, **item: Any) -> None:
        with engine.begin() as connection:
            keeper.add_entity_history_events(
                connection,
                [EntityHistoryItem(change_type, key, "Lead", **item)],
                change_time=later + dt.timedelta(minutes=minutes),
            )

    change(1, 1, property_name="score", old_value="1", new_value="99")
    change(1, 2, property_name="name", old_value="Jane", new_value="Janet")
    change(2, 3, description="Purged by the nightly job")
    with Session(engine) as session:
        patched = as_of(session, keeper, "LEAD", key, at=later + dt.timedelta(minutes=2))
        deleted = as_of(session, keeper, "LEAD", key)
    assert patched.exists
    assert patched.fields["score"] == 99
    assert patched.fields["name"] == "Janet"
    assert patched.fields["status"] == "new"  # from the ORM snapshot
    assert deleted.status is RecordStatus.DELETED
    assert deleted.fields["name"] == "Janet"


def test_a_record_known_only_from_sql_procedures(crm: Crm, engine: Engine) -> None:
    keeper = crm.keeper
    with engine.begin() as connection:
        keeper.add_entity_history_events(
            connection,
            [
                EntityHistoryItem(0, 77, "Lead", property_name="name", new_value="Imported"),
                EntityHistoryItem(
                    1, 77, "Lead", property_name="score", old_value="0", new_value="5"
                ),
            ],
        )
    with Session(engine) as session:
        found = as_of(session, keeper, "LEAD", 77)
    assert found.exists
    assert dict(found.fields) == {"name": "Imported", "score": 5}


def test_a_custom_event_changes_nothing(crm: Crm, engine: Engine, audited_sessions: Any) -> None:
    """An event row (no previous, current or difference) shows the record exists, and
    leaves its fields as they were."""
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.commit()
        key = lead.id
    table = crm.keeper.table
    with engine.begin() as connection:
        for number in (key, 555):
            connection.execute(
                table.insert().values(
                    action=int(AuditLogActions.LEAD_UPDATE),
                    entity_type=2,
                    number_identifier=number,
                    changed_objects={
                        "previous": None,
                        "current": None,
                        "difference": {},
                        "event": {"name": "Called", "description": "She wants a demo"},
                    },
                    created_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
                )
            )
    with Session(engine) as session:
        jane = as_of(session, crm.keeper, "LEAD", key)
        unknown = as_of(session, crm.keeper, "LEAD", 555)
    assert jane.fields["name"] == "Jane"
    assert jane.entry.changed_objects["event"]["name"] == "Called"
    assert unknown.exists
    assert dict(unknown.fields) == {}


def test_a_comment_whose_creation_was_not_audited(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session]
) -> None:
    """The seed audits comment updates, not creation: the first row is an update whose
    ``previous`` already shows the comment."""
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.commit()
        comment = crm.Comment(lead_id=lead.id, body="first")
        session.add(comment)
        session.commit()
        comment.body = "second"
        session.commit()
        rows = history(session, crm.keeper, "COMMENT", comment.id)
    assert len(rows) == 1
    with Session(engine) as session:
        before = as_of(session, crm.keeper, "COMMENT", comment.id, at=rows[0].created_at - MICRO)
        after = as_of(session, crm.keeper, "COMMENT", comment.id)
    assert before.status is RecordStatus.NOT_CREATED
    assert after.fields["body"] == "second"


def test_a_long_history_is_read_only_back_to_the_last_snapshot(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session]
) -> None:
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.commit()
        for score in range(1, 60):
            lead.score = score
            session.commit()
        rows = history(session, crm.keeper, "LEAD", lead.id)
    with Session(engine) as session:
        for entry in rows[::7]:
            found = as_of(session, crm.keeper, "LEAD", lead.id, at=entry.created_at)
            assert found.fields["score"] == entry.current["score"]
            assert found.entry.id == entry.id


def test_field_history(crm: Crm, engine: Engine, acme_story: list[Any]) -> None:
    key = acme_story[0].number_identifier
    with Session(engine) as session:
        names = field_history(session, crm.keeper, "BUSINESS", key, "name")
        revenue = field_history(
            session, crm.keeper, "BUSINESS", key, "annual_revenue", newest_first=True
        )
    assert [(c.old, c.new) for c in names] == [
        (None, "Acme"),
        ("Acme", "Acme Ltd"),
        ("Acme Ltd", None),
    ]
    assert [c.entry.id for c in names] == [acme_story[0].id, acme_story[1].id, acme_story[3].id]
    assert names[0].at == acme_story[0].created_at
    assert [(c.old, c.new) for c in revenue] == [("1000.00", None), (None, "1000.00")]
    with Session(engine) as session:
        assert field_history(session, crm.keeper, "BUSINESS", key, "internal_rank") == []


def test_as_of_async(crm: Crm, database: Database, acme_story: list[Any]) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    renamed = acme_story[1]

    async def main() -> Any:
        async_engine = create_async_engine(database.async_url(), connect_args=database.connect_args)
        try:
            async with AsyncSession(async_engine) as session:
                return await as_of_async(
                    session,
                    crm.keeper,
                    "business",
                    renamed.number_identifier,
                    at=renamed.created_at,
                )
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()).fields["name"] == "Acme Ltd"
