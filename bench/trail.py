"""Benchmark: one audit trail of a record with its related entities, on a PostgreSQL log
of a million rows (issue 5's target: a 100-event trail in under 5 ms median, rendering
included).

    .venv/bin/python bench/trail.py                      # a throw-away PostgreSQL cluster
    .venv/bin/python bench/trail.py --pg-url postgresql+psycopg://user@host/db
    .venv/bin/python bench/trail.py --rows 2000000 --repetitions 500

The log is filled with SQL (``generate_series``) with rows of the same entity types as
the measured record (other applications, their parents and comments), so the indexes
hold realistic neighbours. The measured application then gets about a hundred events
through the ORM: its own updates and custom events, its parent's updates (a child
trail) and comments added, deleted and moved away (generic children). Each repetition
runs ``auditkeeper.trail()`` in a fresh session and reads every row's texts; the
script prints the median and 95th percentile, the number of queries per trail, and
the same with the optional ``create_trail_indexes``.
"""

from __future__ import annotations

import argparse
import enum
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, ForeignKey, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import auditkeeper  # noqa: E402
from auditkeeper import ChildTrail, GenericChildTrail, add_history_event  # noqa: E402
from auditkeeper.trail.indexes import create_trail_indexes  # noqa: E402

FILLER_OFFSET = 10_000_000
"""Filler records have ids from here on, far from the ORM's own."""


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    EVENT = 4


class Kind(enum.IntEnum):
    PARENT = 1
    APPLICATION = 2
    COMMENT = 3


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(
    Base.metadata, actions=Action, entity_types=Kind, event_action=Action.EVENT
)


def crud(kind: Kind, **options: Any) -> Any:
    return auditkeeper.audited(
        entity_type=kind,
        create=Action.CREATE,
        update=Action.UPDATE,
        delete=Action.DELETE,
        **options,
    )


@crud(Kind.PARENT)
class Parent(Base):
    __tablename__ = "parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str]
    phone: Mapped[str | None]


@crud(Kind.COMMENT)
class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(index=True)
    owner_type: Mapped[str]
    text: Mapped[str]


@crud(
    Kind.APPLICATION,
    trail=[
        ChildTrail("submitted_by", display_name="Parent"),
        GenericChildTrail(Comment, name_field="text"),
    ],
)
class Application(Base):
    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    learner: Mapped[str]
    grade: Mapped[int] = mapped_column(default=1)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("parents.id"))
    submitted_by: Mapped[Parent | None] = relationship()


FILLER_SQL = """
INSERT INTO audit_log (action, entity_type, number_identifier, changed_objects, created_at)
SELECT
    CASE WHEN g % 10 = 0 THEN 1 ELSE 2 END,
    CASE WHEN g % 3 = 0 THEN 1 WHEN g % 3 = 1 THEN 2 ELSE 3 END,
    :offset + g / 30,
    CASE
        WHEN g % 3 = 2 THEN jsonb_build_object(
            'previous', jsonb_build_object(
                'id', :offset + g / 30, 'owner_id', :offset + g / 300,
                'owner_type', 'Application', 'text', 'note ' || g),
            'current', jsonb_build_object(
                'id', :offset + g / 30, 'owner_id', :offset + g / 300,
                'owner_type', 'Application', 'text', 'note ' || g + 1),
            'difference', jsonb_build_object(
                'text', jsonb_build_array('note ' || g, 'note ' || g + 1)))
        ELSE jsonb_build_object(
            'previous', jsonb_build_object(
                'id', :offset + g / 30, 'learner', 'L' || g, 'grade', g % 12),
            'current', jsonb_build_object(
                'id', :offset + g / 30, 'learner', 'L' || g + 1, 'grade', g % 12),
            'difference', jsonb_build_object(
                'learner', jsonb_build_array('L' || g, 'L' || g + 1)))
    END,
    now() - make_interval(secs => (:rows - g) * 0.5)
FROM generate_series(1, :rows) AS g
"""


def fill(engine: Engine, rows: int) -> None:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(FILLER_SQL), {"rows": rows, "offset": FILLER_OFFSET})
        connection.execute(text("ANALYZE audit_log"))
    print(f"filled {rows:,} log rows in {time.perf_counter() - started:.1f} s")


def measured_record(factory: sessionmaker[Any]) -> int:
    """An application with about a hundred events, own and related."""
    with factory() as session:
        parent = Parent(full_name="Pat Parent")
        application = Application(learner="Sam", submitted_by=parent)
        session.add(application)
        session.commit()
        comments = []
        for number in range(39):
            application.learner = f"Sam {number}"
            if number % 2:
                add_history_event(application, f"Reminder {number}", "sent by e-mail")
            if number % 3 == 0:
                parent.phone = f"555-{number:04d}"
            if number % 2 == 0:
                comment = Comment(
                    owner_id=application.id, owner_type="Application", text=f"c{number}"
                )
                session.add(comment)
                comments.append(comment)
            session.commit()
        for comment in comments[:5]:
            session.delete(comment)
        for comment in comments[5:8]:
            comment.owner_id = FILLER_OFFSET + 1  # moved to another application
        session.commit()
        return application.id


def measure(factory: sessionmaker[Any], engine: Engine, key: int, repetitions: int) -> None:
    queries = 0

    def count(*args: object) -> None:
        nonlocal queries
        queries += 1

    timings = []
    cpu = []
    rows = 0
    for repetition in range(repetitions + 20):
        with factory() as session:
            session.connection()
            queries = 0
            event.listen(engine, "before_cursor_execute", count)
            started, started_cpu = time.perf_counter(), time.process_time()
            page = auditkeeper.trail(session, Application, key)
            texts = [(r.event, r.description, r.user, r.date) for r in page]
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            event.remove(engine, "before_cursor_execute", count)
        if repetition >= 20:  # warm-up: statement caches, the spec cache
            timings.append(elapsed * 1000)
            cpu.append(elapsed_cpu * 1000)
        rows = len(texts)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"  trail of {rows} rows: median {statistics.median(timings):.2f} ms, "
        f"p95 {p95:.2f} ms (of which Python: median {statistics.median(cpu):.2f} ms), "
        f"{queries} queries"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", help="a PostgreSQL URL (default: a throw-away cluster)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="filler log rows")
    parser.add_argument("--repetitions", type=int, default=300)
    options = parser.parse_args()
    if options.pg_url:
        run(options.pg_url, options)
        return
    from tests.pgcluster import throwaway_cluster

    with throwaway_cluster() as url:
        run(url, options)


def run(url: str, options: argparse.Namespace) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS bench_trail CASCADE"))
        connection.execute(text("CREATE SCHEMA bench_trail"))
    engine.dispose()
    engine = create_engine(url, connect_args={"options": "-c search_path=bench_trail"})
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    fill(engine, options.rows)
    key = measured_record(factory)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        total = connection.scalar(text("SELECT count(*) FROM audit_log"))
    print(f"PostgreSQL log of {total:,} rows; application {key}:")
    print("without the optional trail indexes")
    measure(factory, engine, key, options.repetitions)
    create_trail_indexes(keeper, engine)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE audit_log"))
    print("with create_trail_indexes()")
    measure(factory, engine, key, options.repetitions)
    engine.dispose()


if __name__ == "__main__":
    main()
