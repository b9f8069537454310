"""What ``Auditkeeper(leading_comments=True)`` costs each flushed statement: the row
triggers' ``WHEN`` that reads auditkeeper's marks behind a tracer's comments.

::

    PYTHONPATH=src .venv/bin/python bench/leading_comments.py [--runs 7] [--pg-url URL]

One database on a PostgreSQL server (a throw-away cluster, unless ``--pg-url`` names a
server where it may ``CREATE DATABASE``) with one table per setting, each with the two
deferred row triggers that ``create_all`` gives an audited table (the capture and the
flushed trigger, their ``WHEN`` as generated), on a function that returns at once: so
what differs is the ``WHEN`` alone. Each run deletes 2,000 rows of each table as a
flush does, one ``/* auditkeeper:flushed */ DELETE`` per row through the driver's
``executemany``, then commits (the deferred events fire); the tables in a shuffled
order. Forms: ``prefix`` (the default), ``behind comments`` (``leading_comments=True``),
and ``behind comments, traced`` (the same, each statement preceded by a comment as
Datadog's database monitoring puts it, the case the setting is for). It prints the
median µs per deleted row, then drops the database.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine
from sqlalchemy.dialects import postgresql

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(_ROOT))

from bench.servers import fresh_database, postgresql_server  # noqa: E402

from auditkeeper.capture.triggers import FLUSHED, row_triggers  # noqa: E402

__all__ = ["FORMS", "main", "measure"]

_ROWS = 2_000
TRACER = "/*dddbs='bench',dde='prod',ddps='api',ddpv='1.0'*/ "
"""What Datadog's database monitoring puts before each statement (service mode)."""

FORMS = {
    "prefix": (False, ""),
    "behind comments": (True, ""),
    "behind comments, traced": (True, TRACER),
}
"""Form: (``leading_comments``, text before each statement)."""


def _table(name: str) -> Table:
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), Column("v", Text))


def measure(server: str, runs: int) -> dict[str, float]:
    """Median µs per deleted row of each form, over ``runs`` runs, in a database of its
    own on ``server``."""
    with fresh_database(server, "leading_comments") as url:
        return _measure(url, runs)


def _measure(url: str, runs: int) -> dict[str, float]:
    engine = create_engine(url)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    names = {form: f"t_{number}" for number, form in enumerate(FORMS)}
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NULL; END $$"
        )
        for form, (behind_comments, _) in FORMS.items():
            table = _table(names[form])
            table.create(connection)
            for statement in row_triggers(
                table, "nothing", dialect, is_announced=True, behind_comments=behind_comments
            ):
                connection.exec_driver_sql(statement)
    timings: dict[str, list[float]] = {form: [] for form in FORMS}
    connection = engine.raw_connection()  # the driver's own, as a flush's executemany
    try:
        cursor = connection.cursor()
        for _ in range(runs):
            for form in random.sample(list(FORMS), len(FORMS)):
                name, before = names[form], FORMS[form][1]
                cursor.execute(
                    f"INSERT INTO {name} SELECT g, repeat('x', 100) "
                    f"FROM generate_series(1, {_ROWS}) g"
                )
                connection.commit()
                delete = f"{before}{FLUSHED} DELETE FROM {name} WHERE id = %s"
                started = time.perf_counter()
                cursor.executemany(delete, [(key,) for key in range(1, _ROWS + 1)])
                connection.commit()  # the deferred trigger events fire here
                timings[form].append(time.perf_counter() - started)
    finally:
        connection.close()
    engine.dispose()
    return {form: statistics.median(times) / _ROWS * 1e6 for form, times in timings.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pg-url", help="a server where this may CREATE DATABASE")
    arguments = parser.parse_args(argv)
    with postgresql_server(arguments.pg_url) as server:
        result = measure(server, arguments.runs)
    print("| row triggers' WHEN | µs per flushed DELETE (median) |")
    print("| --- | --- |")
    for form, micros in result.items():
        print(f"| {form} | {micros:.1f} |")


if __name__ == "__main__":
    main()
