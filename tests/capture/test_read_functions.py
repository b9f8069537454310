"""A function called from a raw ``SELECT`` that changes rows (PostgreSQL): its changes
are logged at commit in the name of the actor the ``SELECT`` ran under, told to the
triggers only when nothing else of the transaction does (docs/raw-sql.md, "Who
acted")."""

from __future__ import annotations

import enum
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, log_rows, model_fixtures

pytestmark = POSTGRES_ONLY


class Kind(enum.IntEnum):
    TASK = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.TASK, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    done: Mapped[bool] = mapped_column(default=False)


engine, sessions = model_fixtures(Base.metadata, keeper)

ARCHIVE = """CREATE FUNCTION finish_tasks(first integer, last integer) RETURNS integer AS $$
DECLARE finished integer;
BEGIN
    UPDATE tasks SET done = true WHERE id BETWEEN first AND last AND NOT done;
    GET DIAGNOSTICS finished = ROW_COUNT;
    RETURN finished;
END $$ LANGUAGE plpgsql"""


@pytest.fixture
def tasks(engine: Engine, sessions: Any) -> Any:
    with engine.begin() as connection:
        connection.exec_driver_sql(ARCHIVE)
    with auditkeeper.acting_as(1), sessions() as session:
        session.add_all(Task(id=n) for n in range(1, 5))
        session.commit()
    return sessions


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement psycopg sends, auditkeeper's own on the driver's cursor too."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def record(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    return sent


def _finishers(engine: Engine) -> list[tuple[int, int | None, Any]]:
    return [
        (row.number_identifier, row.user_id, row.context)
        for row in log_rows(engine, keeper)
        if row.action == Action.UPDATE
    ]


def _settings(statements: list[str]) -> int:
    return sum("set_config('auditkeeper.actor'" in statement for statement in statements)


def test_a_select_that_changes_rows_is_logged_in_its_actors_name(
    engine: Engine, tasks: Any, statements: list[str]
) -> None:
    with auditkeeper.acting_as(7), tasks() as session:
        statements.clear()
        assert session.execute(text("SELECT finish_tasks(1, 2)")).scalar_one() == 2
        session.commit()
    finished = _finishers(engine)
    assert [(user, context) for _, user, context in finished] == [
        (7, {"captured_by": "database trigger"})
    ] * 2
    assert _settings(statements) == 1  # told once, at commit


def test_each_actor_keeps_the_changes_of_their_own_reads(engine: Engine, tasks: Any) -> None:
    with tasks() as session:
        with auditkeeper.acting_as(7):
            session.execute(text("SELECT finish_tasks(1, 1)"))
        with auditkeeper.acting_as(8):
            session.execute(text("SELECT finish_tasks(2, 2)"))
        with auditkeeper.acting_as(9):
            session.execute(text("UPDATE tasks SET done = true WHERE id = 3"))
        session.commit()
    assert sorted((key, user) for key, user, _ in _finishers(engine)) == [
        (1, 7),
        (2, 8),
        (3, 9),
    ]


def test_a_transaction_that_tells_the_actor_anyway_pays_nothing_more(
    engine: Engine, tasks: Any, statements: list[str]
) -> None:
    with auditkeeper.acting_as(7), tasks() as session:
        session.execute(text("UPDATE tasks SET done = true WHERE id = 4"))
        statements.clear()
        session.execute(text("SELECT finish_tasks(1, 1)"))
        session.commit()
    assert _settings(statements) == 0
    assert [user for _, user, _ in _finishers(engine)] == [7, 7]


def test_reads_rolled_back_or_in_autocommit_send_no_actor(
    engine: Engine, tasks: Any, statements: list[str]
) -> None:
    with auditkeeper.acting_as(7), tasks() as session:
        statements.clear()
        session.execute(text("SELECT count(*) FROM tasks"))
        session.rollback()
        session.execute(text("SHOW search_path"))
        session.commit()
    assert _settings(statements) == 0
    keeper.install(engine)
    with auditkeeper.acting_as(7), engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(text("SELECT finish_tasks(1, 1)"))
    # The read committed alone, before anything could be told: no actor.
    assert [user for _, user, _ in _finishers(engine)] == [None]


@pytest.mark.parametrize("records", [1, 2], ids=["one record", "two records"])
def test_a_flush_after_the_read_tells_the_actor_for_it(
    engine: Engine, tasks: Any, statements: list[str], records: int
) -> None:
    """A one-record flush carries its row on the record's statement, a larger one is
    merged into one statement after the check of its statement trigger: either sets
    the actor, so nothing else does."""
    with auditkeeper.acting_as(7), tasks() as session:
        session.execute(text("SELECT finish_tasks(1, 1)"))
        for task in session.query(Task).filter(Task.id.in_([3, 4][:records])):
            task.done = True
        statements.clear()
        session.commit()
    assert _settings([s for s in statements if "pg_trigger" not in s]) == 0
    assert [user for _, user, _ in _finishers(engine)] == [7] * (1 + records)
