"""What the row trigger's ``WHEN`` costs every flushed row: how it looks for a bulk
statement's announcement in ``current_query()``.

::

    PYTHONPATH=src .venv/bin/python bench/announcement.py [--runs 10] [--pg-url URL]

One database on a PostgreSQL server (a throw-away cluster, unless ``--pg-url`` names a
server where it may ``CREATE DATABASE``) with one table per form of the condition, each
with a deferred row trigger whose function returns at once: ``none`` (no ``WHEN``),
``prefix`` (what the capture triggers use: the announcement compared with the start of
the query) and ``search`` (the announcement searched for in the whole text). Each run
inserts 2,000 rows per table as 20 statements of 100 rows of 17 text columns (a
statement text of about 17 KB, like a flush's multi-row INSERT), the tables in a
shuffled order; it prints the median µs per row of each form, then drops the database.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine
from sqlalchemy.dialects import postgresql

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(_ROOT))

from bench.servers import fresh_database, postgresql_server  # noqa: E402

from auditkeeper.capture.triggers.postgresql import announced, announcement_token  # noqa: E402

__all__ = ["FORMS", "main", "measure"]

_COLUMNS = 17
_ROWS_PER_STATEMENT = 100
_STATEMENTS = 20


def _forms() -> dict[str, str | None]:
    table = Table("bench_item", MetaData())
    dialect = postgresql.dialect()
    token = announcement_token(table, dialect)
    return {
        "none": None,
        "prefix": f"NOT {announced(table, dialect, behind_comments=False)}",
        "search": f"coalesce(strpos(current_query(), '{token}'), 0) = 0",
    }


FORMS = tuple(_forms())


def measure(server: str, runs: int) -> dict[str, float]:
    """Median µs per inserted row of each form, over ``runs`` runs, in a database of its
    own on ``server``."""
    with fresh_database(server, "announcement") as url:
        return _measure(url, runs)


def _measure(url: str, runs: int) -> dict[str, float]:
    engine = create_engine(url)
    columns = ", ".join(f"c{i} text" for i in range(_COLUMNS))
    # As a flush sends them: typed placeholders, straight to the driver.
    row = "(" + ", ".join(["%s::TEXT"] * _COLUMNS) + ")"
    values = ", ".join([row] * _ROWS_PER_STATEMENT)
    parameters = tuple(f"value {r}" for r in range(_ROWS_PER_STATEMENT) for _ in range(_COLUMNS))
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NULL; END $$"
        )
        for form, condition in _forms().items():
            when = f"WHEN ({condition}) " if condition else ""
            connection.exec_driver_sql(f"CREATE TABLE t_{form} ({columns})")
            connection.exec_driver_sql(
                f"CREATE CONSTRAINT TRIGGER t_{form}_check AFTER INSERT ON t_{form} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {when}EXECUTE FUNCTION nothing()"
            )
    timings: dict[str, list[float]] = {form: [] for form in FORMS}
    connection = engine.raw_connection()  # the driver's own, as a flush's executemany
    try:
        cursor = connection.cursor()
        for _ in range(runs):
            for form in random.sample(FORMS, len(FORMS)):
                insert = f"INSERT INTO t_{form} VALUES {values}"
                started = time.perf_counter()
                for _ in range(_STATEMENTS):
                    cursor.execute(insert, parameters)
                connection.commit()  # the deferred trigger events fire here
                timings[form].append(time.perf_counter() - started)
                cursor.execute(f"TRUNCATE t_{form}")
                connection.commit()
    finally:
        connection.close()
    engine.dispose()
    rows = _ROWS_PER_STATEMENT * _STATEMENTS
    return {form: statistics.median(times) / rows * 1e6 for form, times in timings.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pg-url", help="a server where this may CREATE DATABASE")
    arguments = parser.parse_args(argv)
    with postgresql_server(arguments.pg_url) as server:
        result = measure(server, arguments.runs)
    print("| row trigger's WHEN | µs per inserted row (median) |")
    print("| --- | --- |")
    for form, micros in result.items():
        print(f"| {form} | {micros:.1f} |")


if __name__ == "__main__":
    main()
