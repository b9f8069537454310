"""Many writers at once: every row is attributed to its own thread's or task's actor.

The actor lives in a ``ContextVar``; these tests make sure nothing leaks between threads,
between asyncio tasks, or from a thread into the threads it starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from auditkeeper import acting_as, acting_as_system, current_actor
from auditkeeper.capture.trigger_state import watch_engine
from auditkeeper.demo.crm import Crm
from tests._support import entries

THREADS = 20
TASKS = 20
PER_WORKER = 10
PER_COMMIT = 2


def _make_users(crm: Crm, engine: Engine, count: int) -> list[tuple[int, str]]:
    with Session(engine) as session:
        people = [crm.User(email=f"worker{n}@example.com", full_name=f"W{n}") for n in range(count)]
        session.add_all(people)
        session.commit()
        return [(p.id, p.email) for p in people]


def _check_rows(
    crm: Crm, engine: Engine, people: list[tuple[int, str]], commits: dict[int, list[set[str]]]
) -> None:
    """Every business has one row, by its worker's user, one transaction id per commit."""
    rows = entries(crm, engine)
    assert len(rows) == len(people) * PER_WORKER
    by_name = {row.current["name"]: row for row in rows}
    assert len(by_name) == len(rows)
    for worker, (user_id, email) in enumerate(people):
        names = {f"w{worker}-b{n}" for n in range(PER_WORKER)}
        assert names <= set(by_name), f"rows of worker {worker} are missing"
        for name in names:
            row = by_name[name]
            assert (row.user_id, row.user_email, row.reason) == (user_id, email, f"worker {worker}")
            assert row.context == {"worker": worker}
        for batch in commits[worker]:
            assert len({by_name[name].transaction_id for name in batch}) == 1
    transactions: dict[Any, set[Any]] = defaultdict(set)
    for row in rows:
        transactions[row.transaction_id].add(row.user_id)
    assert len(transactions) == len(people) * PER_WORKER // PER_COMMIT
    assert all(len(users) == 1 for users in transactions.values())
    with Session(engine) as session:
        assert len(session.scalars(select(crm.Business.id)).all()) == len(rows)


def test_threads_each_with_their_own_actor_and_session(crm: Crm, engine: Engine, audited_sessions):
    people = _make_users(crm, engine, THREADS)
    commits: dict[int, list[set[str]]] = defaultdict(list)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        user_id, email = people[worker]
        try:
            assert current_actor() is None  # a new thread starts without an actor
            with acting_as(
                user_id, email=email, reason=f"worker {worker}", context={"worker": worker}
            ):
                barrier.wait()
                with audited_sessions() as session:
                    for start in range(0, PER_WORKER, PER_COMMIT):
                        batch = {f"w{worker}-b{n}" for n in range(start, start + PER_COMMIT)}
                        session.add_all(crm.Business(name=name) for name in sorted(batch))
                        session.commit()
                        commits[worker].append(batch)
                        assert current_actor().user_id == user_id
        except BaseException as error:  # reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    _check_rows(crm, engine, people, commits)


def test_tasks_each_with_their_own_actor_and_async_session(crm: Crm, engine: Engine, database):
    people = _make_users(crm, engine, TASKS)
    commits: dict[int, list[set[str]]] = defaultdict(list)
    sqlite = database.dialect == "sqlite"
    connect_args = dict(database.connect_args)
    if sqlite:
        # aiosqlite gets no busy_timeout from configure_sqlite: wait for the writer lock.
        # (Measured not flaky without serializing the writers, so they are not.)
        connect_args["timeout"] = 30

    async def main() -> None:
        async_engine = create_async_engine(
            database.async_url(), connect_args=connect_args, pool_size=TASKS, max_overflow=0
        )
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = crm.keeper.install(factory)
        started = asyncio.Event()

        async def work(worker: int) -> None:
            user_id, email = people[worker]
            assert current_actor() is None
            with acting_as(
                user_id, email=email, reason=f"worker {worker}", context={"worker": worker}
            ):
                await started.wait()
                async with factory() as session:
                    for start in range(0, PER_WORKER, PER_COMMIT):
                        batch = {f"w{worker}-b{n}" for n in range(start, start + PER_COMMIT)}
                        for name in sorted(batch):
                            session.add(crm.Business(name=name))
                            await asyncio.sleep(0)  # let the other tasks run in between
                        await session.flush()
                        await asyncio.sleep(0)
                        await session.commit()
                        commits[worker].append(batch)
                        assert current_actor().user_id == user_id
            assert current_actor() is None

        try:
            tasks = [asyncio.create_task(work(n)) for n in range(TASKS)]
            await asyncio.sleep(0)
            started.set()
            await asyncio.gather(*tasks)
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(main())
    _check_rows(crm, engine, people, commits)


def test_one_async_session_per_task_with_interleaved_flushes(crm: Crm, engine: Engine, database):
    """Two tasks, one session each, flushing in alternation inside different actors."""
    alice, bob = _make_users(crm, engine, 2)
    connect_args = dict(database.connect_args)
    if database.dialect == "sqlite":
        connect_args["timeout"] = 30

    async def main() -> None:
        async_engine = create_async_engine(database.async_url(), connect_args=connect_args)
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = crm.keeper.install(factory)
        turn = [asyncio.Event(), asyncio.Event()]

        async def work(me: int, who: tuple[int, str]) -> None:
            with acting_as(who[0], email=who[1]):
                async with factory() as session:
                    for n in range(3):
                        await turn[me].wait()
                        turn[me].clear()
                        session.add(crm.Business(name=f"{who[1]}-{n}"))
                        await session.commit()
                        turn[1 - me].set()

        try:
            turn[0].set()
            await asyncio.gather(work(0, alice), work(1, bob))
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(main())
    rows = entries(crm, engine)
    assert [(r.current["name"].split("-")[0], r.user_id) for r in rows] == [
        (alice[1], alice[0]),
        (bob[1], bob[0]),
    ] * 3


