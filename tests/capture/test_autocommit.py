"""A connection in AUTOCOMMIT commits each statement alone. A change made there still
commits with its audit row, once, in the actor's name (capture/trigger_state.py): a
flush or an audited bulk statement in one transaction begun for it and committed with
its rows, a raw change in one of its own. What is not a change stays outside."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.demo.crm import AuditLogActions, Crm
from auditkeeper.errors import StoreError
from tests._support import drop_capture_triggers, entries, installed_sessions

ANN = 1
"""The first of the ``users`` fixture's people, who acts in these tests."""


@pytest.fixture
def autocommit(engine: Engine, users: list[Any]) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@pytest.fixture
def sessions(crm: Crm, autocommit: Engine) -> Iterator[sessionmaker[Session]]:
    yield from installed_sessions(autocommit, crm.keeper)


def seed(crm: Crm, engine: Engine, *names: str) -> None:
    with Session(engine) as session:
        session.add_all(crm.Business(id=n, name=name) for n, name in enumerate(names, 1))
        session.commit()


def refuse_audit_rows_of(engine: Engine, record: int) -> None:
    """From now on the log refuses any row about business ``record``."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_record BEFORE INSERT ON audit_log "
                f"WHEN NEW.number_identifier = {record} "
                "BEGIN SELECT RAISE(ABORT, 'log refuses the record'); END"
            )
        else:
            connection.exec_driver_sql(
                "ALTER TABLE audit_log ADD CONSTRAINT refuse_record "
                f"CHECK (number_identifier <> {record}) NOT VALID"
            )


def names(crm: Crm, engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(crm.Business.name).order_by(crm.Business.id)))


def test_each_change_of_a_flush_is_logged_once_in_the_actors_name(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """Two records changed in one flush (on PostgreSQL each UPDATE used to commit
    before its row, and its check at commit logged it again without the actor)."""
    seed(crm, engine, "A", "B")
    with auditkeeper.acting_as(ANN, email="ann@example.com"), sessions() as session:
        a, b = session.get(crm.Business, 1), session.get(crm.Business, 2)
        a.name, b.name = "A2", "B2"
        session.flush()
        a.name = "A3"  # a one-record flush
        session.commit()
    logged = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.changed_objects["difference"]) for e in logged] == [
        (1, {"name": ["A", "A2"]}),
        (2, {"name": ["B", "B2"]}),
        (1, {"name": ["A2", "A3"]}),
    ]
    assert {(e.user_id, e.user_email, e.context) for e in logged} == {
        (ANN, "ann@example.com", None)
    }
    # Each flush was a transaction of its own, as AUTOCOMMIT makes each statement.
    assert logged[0].transaction_id == logged[1].transaction_id != logged[2].transaction_id


def test_a_flush_is_committed_when_it_returns(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """What AUTOCOMMIT promises: a session closed without commit() keeps its flushes."""
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.add(crm.Business(id=1, name="Kept"))
        session.flush()
    assert names(crm, engine) == ["Kept"]
    assert [e.number_identifier for e in entries(crm, engine)] == [1]


def test_a_change_whose_row_is_refused_is_not_stored(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """Fail closed: the log refuses the second record's row, and the flush's changes,
    committed alone before, are rolled back with it; the connection works on."""
    seed(crm, engine, "A", "B")
    refuse_audit_rows_of(engine, 2)
    with auditkeeper.acting_as(ANN), sessions() as session:
        a, b = session.get(crm.Business, 1), session.get(crm.Business, 2)
        a.name, b.name = "A2", "B2"
        # SQLite: the flush's own row (StoreError); PostgreSQL: the statement trigger's,
        # for the merged UPDATE (the statement's error). Either names the refusal.
        refused = DBAPIError if engine.dialect.name == "postgresql" else StoreError
        with pytest.raises(refused, match="refuse"):
            session.flush()
        session.rollback()
        session.get(crm.Business, 1).name = "A3"
        session.commit()
    assert names(crm, engine) == ["A3", "B"]
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [e.changed_objects["difference"] for e in updates] == [{"name": ["A", "A3"]}]


def test_a_flush_failing_midway_leaves_nothing(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """The flush's second statement (the lead's INSERT) breaks a foreign key: the
    first (the business's), committed alone before, is rolled back with it, and no row
    of either is logged."""
    seed(crm, engine, "A")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.add_all([crm.Business(id=2, name="New"), crm.Lead(name="L", business_id=99)])
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
    assert names(crm, engine) == ["A"]
    assert [e.number_identifier for e in entries(crm, engine)] == [1]


def test_raw_sql_is_logged_in_the_actors_name_and_the_actor_does_not_linger(
    crm: Crm, engine: Engine, database: Any, sessions: sessionmaker[Session]
):
    seed(crm, engine, "A", "B")
    with auditkeeper.acting_as(ANN, email="ann@example.com"), sessions() as session:
        session.execute(text("UPDATE businesses SET name = 'A2' WHERE id = 1"))
        session.execute(text("UPDATE businesses SET name = 'B2' WHERE id = 2"))
    other = database.engine()  # another program, which tells the triggers nothing
    with other.begin() as connection:
        connection.execute(text("UPDATE businesses SET name = 'A3' WHERE id = 1"))
    other.dispose()
    logged = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.user_id, e.user_email) for e in logged] == [
        (1, ANN, "ann@example.com"),
        (2, ANN, "ann@example.com"),
        (1, None, None),
    ]
    assert logged[0].transaction_id != logged[1].transaction_id


@pytest.mark.parametrize(
    "statement",
    [
        "/* nightly job */ UPDATE businesses SET name = 'A2' WHERE id = 1",
        "WITH chosen AS (SELECT 1 AS id) UPDATE businesses SET name = 'A2' "
        "WHERE id IN (SELECT id FROM chosen)",
    ],
)
def test_raw_sql_behind_comments_or_a_cte_gets_its_transaction(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session], statement: str
):
    seed(crm, engine, "A")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.execute(text(statement))
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.user_id) for e in updates] == [(1, ANN)]


def test_a_failed_raw_change_is_rolled_back_and_the_connection_works_on(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    seed(crm, engine, "A", "B")
    with auditkeeper.acting_as(ANN), sessions() as session:
        with pytest.raises(IntegrityError):
            session.execute(text("UPDATE businesses SET id = 2 WHERE id = 1"))
        session.execute(text("UPDATE businesses SET name = 'B2' WHERE id = 2"))
    assert names(crm, engine) == ["A", "B2"]
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.user_id) for e in updates] == [(2, ANN)]


def test_a_bulk_statement_is_logged_in_the_actors_name(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    seed(crm, engine, "A", "B")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.execute(update(crm.Business).values(is_active=False))
        session.execute(update(crm.Business), [{"id": 1, "name": "A2"}, {"id": 2, "name": "B2"}])
    logged = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert sorted(
        (e.number_identifier, tuple(e.changed_objects["difference"])) for e in logged
    ) == [(1, ("is_active",)), (1, ("name",)), (2, ("is_active",)), (2, ("name",))]
    assert {e.user_id for e in logged} == {ANN}


def test_what_is_not_a_change_runs_outside_any_transaction(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """VACUUM refuses to run inside a transaction: auditkeeper begins none for it, even
    under an actor and right after a change."""
    seed(crm, engine, "A")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.get(crm.Business, 1).name = "A2"
        session.flush()
        session.execute(text("VACUUM"))
        assert session.scalars(select(crm.Business.name)).all() == ["A2"]
    assert len(entries(crm, engine)) == 2


def test_a_transaction_of_the_applications_own_is_left_to_it(
    crm: Crm, engine: Engine, autocommit: Engine, sessions: sessionmaker[Session]
):
    """A BEGIN the application sends itself on an AUTOCOMMIT connection: its changes
    and their rows commit at its COMMIT, not before."""
    seed(crm, engine, "A", "B")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.execute(text("BEGIN"))
        session.execute(text("UPDATE businesses SET name = 'A2' WHERE id = 1"))
        a = session.get(crm.Business, 2)
        a.name = "B2"
        session.flush()
        with engine.connect() as other:  # nothing is visible outside yet
            assert other.scalars(text("SELECT name FROM businesses ORDER BY id")).all() == [
                "A",
                "B",
            ]
        session.execute(text("COMMIT"))
    assert names(crm, engine) == ["A2", "B2"]
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    # The raw change is logged by its trigger at commit, after the flush's row.
    assert sorted((e.number_identifier, e.user_id) for e in updates) == [(1, ANN), (2, ANN)]


def in_an_async_session(
    crm: Crm, database: Any, work: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run ``work`` in Ann's name, in an audited async session on an AUTOCOMMIT engine
    (psycopg's and aiosqlite's connections as SQLAlchemy adapts them)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    async def scenario() -> None:
        async_engine = create_async_engine(
            database.async_url(), connect_args=database.connect_args, isolation_level="AUTOCOMMIT"
        )
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = crm.keeper.install(factory)
        try:
            with auditkeeper.acting_as(ANN):
                async with factory() as session:
                    await work(session)
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(scenario())


def test_an_async_session_in_autocommit(crm: Crm, engine: Engine, database: Any, users: list[Any]):
    seed(crm, engine, "A", "B")

    async def rename(session: AsyncSession) -> None:
        a = await session.get(crm.Business, 1)
        b = await session.get(crm.Business, 2)
        assert a is not None and b is not None
        a.name, b.name = "A2", "B2"
        await session.flush()

    in_an_async_session(crm, database, rename)
    assert names(crm, engine) == ["A2", "B2"]
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.user_id, e.context) for e in updates] == [
        (1, ANN, None),
        (2, ANN, None),
    ]


def test_changes_that_return_rows(
    crm: Crm, engine: Engine, database: Any, sessions: sessionmaker[Session]
):
    """RETURNING rows are read after the statement's hooks, and SQLite cannot commit
    before they are: the statement still runs, and is logged in the actor's name, and
    the actor does not outlive it."""
    with auditkeeper.acting_as(ANN), sessions() as session:
        raw = session.execute(
            text("INSERT INTO businesses (id, name, is_active) VALUES (1, 'A', true) RETURNING id")
        )
        assert raw.scalars().all() == [1]
        bulk = session.execute(
            insert(crm.Business).returning(crm.Business.id),
            [{"id": 2, "name": "B"}, {"id": 3, "name": "C"}],
        )
        assert sorted(bulk.scalars()) == [2, 3]
        changed = session.execute(
            update(crm.Business)
            .where(crm.Business.id == 1)
            .values(name="A2")
            .returning(crm.Business.name)
        )
        assert changed.scalars().all() == ["A2"]
    other = database.engine()  # another program, which tells the triggers nothing
    with other.begin() as connection:
        connection.execute(text("UPDATE businesses SET name = 'B2' WHERE id = 2"))
    other.dispose()
    assert names(crm, engine) == ["A2", "B2", "C"]
    assert sorted((e.action, e.number_identifier, e.user_id) for e in entries(crm, engine)) == [
        (AuditLogActions.BUSINESS_CREATE, 1, ANN),
        (AuditLogActions.BUSINESS_CREATE, 2, ANN),
        (AuditLogActions.BUSINESS_CREATE, 3, ANN),
        (AuditLogActions.BUSINESS_UPDATE, 1, ANN),
        (AuditLogActions.BUSINESS_UPDATE, 2, None),
    ]


def test_an_async_transaction_of_the_applications_own_is_left_to_it(
    crm: Crm, engine: Engine, database: Any, users: list[Any]
):
    """aiosqlite's and psycopg's async connections tell that a transaction is open as
    their sync counterparts do."""
    seed(crm, engine, "A")

    async def rename_and_roll_back(session: AsyncSession) -> None:
        await session.execute(text("BEGIN"))
        business = await session.get(crm.Business, 1)
        assert business is not None
        business.name = "A2"
        await session.flush()
        await session.execute(text("ROLLBACK"))

    in_an_async_session(crm, database, rename_and_roll_back)
    assert names(crm, engine) == ["A"]
    assert [e.action for e in entries(crm, engine)] == [AuditLogActions.BUSINESS_CREATE]


def test_a_bulk_statement_logged_from_python_is_all_or_nothing(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """Without capture triggers the bulk path reads the rows, runs the statement and
    writes their rows: one transaction, so a refused row takes the change back."""
    seed(crm, engine, "A", "B")
    drop_capture_triggers(engine, "businesses")
    with auditkeeper.acting_as(ANN), sessions() as session:
        session.execute(update(crm.Business).where(crm.Business.id == 1).values(name="A2"))
    refuse_audit_rows_of(engine, 2)
    with (
        auditkeeper.acting_as(ANN),
        sessions() as session,
        pytest.raises(StoreError, match="refuse"),
    ):
        session.execute(update(crm.Business).values(name="all"))
    assert names(crm, engine) == ["A2", "B"]
    updates = [e for e in entries(crm, engine) if e.action == AuditLogActions.BUSINESS_UPDATE]
    assert [(e.number_identifier, e.user_id, e.difference) for e in updates] == [
        (1, ANN, {"name": ["A", "A2"]})
    ]


def test_changes_of_the_applications_after_flush_hook_commit_with_the_flush(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
):
    """An ``after_flush`` hook of the application's, run after auditkeeper's, changes
    data: that too is committed before ``flush()`` returns, as AUTOCOMMIT promises."""
    seed(crm, engine, "A", "B")

    def touch(session: Session, flush_context: Any) -> None:
        session.execute(text("UPDATE businesses SET website = 'hook' WHERE id = 2"))

    with auditkeeper.acting_as(ANN), sessions() as session:
        event.listen(session, "after_flush", touch)
        session.get(crm.Business, 1).name = "A2"
        session.flush()
        event.remove(session, "after_flush", touch)
    with Session(engine) as session:
        assert [b.website for b in session.scalars(select(crm.Business).order_by("id"))] == [
            None,
            "hook",
        ]
    assert names(crm, engine) == ["A2", "B"]
