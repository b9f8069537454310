"""The PostgreSQL drivers other than psycopg 3 that SQLAlchemy supports: psycopg2,
pg8000, and asyncpg (an async engine, as FastAPI applications use it).

The rest of the suite runs on psycopg 3. These drivers differ in what auditkeeper talks
to directly: the placeholders of the statements it sends on the driver's cursor
(asyncpg's ``$1``), what a ``%`` in a function body means to them when ``create_all``
installs it, and how they report an open transaction. Each scenario runs the same
writes through each driver and compares the log with the one psycopg 3 writes.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import auditkeeper
from tests._support import POSTGRES_ONLY, Action

pytestmark = POSTGRES_ONLY


class Kind(enum.IntEnum):
    NOTE = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.NOTE, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]
    share: Mapped[str] = mapped_column(default="50%")  # a '%' in values, as in bodies


DRIVERS = ["psycopg", "psycopg2", "pg8000", "asyncpg"]


def _on_schema(engine: Any, schema: str) -> None:
    """pg8000 and asyncpg take no libpq ``options``: each new connection sets the path."""

    @event.listens_for(engine, "connect")
    def search_path(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.commit()


def _writes(session: Session) -> None:
    """What the application does: the flush's creations, a one-record update (its row
    on the record's own statement), a two-record one, a bulk statement, raw SQL, a
    change in another actor's name in the same transaction, a deletion, and a
    two-record one."""
    with auditkeeper.acting_as(7):
        session.add_all([Note(id=1, body="first"), Note(id=2, body="second")])
        session.commit()
        first, second = session.get_one(Note, 1), session.get_one(Note, 2)
        first.body = "first, edited"
        session.commit()
        first.share, second.share = "10%", "90%"
        session.commit()
        session.execute(update(Note).values(body="by bulk"))
        session.commit()
        session.execute(text("UPDATE notes SET body = 'by hand' WHERE id = 1"))
    with auditkeeper.acting_as(8):
        session.get_one(Note, 2).body = "by eight"
        session.commit()
        session.delete(session.get_one(Note, 2))
        session.commit()
        session.add_all([Note(id=3, body="third"), Note(id=4, body="fourth")])
        session.commit()
        third, fourth = session.get_one(Note, 3), session.get_one(Note, 4)
        session.delete(third)
        session.delete(fourth)
        session.commit()


def _log(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        entries = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id))
        return [
            (
                Action(e.action).name,
                e.number_identifier,
                e.user_id,
                (e.context or {}).get("captured_by"),
                e.difference,
            )
            for e in entries
        ]


EXPECTED = [
    ("CREATE", 1, 7, None, {"id": [None, 1], "body": [None, "first"], "share": [None, "50%"]}),
    ("CREATE", 2, 7, None, {"id": [None, 2], "body": [None, "second"], "share": [None, "50%"]}),
    ("UPDATE", 1, 7, None, {"body": ["first", "first, edited"]}),
    ("UPDATE", 1, 7, None, {"share": ["50%", "10%"]}),
    ("UPDATE", 2, 7, None, {"share": ["50%", "90%"]}),
    ("UPDATE", 1, 7, "database statement trigger", {"body": ["first, edited", "by bulk"]}),
    ("UPDATE", 2, 7, "database statement trigger", {"body": ["second", "by bulk"]}),
    ("UPDATE", 1, 7, "database trigger", {"body": ["by bulk", "by hand"]}),
    ("UPDATE", 2, 8, None, {"body": ["by bulk", "by eight"]}),
    ("DELETE", 2, 8, None, {"id": [2, None], "body": ["by eight", None], "share": ["90%", None]}),
    ("CREATE", 3, 8, None, {"id": [None, 3], "body": [None, "third"], "share": [None, "50%"]}),
    ("CREATE", 4, 8, None, {"id": [None, 4], "body": [None, "fourth"], "share": [None, "50%"]}),
    ("DELETE", 3, 8, None, {"id": [3, None], "body": ["third", None], "share": ["50%", None]}),
    ("DELETE", 4, 8, None, {"id": [4, None], "body": ["fourth", None], "share": ["50%", None]}),
]


@pytest.fixture
def engine(database: Any) -> Iterator[Engine]:
    """psycopg 3's engine on the test's schema: it reads the log the others wrote."""
    yield database.engine()


def _sync_run(
    url: str, schema: str, driver: str, writes: Callable[[Session], None], **options: Any
) -> None:
    connect_args = {"options": f"-c search_path={schema}"} if driver != "pg8000" else {}
    driven = create_engine(url, connect_args=connect_args, **options)
    if driver == "pg8000":
        _on_schema(driven, schema)
    try:
        Base.metadata.create_all(driven)
        keeper.create_all(driven)
        assert keeper.check(driven) == []
        factory = sessionmaker(driven, expire_on_commit=False)
        installation = keeper.install(factory)
        try:
            with factory() as session:
                writes(session)
        finally:
            installation.uninstall()
    finally:
        driven.dispose()


def _async_run(url: str, schema: str, writes: Callable[[Session], None], **options: Any) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    async def run() -> None:
        driven = create_async_engine(
            url, connect_args={"server_settings": {"search_path": schema}}, **options
        )
        try:
            async with driven.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
                await connection.run_sync(keeper.create_all)
            async with driven.connect() as connection:
                assert await connection.run_sync(keeper.check) == []
            factory = async_sessionmaker(driven, expire_on_commit=False)
            installation = keeper.install(factory)
            try:
                async with factory() as session:
                    await session.run_sync(writes)
            finally:
                installation.uninstall()
        finally:
            await driven.dispose()

    asyncio.run(run())


def _run(database: Any, driver: str, writes: Callable[[Session], None], **options: Any) -> None:
    """``writes`` in an installed session of ``driver``'s engine, on the test's schema,
    after ``create_all`` and ``check`` through that engine."""
    url = make_url(database.url).set(drivername=f"postgresql+{driver}")
    rendered = url.render_as_string(hide_password=False)
    schema = str(database.connect_args["options"]).removeprefix("-c search_path=")
    if driver == "asyncpg":
        _async_run(rendered, schema, writes, **options)
    else:
        _sync_run(rendered, schema, driver, writes, **options)


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_driver_writes_the_same_log(database: Any, engine: Engine, driver: str) -> None:
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    event.listen(Engine, "after_cursor_execute", record)
    try:
        _run(database, driver, _writes)
    finally:
        event.remove(Engine, "after_cursor_execute", record)
    assert _log(engine) == EXPECTED
    merged = [s for s in sent if "auditkeeper:flush-rows */ UPDATE" in s or "rows */ DELETE" in s]
    # The two-record deletion is merged where the driver takes %s placeholders; the
    # update too where the session's time zone is known (psycopg 3 tracks it).
    assert len(merged) == {"psycopg": 2, "asyncpg": 0}.get(driver, 1)


def _autocommit_writes(session: Session) -> None:
    with auditkeeper.acting_as(5):
        session.add(Note(id=1, body="first"))
        session.flush()  # committed at once: the connection is in AUTOCOMMIT
        session.execute(text("UPDATE notes SET body = 'by hand' WHERE id = 1"))
        session.get_one(Note, 1).body = "flushed"
        session.flush()


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_driver_logs_changes_made_in_autocommit(
    database: Any, engine: Engine, driver: str
) -> None:
    _run(database, driver, _autocommit_writes, isolation_level="AUTOCOMMIT")
    assert _log(engine) == [
        ("CREATE", 1, 5, None, {"id": [None, 1], "body": [None, "first"], "share": [None, "50%"]}),
        ("UPDATE", 1, 5, "database trigger", {"body": ["first", "by hand"]}),
        ("UPDATE", 1, 5, None, {"body": ["by hand", "flushed"]}),
    ]
