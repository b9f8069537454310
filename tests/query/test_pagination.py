"""Keyset pages: stable while rows arrive, opaque cursors that refuse tampering."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditkeeper import (
    InvalidCursorError,
    LogFilter,
    QueryError,
    acting_as,
    history,
    read_page,
    read_page_async,
)
from auditkeeper.demo.crm import Crm
from auditkeeper.query.cursor import Position, encode_cursor
from tests.conftest import Database
from tests.query._dataset import build_rows, insert_rows


def add_leads(crm: Crm, sessions: sessionmaker[Session], names: list[str]) -> None:
    with sessions() as session:
        session.add_all([crm.Lead(name=name) for name in names])
        session.commit()


@pytest.fixture
def sessions(audited_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return audited_sessions


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest", "oldest"])
def test_pages_stay_stable_while_rows_arrive(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session], newest_first: bool
) -> None:
    """New rows between page reads neither repeat nor skip a row: a newest-first walk
    shows exactly the rows that existed when it started; an oldest-first walk shows
    those and then the new ones, in order."""
    add_leads(crm, sessions, [f"lead {n}" for n in range(23)])
    log_filter = LogFilter(entity_type="LEAD", newest_first=newest_first)
    with Session(engine) as reader:
        before = [e.id for e in history_all(reader, crm, log_filter)]
        seen: list[int] = []
        cursor = None
        batch = 0
        while True:
            page = read_page(reader, crm.keeper, log_filter, limit=5, cursor=cursor)
            seen.extend(e.id for e in page)
            batch += 1
            add_leads(crm, sessions, [f"new {batch} {n}" for n in range(2)])  # meanwhile
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        after = [e.id for e in history_all(reader, crm, log_filter)]
    assert len(seen) == len(set(seen))
    if newest_first:
        assert seen == before
    else:
        assert seen[: len(before)] == before
        assert seen == after[: len(seen)]
        assert len(seen) > len(before)  # the walk reached rows added while it ran


def history_all(session: Session, crm: Crm, log_filter: LogFilter) -> list[Any]:
    return list(read_page(session, crm.keeper, log_filter, limit=10_000))


def test_pages_stay_stable_under_concurrent_writers(
    crm: Crm, engine: Engine, database: Database, sessions: sessionmaker[Session]
) -> None:
    """Writers in other threads and connections insert while a reader pages."""
    add_leads(crm, sessions, [f"lead {n}" for n in range(40)])
    with Session(engine) as reader:
        before = [e.id for e in history_all(reader, crm, LogFilter())]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            writer_engine = database.engine()
            writer = sessionmaker(writer_engine, expire_on_commit=False)
            crm.keeper.install(writer)
            count = 0
            while not stop.is_set() and count < 200:
                with writer() as session:
                    session.add(crm.Lead(name=f"concurrent {count}"))
                    session.commit()
                count += 1
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        seen: list[int] = []
        cursor = None
        with Session(engine) as reader:
            while True:
                page = read_page(reader, crm.keeper, limit=3, cursor=cursor)
                seen.extend(e.id for e in page)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    # Rows newer than the first page are not part of a newest-first walk that started;
    # everything older is seen exactly once.
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i <= max(before)] == before


def test_ties_in_time_are_ordered_by_id(crm: Crm, engine: Engine, users: list[Any]) -> None:
    rows = build_rows(users, count=12)
    for row in rows:
        row["created_at"] = rows[0]["created_at"]  # all at one instant
    stored = insert_rows(crm, engine, rows)
    with Session(engine) as session:
        first = read_page(session, crm.keeper, limit=5)
        second = read_page(session, crm.keeper, limit=5, cursor=first.next_cursor)
        third = read_page(session, crm.keeper, limit=5, cursor=second.next_cursor)
    ids = [e.id for page in (first, second, third) for e in page]
    assert ids == sorted((r["id"] for r in stored), reverse=True)
    assert third.next_cursor is None


def test_the_last_page_has_no_cursor(crm: Crm, engine: Engine, users: list[Any]) -> None:
    insert_rows(crm, engine, build_rows(users, count=10))
    with Session(engine) as session:
        exact = read_page(session, crm.keeper, limit=10)
        assert len(exact) == 10
        assert exact.next_cursor is None
        empty = read_page(session, crm.keeper, LogFilter(user_email="nobody@example.com"))
        assert list(empty) == []
        assert empty.next_cursor is None


def test_history_of_one_record(crm: Crm, sessions: sessionmaker[Session], users: list[Any]) -> None:
    alice = users[0]
    with acting_as(alice.id, email=alice.email), sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.commit()
        lead.score = 5
        session.commit()
        session.add(crm.Lead(name="Other"))
        session.commit()
        entries = history(session, crm.keeper, "LEAD", lead.id)
        newest = history(session, crm.keeper, "LEAD", str(lead.id), newest_first=True)
    assert [e.difference.get("score") for e in entries] == [[None, 0], [0, 5]]
    assert [e.id for e in newest] == [e.id for e in reversed(entries)]
    assert {e.user_email for e in entries} == {alice.email}


def cursor_of(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("", "is not a page cursor: it is not a cursor string"),
        ("not base64!", "it is not base64url-encoded JSON"),
        ("Zm9v", "it is not base64url-encoded JSON"),  # "foo"
        (cursor_of({"v": 1}), "its content is not that of an auditkeeper cursor"),
        (
            cursor_of({"v": 2, "at": "2026-01-01T00:00:00+00:00", "id": 1, "q": "x"}),
            "its content is not that of an auditkeeper cursor",
        ),
        (
            cursor_of({"v": 1, "at": "2026-01-01T00:00:00+00:00", "id": True, "q": "x"}),
            "its content is not that of an auditkeeper cursor",
        ),
        (
            cursor_of({"v": True, "at": "2026-01-01T00:00:00+00:00", "id": 1, "q": "x"}),
            "its content is not that of an auditkeeper cursor",
        ),
        (
            cursor_of({"v": 1, "at": "yesterday", "id": 1, "q": "x"}),
            "its time is not an ISO-8601 instant with an offset",
        ),
        (
            cursor_of({"v": 1, "at": "2026-01-01T00:00:00", "id": 1, "q": "x"}),
            "its time is not an ISO-8601 instant with an offset",
        ),
        (
            cursor_of({"v": 1, "at": "2026-01-01T00:00:00+00:00", "id": 1, "q": "x"}),
            "was made for a different filter or order",
        ),
        ("A" * 600, "it is not a cursor string"),
    ],
    ids=lambda value: value[:20] if isinstance(value, str) else None,
)
def test_bad_cursors_are_refused_with_the_reason(cursor: str, message: str) -> None:
    from auditkeeper.demo.crm import build_crm

    keeper = build_crm().keeper
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    with engine.connect() as connection, pytest.raises(InvalidCursorError) as error:
        read_page(connection, keeper, cursor=cursor)
    assert message in str(error.value)
    assert "start without a cursor" in str(error.value)


def test_a_cursor_of_another_filter_is_refused(crm: Crm, engine: Engine, users: list[Any]) -> None:
    insert_rows(crm, engine, build_rows(users, count=20))
    with Session(engine) as session:
        page = read_page(session, crm.keeper, LogFilter(entity_type="LEAD"), limit=2)
        assert page.next_cursor is not None
        for other in (LogFilter(), LogFilter(entity_type="LEAD", newest_first=False)):
            with pytest.raises(InvalidCursorError, match="different filter or order"):
                read_page(session, crm.keeper, other, limit=2, cursor=page.next_cursor)
        again = read_page(
            session, crm.keeper, LogFilter(entity_type="lead"), limit=2, cursor=page.next_cursor
        )
        assert again.entries  # the same filter, spelt differently, accepts it


def test_a_cursor_round_trips_microseconds() -> None:
    moment = dt.datetime(2026, 5, 1, 12, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    from auditkeeper.query.cursor import decode_cursor

    decoded = decode_cursor(encode_cursor(Position(moment, 42), "abc"), "abc")
    assert decoded == Position(moment, 42)
    assert decoded.created_at.tzinfo == dt.UTC


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 2.5])
def test_limits_out_of_range_are_refused(limit: Any) -> None:
    from sqlalchemy import create_engine

    from auditkeeper.demo.crm import build_crm

    with create_engine("sqlite://").connect() as connection, pytest.raises(QueryError) as error:
        read_page(connection, build_crm().keeper, limit=limit)
    assert f"got {limit!r}" in str(error.value)


def test_read_page_async(crm: Crm, database: Database, users: list[Any], engine: Engine) -> None:
    stored = insert_rows(crm, engine, build_rows(users, count=9))
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    async def main() -> list[int]:
        async_engine = create_async_engine(database.async_url(), connect_args=database.connect_args)
        try:
            async with AsyncSession(async_engine) as session:
                first = await read_page_async(session, crm.keeper, limit=5)
                rest = await read_page_async(session, crm.keeper, cursor=first.next_cursor)
                return [e.id for e in [*first, *rest]]
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()) == [r["id"] for r in reversed(stored)]


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest", "oldest"])
def test_previous_cursors_walk_back_over_the_same_pages(
    crm: Crm, engine: Engine, users: list[Any], newest_first: bool
) -> None:
    insert_rows(crm, engine, build_rows(users, count=23))
    log_filter = LogFilter(newest_first=newest_first)
    with Session(engine) as session:
        forward = [read_page(session, crm.keeper, log_filter, limit=5)]
        assert forward[0].previous_cursor is None  # the first page has none
        while forward[-1].next_cursor is not None:
            cursor = forward[-1].next_cursor
            forward.append(read_page(session, crm.keeper, log_filter, limit=5, cursor=cursor))
        assert [len(p) for p in forward] == [5, 5, 5, 5, 3]
        backward = [forward[-1]]
        while backward[-1].previous_cursor is not None:
            cursor = backward[-1].previous_cursor
            backward.append(read_page(session, crm.keeper, log_filter, limit=5, cursor=cursor))
    assert [[e.id for e in p] for p in reversed(backward)] == [[e.id for e in p] for p in forward]
    assert backward[-1].previous_cursor is None
    # A page reached backwards goes forward again to the page it came from.
    assert [p.next_cursor is not None for p in backward[1:]] == [True] * 4


def test_going_back_past_the_start_gives_the_first_page(
    crm: Crm, engine: Engine, users: list[Any]
) -> None:
    """With another page size than the walk used, the rows before a cursor may not fill
    a page: the answer is then the first page, not a short one."""
    insert_rows(crm, engine, build_rows(users, count=12))
    with Session(engine) as session:
        first = read_page(session, crm.keeper, limit=3)
        second = read_page(session, crm.keeper, limit=3, cursor=first.next_cursor)
        assert second.previous_cursor is not None
        back = read_page(session, crm.keeper, limit=10, cursor=second.previous_cursor)
        assert [e.id for e in back] == [e.id for e in read_page(session, crm.keeper, limit=10)]
        assert back.previous_cursor is None


def test_previous_cursors_see_rows_that_arrived_meanwhile(
    crm: Crm, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Newest first, rows added after the walk started appear when going back to the
    start, as on a fresh first page: no row is skipped."""
    add_leads(crm, sessions, [f"lead {n}" for n in range(10)])
    with Session(engine) as session:
        first = read_page(session, crm.keeper, limit=4)
        second = read_page(session, crm.keeper, limit=4, cursor=first.next_cursor)
        add_leads(crm, sessions, ["late 1", "late 2"])
        back = read_page(session, crm.keeper, limit=4, cursor=second.previous_cursor)
        assert [e.id for e in back] == [e.id for e in first]
        assert back.previous_cursor is not None
        start = read_page(session, crm.keeper, limit=4, cursor=back.previous_cursor)
    assert [e.difference["name"][1] for e in start][:2] == ["late 2", "late 1"]


def test_a_previous_cursor_keeps_its_direction() -> None:
    from auditkeeper.query.cursor import decode_cursor

    moment = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    before = Position(moment, 7, before=True)
    assert decode_cursor(encode_cursor(before, "abc"), "abc") == before
    odd = cursor_of({"v": 1, "at": "2026-01-01T00:00:00+00:00", "id": 1, "q": "abc", "d": "x"})
    with pytest.raises(InvalidCursorError, match="not that of an auditkeeper cursor"):
        decode_cursor(odd, "abc")