def test_tasks_updating_one_record_each_keep_their_own_rows(crm: Crm, engine: Engine, database):
    """One-record flushes (on PostgreSQL, their rows ride on the records' own UPDATEs)
    from tasks that interleave between the change and the commit: every row is its own
    record's, in its own task's name."""
    people = _make_users(crm, engine, 4)
    with Session(engine) as session:
        businesses = [crm.Business(name=f"b{n}-start") for n in range(len(people))]
        session.add_all(businesses)
        session.commit()
        ids = [b.id for b in businesses]
    connect_args = dict(database.connect_args)
    if database.dialect == "sqlite":
        connect_args["timeout"] = 30
    sent: list[str] = []

    async def main() -> None:
        async_engine = create_async_engine(database.async_url(), connect_args=connect_args)
        watch_engine(async_engine.sync_engine)  # its listeners first: the statements as sent
        event.listen(
            async_engine.sync_engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *rest: sent.append(statement),
        )
        factory = async_sessionmaker(async_engine, expire_on_commit=False)
        installation = crm.keeper.install(factory)

        async def work(worker: int) -> None:
            with acting_as(people[worker][0], email=people[worker][1]):
                async with factory() as session:
                    business = await session.get(crm.Business, ids[worker])
                    assert business is not None
                    for n in range(3):
                        business.name = f"b{worker}-{n}"
                        await asyncio.sleep(0)
                        await session.flush()
                        await asyncio.sleep(0)
                        await session.commit()

        try:
            await asyncio.gather(*(work(n) for n in range(len(people))))
        finally:
            installation.uninstall()
            await async_engine.dispose()

    asyncio.run(main())
    updates = [r for r in entries(crm, engine) if r.previous is not None]
    assert len(updates) == 3 * len(people)
    for worker, (user_id, _) in enumerate(people):
        mine = [r for r in updates if r.number_identifier == ids[worker]]
        assert [r.difference["name"] for r in mine] == [
            [f"b{worker}-start", f"b{worker}-0"],
            [f"b{worker}-0", f"b{worker}-1"],
            [f"b{worker}-1", f"b{worker}-2"],
        ]
        assert {r.user_id for r in mine} == {user_id}
    if database.dialect == "postgresql":
        assert sum(1 for s in sent if "WITH auditkeeper_log AS (INSERT INTO audit_log" in s) == 12
        assert not any(s.startswith("INSERT INTO audit_log") for s in sent)


def test_an_actor_does_not_leak_into_new_threads(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    seen: dict[str, Any] = {}

    def plain() -> None:
        seen["plain"] = current_actor()
        with audited_sessions() as session:
            session.add(crm.Business(name="from a plain thread"))
            session.commit()

    def copied() -> None:
        seen["copied"] = current_actor()
        with audited_sessions() as session:
            session.add(crm.Business(name="from a copied context"))
            session.commit()

    with acting_as(alice.id, email=alice.email):
        thread = threading.Thread(target=plain)
        thread.start()
        thread.join()
        context = contextvars.copy_context()  # what executors and asyncio.to_thread do
        thread = threading.Thread(target=context.run, args=(copied,))
        thread.start()
        thread.join()
    assert seen["plain"] is None
    assert seen["copied"] is not None and seen["copied"].user_id == alice.id
    rows = {r.current["name"]: r.user_id for r in entries(crm, engine)}
    assert rows == {"from a plain thread": None, "from a copied context": alice.id}


def test_asyncio_to_thread_carries_the_task_actor(
    crm: Crm, engine: Engine, audited_sessions, users
):
    alice, bob, _ = users

    def write(name: str) -> None:
        with audited_sessions() as session:
            session.add(crm.Business(name=name))
            session.commit()

    async def as_user(user: Any) -> None:
        with acting_as(user.id, email=user.email):
            await asyncio.to_thread(write, user.email)

    async def main() -> None:
        with acting_as_system(reason="outer"):
            await asyncio.gather(as_user(alice), as_user(bob), asyncio.to_thread(write, "system"))

    asyncio.run(main())
    rows = {r.current["name"]: (r.user_id, r.reason) for r in entries(crm, engine)}
    assert rows == {
        alice.email: (alice.id, None),
        bob.email: (bob.id, None),
        "system": (None, "outer"),
    }


def test_async_session_instance_install(crm: Crm, engine: Engine, database, users):
    """``install`` on one ``AsyncSession`` (not a factory) attributes its flushes too."""
    carol = users[2]
    connect_args = dict(database.connect_args)

    async def main() -> None:
        async_engine = create_async_engine(database.async_url(), connect_args=connect_args)
        try:
            async with AsyncSession(async_engine) as session:
                crm.keeper.install(session)
                with acting_as(carol.id, email=carol.email):
                    session.add(crm.Business(name="one session"))
                    await session.commit()
        finally:
            await async_engine.dispose()

    asyncio.run(main())
    (row,) = entries(crm, engine)
    assert (row.user_id, row.user_email) == (carol.id, carol.email)
