"""What the TOAST compression of ``changed_objects`` costs on write: pglz, lz4, or none.

::

    PYTHONPATH=src .venv/bin/python bench/compression.py [--repeat 200] [--pg-url URL]

Two databases on one PostgreSQL server (a throw-away cluster with fsync on, unless
``--pg-url`` names a server where it may ``CREATE DATABASE``), each with the bench
model's audit table, one set to each method (``none``: lz4 named, but the table's
``toast_tuple_target`` raised to its maximum, so that a row under 8 KB is stored inline
as it is, uncompressed). The same 100 audit rows of the bench
model's insert documents (``bench/models.py``, about 2.5 KB of JSON each, past the 2 KB
TOAST threshold) are written as one executemany + commit, alternating between the two,
``--repeat`` times each. It prints the median, first quartile and minimum time per 100
rows, and the bytes stored per audit row (table, TOAST and indexes), then drops the
two databases.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, inspect, make_url, text

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(_ROOT))

from bench.models import ACTOR_EMAIL, ACTOR_ID, build, item_row  # noqa: E402
from bench.servers import postgresql_server  # noqa: E402

__all__ = ["METHODS", "main", "measure"]

METHODS = ("pglz", "lz4", "none")
_NULL_COLUMNS = ("impersonator_user_id", "impersonator_email", "tenant_id", "reason", "context")
"""Actor columns the recorder writes as null for a plain actor."""


def _documents(size: int) -> list[dict[str, Any]]:
    """The audit rows (without actor columns) of ``size`` created items."""
    from auditkeeper.capture.recorder import _row

    model = build("auditkeeper")
    plan = model.extra["keeper"]._recorder.plan_for(inspect(model.Item))
    items = [model.Item(id=i, **item_row(i)) for i in range(1, size + 1)]
    rows = [_row(plan, inspect(item), "create", {}, {}, {}, dialect="postgresql") for item in items]
    return [row for row in rows if row is not None]


def _database(server: str, method: str) -> tuple[Engine, Table]:
    """A fresh database with the audit table, its documents compressed with ``method``."""
    name = f"compression_{method}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine(make_url(server).set(database=name))
    model = build("auditkeeper")
    model.create_all(engine)
    table: Table = model.extra["keeper"].table
    with engine.begin() as connection:
        compression = "lz4" if method == "none" else method
        connection.execute(
            text(
                f"ALTER TABLE {table.name} ALTER COLUMN changed_objects"
                f" SET COMPRESSION {compression}"
            )
        )
        if method == "none":
            connection.execute(text(f"ALTER TABLE {table.name} SET (toast_tuple_target = 8160)"))
    return engine, table


def measure(server: str, repeat: int, size: int) -> dict[str, Any]:
    """Seconds per write of ``size`` rows, and bytes per stored row, for each method."""
    from auditkeeper.store.writer import write_rows

    documents = _documents(size)
    databases = {method: _database(server, method) for method in METHODS}
    seconds: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(repeat):
        for method, (engine, table) in databases.items():
            stamp = {
                "user_id": ACTOR_ID,
                "user_email": ACTOR_EMAIL,
                "is_impersonated": False,
                **dict.fromkeys(_NULL_COLUMNS),
                "transaction_id": uuid.uuid4(),
                "created_at": dt.datetime.now(dt.UTC),
            }
            rows = [{**document, **stamp} for document in documents]
            with engine.connect() as connection:
                started = time.perf_counter()
                with connection.begin():
                    write_rows(connection, table, rows)
                seconds[method].append(time.perf_counter() - started)
    result: dict[str, Any] = {}
    for method, (engine, table) in databases.items():
        with engine.connect() as connection:
            stored = connection.execute(
                text(f"SELECT pg_total_relation_size('{table.name}') / count(*) FROM {table.name}")
            ).scalar_one()
            used = connection.execute(
                text(
                    "SELECT DISTINCT coalesce(pg_column_compression(changed_objects), 'none')"
                    f" FROM {table.name}"
                )
            ).scalars()
            result[method] = {"seconds": seconds[method], "bytes": stored, "used": sorted(used)}
        engine.dispose()
        _drop(server, engine)
    return result


def _drop(server: str, engine: Engine) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{engine.url.database}"'))
    admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=200, help="writes timed per method")
    parser.add_argument("--rows", type=int, default=100, help="audit rows per write")
    parser.add_argument("--pg-url", help="a server of your own (default: a throw-away one)")
    args = parser.parse_args(argv)
    with postgresql_server(args.pg_url, fsync=True) as server:
        result = measure(server, args.repeat, args.rows)
    print(f"writing {args.rows} audit rows (one executemany + commit), {args.repeat} times each")
    print("| compression | median ms | p25 ms | min ms | bytes per audit row | used |")
    print("|---|---|---|---|---|---|")
    for method, found in result.items():
        seconds = found["seconds"]
        quartile = statistics.quantiles(seconds, n=4)[0]
        print(
            f"| {method} | {statistics.median(seconds) * 1e3:.2f} | {quartile * 1e3:.2f} "
            f"| {min(seconds) * 1e3:.2f} | {found['bytes']:,} | {', '.join(found['used'])} |"
        )


if __name__ == "__main__":
    main()
