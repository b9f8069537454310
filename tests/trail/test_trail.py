"""``trail()`` as a DataTable source: order, sorting, text filter, paging, async, and a
bounded number of queries whatever the number of rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import auditkeeper
from auditkeeper import add_history_event
from tests.trail._seed import Seed, build_seed


def _user_with_events(seed: Seed, count: int) -> int:
    with seed.Session() as session:
        user = seed.User(FullName="Jane")
        session.add(user)
        session.commit()
        for number in range(1, count + 1):
            add_history_event(user, f"Step {number:02d}", "odd" if number % 2 else "even")
            session.commit()
        return user.id


def test_newest_first_by_default(seed: Seed) -> None:
    user_id = _user_with_events(seed, 3)
    with seed.Session() as session:
        rows = auditkeeper.trail(session, seed.User, user_id)
    assert [r.event for r in rows] == ["Step 03", "Step 02", "Step 01", "Created"]
    assert rows[0].date >= rows[-1].date
    assert (rows[0].entity, rows[0].entity_id) == ("User", user_id)


def test_sort_filter_and_page(seed: Seed) -> None:
    user_id = _user_with_events(seed, 12)
    with seed.Session() as session:
        by_event = auditkeeper.trail(session, seed.User, user_id, sort="-event", limit=3)
        odd = auditkeeper.trail(session, seed.User, user_id, search="ODD", sort="date")
        page = auditkeeper.trail(session, seed.User, user_id, sort="date", skip=10, limit=10)
        beyond = auditkeeper.trail(session, seed.User, user_id, skip=50)
    assert [r.event for r in by_event] == ["Step 12", "Step 11", "Step 10"]
    assert by_event.total == 13
    assert [r.event for r in odd] == [f"Step {n:02d}" for n in range(1, 13, 2)]
    assert odd.total == 6
    assert [r.event for r in page] == ["Step 10", "Step 11", "Step 12"]
    assert (len(page), page.total) == (3, 13)
    assert (list(beyond), beyond.total) == ([], 13)


def test_related_false_shows_only_the_entity(seed: Seed) -> None:
    with seed.Session() as session:
        school = seed.School(name="Hillside")
        session.add_all([school, seed.DepartmentUser(full_name="Dana", school=school)])
        session.commit()
        own = auditkeeper.trail(session, seed.School, school.id, related=False)
    assert [r.event for r in own] == ["Created"]


def test_trail_async(database) -> None:
    async def main() -> list[tuple[str, str]]:
        engine = create_async_engine(database.async_url(), connect_args=database.connect_args)
        async with engine.begin() as connection:
            seed = await connection.run_sync(build_seed)
        factory = async_sessionmaker(engine, expire_on_commit=False)
        seed.keeper.install(factory)
        async with factory() as session:
            user = seed.User(FullName="Jane")
            session.add(user)
            await session.commit()
            user.IsActive = False
            await session.commit()
            rows = await auditkeeper.trail_async(session, seed.User, user.id)
        await engine.dispose()
        return [(r.event, r.description) for r in rows]

    assert asyncio.run(main()) == [
        ("Updated", '"IsActive" was changed from "true" to "false"'),
        ("Created", ""),
    ]


class QueryCounter:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        self.count += 1


def _busy_application(seed: Seed, rounds: int):
    """An application with a parent, comments, and ``rounds`` changes of each."""
    with seed.Session() as session:
        parent = seed.Parent(full_name="Pat")
        application = seed.SchoolApplication(learner="Sam", submitted_by=parent)
        session.add(application)
        session.commit()
        for number in range(rounds):
            application.learner = f"Sam {number}"
            parent.phone = str(number)
            session.add(
                seed.Comment(
                    owner_id=str(application.id), owner_type="SchoolApplication", text=f"c{number}"
                )
            )
            add_history_event(application, f"Round {number}")
            session.commit()
        return application.id


@pytest.mark.parametrize("related", [True, False])
def test_queries_do_not_grow_with_rows(seed: Seed, related: bool) -> None:
    small = _busy_application(seed, 2)
    large = _busy_application(seed, 25)
    counts = []
    for key in (small, large):
        with seed.Session() as session:
            session.connection()
            with QueryCounter(seed.engine) as counter:
                rows = auditkeeper.trail(
                    session,
                    seed.SchoolApplication,
                    key,
                    related=related,
                    user_names=seed.User.FullName,
                )
            counts.append((counter.count, len(rows)))
    (small_queries, small_rows), (large_queries, large_rows) = counts
    assert large_rows > small_rows * 5
    assert small_queries == large_queries
    # Own rows, (the comments related now or before, the parent's and the comments' rows
    # together); no names (the parent is referenced only by the creation, which prints
    # no values) and no users (system actions).
    assert large_queries == (3 if related else 1), counts
