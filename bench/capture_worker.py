"""One benchmark measurement: one variant x one workload on one database, in this process.

::

    python bench/capture_worker.py --variant auditkeeper --workload b \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/bench_1 [--connect-args JSON]

prints one JSON object on stdout (``bench/capture.py`` runs it in a fresh process per
measurement). The database must be empty: the worker creates the variant's tables,
seeds ``item`` without auditing where the workload needs existing rows, runs a short
untimed warm-up (one audited insert, update, bulk update and delete), then times the
workload and reports its client statements, the audit rows it wrote and their size.

Workloads (``--rows`` N = 10,000 and ``--batch`` B = 100 by default):

- ``a``: insert N rows, N/B transactions of B rows (``add_all`` + commit).
- ``b``: update 3 columns (text, int, timestamptz) of the N rows: N/B transactions
  that each SELECT B rows, change them and commit.
- ``c``: delete N/5 rows: transactions of SELECT B rows + ``session.delete`` + commit.
- ``d``: N/10 one-row transactions: ``session.get`` + a 3-column change + commit.
- ``e``: one bulk ``session.execute(update(Item).values(...))`` of the N rows + commit.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(_ROOT))

from bench.models import Model, build, item_row, updated_values  # noqa: E402

__all__ = ["WORKLOADS", "changed_rows", "describe", "main", "run"]

WORKLOADS = {
    "a": "insert 10k rows, 100 txns x 100",
    "b": "update 3 cols of 10k rows, 100 txns x 100 (incl. SELECT)",
    "c": "delete 2k rows, 20 txns x 100 (incl. SELECT)",
    "d": "1,000 one-row update txns (incl. get)",
    "e": "one bulk update() of 10k rows",
}
"""The workloads at the default size, as the table names them."""

_WARM_UP_INDEX = 10_000_000


def describe(workload: str, rows: int = 10_000, batch: int = 100) -> str:
    """The workload's name at this size, e.g. ``insert 10k rows, 100 txns x 100``."""
    if rows == 10_000 and batch == 100:
        return WORKLOADS[workload]
    changed = changed_rows(workload, rows)
    transactions = -(-changed // batch)
    return {
        "a": f"insert {rows:,} rows, {transactions} txns x {batch}",
        "b": f"update 3 cols of {rows:,} rows, {transactions} txns x {batch} (incl. SELECT)",
        "c": f"delete {changed:,} rows, {transactions} txns x {batch} (incl. SELECT)",
        "d": f"{changed:,} one-row update txns (incl. get)",
        "e": f"one bulk update() of {rows:,} rows",
    }[workload]


def changed_rows(workload: str, rows: int) -> int:
    """How many rows ``workload`` changes (each one audit row for a complete log)."""
    return {"a": rows, "b": rows, "c": rows // 5, "d": rows // 10, "e": rows}[workload]


def run(
    variant: str,
    workload: str,
    url: str,
    connect_args: dict[str, Any] | None = None,
    *,
    rows: int = 10_000,
    batch: int = 100,
    profile: str | None = None,
    server_stats: bool = False,
) -> dict[str, Any]:
    """Measure ``workload`` for ``variant`` on the empty database at ``url``.

    ``server_stats`` (PostgreSQL, a server with ``pg_stat_statements`` preloaded): also
    return what the server spent in the timed part, per statement (nested ones, such as
    a trigger's, included) and per function (``SERVER_STATS_SETTINGS``)."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    model = build(variant)
    engine = create_engine(url, connect_args=connect_args or {})
    dialect = engine.dialect.name
    if dialect == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        model.create_all(engine)
        factory = sessionmaker(engine)
        model.install(factory)
        ids = _seed(engine, model, rows) if workload != "a" else []
        _warm_up(factory, model)
        _settle(engine)
        audit_rows_before = _audit_rows(engine, model)

        timer = _Timer()
        work = _WORKLOAD_FUNCTIONS[workload](factory, model.Item, ids, rows, batch, timer)
        gc.collect()
        counter = _StatementCounter(engine, factory)
        rss_before = _max_rss_mb()
        profiler = _start_profiler() if profile else None
        if server_stats:
            _reset_server_stats(engine)
        with model.actor():
            started = time.perf_counter()
            work()
            total = time.perf_counter() - started
        if profiler is not None:
            profiler.stop()
            Path(profile or "").write_text(
                profiler.output_text(unicode=False, color=False, show_all=False)
            )
        rss_after = _max_rss_mb()
        counter.close()
        stats = _server_stats(engine) if server_stats else None

        audit_rows_after = _audit_rows(engine, model)
        audit_statements = counter.audit_statements(model.audit_tables)
        units = counter.flushes + (1 if workload == "e" else 0)
        return {
            "variant": variant,
            "workload": workload,
            "dialect": dialect,
            "rows": rows,
            "batch": batch,
            "changed_rows": changed_rows(workload, rows),
            "total_ms": round(total * 1000, 3),
            "write_ms": round(timer.write * 1000, 3),
            "flushes": counter.flushes,
            "units": units,
            "statements": sum(counter.statements.values()),
            "audit_statements": sum(audit_statements.values()),
            "audit_statements_per_flush": (
                round(sum(audit_statements.values()) / units, 3) if units else None
            ),
            "audit_statement_kinds": {
                _shorten(statement): count for statement, count in audit_statements.items()
            },
            "audit_rows": audit_rows_after - audit_rows_before,
            "audit_bytes_per_row": _bytes_per_row(engine, model, audit_rows_after),
            "rss_peak_mb": round(rss_after, 1),
            "rss_growth_mb": round(max(0.0, rss_after - rss_before), 1),
            "profiled": bool(profile),
            "auditkeeper_source": _auditkeeper_source(variant),
            **({"server_stats": stats} if stats is not None else {}),
        }
    finally:
        engine.dispose()


def _auditkeeper_source(variant: str) -> str | None:
    """The folder auditkeeper was imported from (``bench/capture.py --against`` checks
    that the other tree's code ran)."""
    module = sys.modules.get("auditkeeper")
    if variant != "auditkeeper" or module is None or module.__file__ is None:
        return None
    return str(Path(module.__file__).resolve().parent.parent)


# -- the workloads --------------------------------------------------------------------

_Timed = Callable[[], None]
_WorkloadFunction = Callable[[sessionmaker[Session], Any, list[int], int, int, "_Timer"], _Timed]
"""Prepares a workload's data (untimed) and returns the work to time."""


class _Timer:
    """Sums the write part (flush + commit) of a workload."""

    def __init__(self) -> None:
        self.write = 0.0

    def commit(self, session: Session) -> None:
        started = time.perf_counter()
        session.commit()
        self.write += time.perf_counter() - started


def _insert(
    factory: Any, item_cls: Any, ids: list[int], rows: int, batch: int, timer: _Timer
) -> _Timed:
    data = [item_row(i) for i in range(rows)]

    def work() -> None:
        # The objects are built inside the timed part: the application does that too.
        for start in range(0, rows, batch):
            with factory() as session:
                session.add_all([item_cls(**values) for values in data[start : start + batch]])
                timer.commit(session)

    return work


def _update(
    factory: Any, item_cls: Any, ids: list[int], rows: int, batch: int, timer: _Timer
) -> _Timed:
    changes = {item_id: updated_values(n) for n, item_id in enumerate(ids)}

    def work() -> None:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            with factory() as session:
                items = session.scalars(
                    select(item_cls)
                    .where(item_cls.id.between(chunk[0], chunk[-1]))
                    .order_by(item_cls.id)
                ).all()
                for item in items:
                    for key, value in changes[item.id].items():
                        setattr(item, key, value)
                timer.commit(session)

    return work


def _delete(
    factory: Any, item_cls: Any, ids: list[int], rows: int, batch: int, timer: _Timer
) -> _Timed:
    doomed = ids[: changed_rows("c", rows)]

    def work() -> None:
        for start in range(0, len(doomed), batch):
            chunk = doomed[start : start + batch]
            with factory() as session:
                items = session.scalars(
                    select(item_cls)
                    .where(item_cls.id.between(chunk[0], chunk[-1]))
                    .order_by(item_cls.id)
                ).all()
                for item in items:
                    session.delete(item)
                timer.commit(session)

    return work


def _one_row(
    factory: Any, item_cls: Any, ids: list[int], rows: int, batch: int, timer: _Timer
) -> _Timed:
    chosen = ids[::10][: changed_rows("d", rows)]
    changes = {item_id: updated_values(n) for n, item_id in enumerate(chosen)}

    def work() -> None:
        for item_id in chosen:
            with factory() as session:
                item = session.get(item_cls, item_id)
                for key, value in changes[item_id].items():
                    setattr(item, key, value)
                timer.commit(session)

    return work


def _bulk(
    factory: Any, item_cls: Any, ids: list[int], rows: int, batch: int, timer: _Timer
) -> _Timed:
    moment = updated_values(0)["updated_at"]

    def work() -> None:
        with factory() as session:
            started = time.perf_counter()
            session.execute(
                update(item_cls).values(
                    quantity=item_cls.quantity + 1, status="bulk", updated_at=moment
                )
            )
            session.commit()
            timer.write += time.perf_counter() - started

    return work


_WORKLOAD_FUNCTIONS: dict[str, _WorkloadFunction] = {
    "a": _insert,
    "b": _update,
    "c": _delete,
    "d": _one_row,
    "e": _bulk,
}


# -- set-up ---------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
    finally:
        cursor.close()


def _seed(engine: Engine, model: Model, rows: int) -> list[int]:
    """Insert the N items (one Core executemany) and return their ids. On PostgreSQL
    with triggers off, so that neither PostgreSQL-Audit's nor auditkeeper's capture
    triggers log them; auditkeeper's SQLite triggers do, before the clock starts."""
    table = model.Item.__table__
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # the triggers must not log the seed
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(insert(table), [item_row(i) for i in range(rows)])
    with engine.connect() as connection:
        return list(connection.scalars(select(table.c.id).order_by(table.c.id)))


def _warm_up(factory: sessionmaker[Session], model: Model) -> None:
    """One audited insert, update, bulk update and delete, untimed: every variant
    compiles its statements and checks its catalogue before the clock starts."""
    item_cls = model.Item
    with model.actor():
        with factory() as session:
            item = item_cls(**item_row(_WARM_UP_INDEX))
            session.add(item)
            session.commit()
            item_id = item.id
        with factory() as session:
            item = session.get(item_cls, item_id)
            for key, value in updated_values(_WARM_UP_INDEX).items():
                setattr(item, key, value)
            session.commit()
        with factory() as session:
            session.execute(
                update(item_cls)
                .where(item_cls.id == item_id)
                .values(quantity=item_cls.quantity + 1, status="bulk")
            )
            session.commit()
        with factory() as session:
            session.delete(session.get(item_cls, item_id))
            session.commit()


def _settle(engine: Engine) -> None:
    """Start the clock on a quiet database: statistics fresh, dirty pages written."""
    gc.collect()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE item"))
            # Without superuser (or pg_checkpoint) rights the clock starts all the same.
            with contextlib.suppress(DBAPIError):
                connection.execute(text("CHECKPOINT"))
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# -- what was written -----------------------------------------------------------------


class _StatementCounter:
    """Counts the client's statements (``before_cursor_execute``: one per execute or
    executemany) and the flushes of the benchmark's sessions.

    auditkeeper also sends a few statements straight through the driver, where no
    SQLAlchemy event sees them: the actor setting (PostgreSQL, before raw SQL and bulk
    statements), SQLite's capture-state and pending-row statements around a flush. They
    are counted at the driver (``driver``): psycopg's ``Cursor.execute``, SQLite's trace
    callback, keeping only the statements that name auditkeeper's settings or tables."""

    _MARKERS = ("auditkeeper.actor", "auditkeeper_capture_", "SET CONSTRAINTS", "pg_trigger")
    """Text found only in auditkeeper's own statements besides those naming the log: the
    actor setting, SQLite's capture tables, the PostgreSQL triggers' catalogue."""

    def __init__(self, engine: Engine, factory: sessionmaker[Session]) -> None:
        self.engine = engine
        self.factory = factory
        self.statements: Counter[str] = Counter()
        self.driver: Counter[str] = Counter()
        self.flushes = 0
        self._traced: list[Any] = []
        self._restore: Callable[[], None] = lambda: None
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(factory, "after_flush", self._flush)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "checkout", self._trace)
        else:
            self._watch_psycopg()

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements[statement] += 1

    def _flush(self, session: Any, flush_context: Any) -> None:
        self.flushes += 1

    def _driver_statement(self, statement: str) -> None:
        if not statement.startswith("--") and self._ours(statement):
            self.driver[statement] += 1

    def _ours(self, statement: str) -> bool:
        return any(marker in statement for marker in self._MARKERS)

    def _trace(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.set_trace_callback(self._driver_statement)
        self._traced.append(dbapi_connection)

    def _watch_psycopg(self) -> None:
        import psycopg

        original = psycopg.Cursor.execute

        def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._driver_statement(query if isinstance(query, str) else repr(query))
            return original(cursor, query, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        self._restore = lambda: setattr(psycopg.Cursor, "execute", original)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.factory, "after_flush", self._flush)
        if self.engine.dialect.name == "sqlite":
            event.remove(self.engine, "checkout", self._trace)
        for dbapi_connection in self._traced:
            with contextlib.suppress(Exception):  # closed meanwhile
                dbapi_connection.set_trace_callback(None)
        self._restore()

    def audit_statements(self, tables: tuple[str, ...]) -> dict[str, int]:
        """The statements that read or write one of ``tables`` or carry a marker of
        auditkeeper's own, and those auditkeeper sent through the driver."""
        if not tables:
            return {}
        names = "|".join(re.escape(name) for name in tables)
        pattern = re.compile(
            rf'\b(?:INTO|UPDATE|FROM|JOIN)\s+(?:"?\w+"?\.)?"?(?:{names})"?(?![\w])',
            re.IGNORECASE,
        )
        found = {s: n for s, n in self.statements.items() if pattern.search(s) or self._ours(s)}
        for statement, count in self.driver.items():
            unseen = count - self.statements.get(statement, 0)  # psycopg sees both kinds
            if unseen > 0:
                found[statement] = found.get(statement, 0) + unseen
        return found


def _shorten(statement: str) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= 90 else flat[:87] + "..."


def _ends(statement: str) -> str:
    """Both ends of a statement: a trigger's INSERT into the log and the flush's start
    alike and differ at the end. Without comments (a bulk statement's announcement)."""
    flat = " ".join(re.sub(r"/\*.*?\*/", " ", statement, flags=re.DOTALL).split())
    return flat if len(flat) <= 100 else f"{flat[:55]} ... {flat[-40:]}"


def _audit_rows(engine: Engine, model: Model) -> int:
    if not model.audit_tables:
        return 0
    with engine.connect() as connection:
        return int(
            connection.exec_driver_sql(f'SELECT count(*) FROM "{model.audit_tables[0]}"').scalar()
            or 0
        )


def _bytes_per_row(engine: Engine, model: Model, audit_rows: int) -> float | None:
    """Storage of the variant's audit tables (heap, TOAST and indexes) per row of its
    main audit table; on SQLite from ``dbstat`` (None where SQLite lacks it)."""
    if not model.audit_tables or audit_rows == 0:
        return None
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            size = connection.execute(
                text(
                    "SELECT sum(pg_total_relation_size(to_regclass(quote_ident(name)))) "
                    "FROM unnest(CAST(:names AS text[])) AS name"
                ),
                {"names": list(model.audit_tables)},
            ).scalar()
        else:
            marks = ", ".join("?" for _ in model.audit_tables)
            try:
                size = connection.exec_driver_sql(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                    f"(SELECT name FROM sqlite_master WHERE tbl_name IN ({marks}))",
                    tuple(model.audit_tables),
                ).scalar()
            except Exception:  # dbstat is a compile-time option of SQLite
                return None
    return None if size is None else round(int(size) / audit_rows, 1)


SERVER_STATS_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_planning": "on",
    "track_functions": "all",
}
"""What a server needs for ``server_stats``: every statement, nested ones included,
with its planning time, and every function's own time."""


def _reset_server_stats(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise ValueError("server statistics are PostgreSQL's")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        connection.exec_driver_sql("SELECT pg_stat_statements_reset()")
        connection.exec_driver_sql("SELECT pg_stat_reset()")


def _server_stats(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The timed part's statements and functions in this database, costliest first."""
    engine.dispose()  # the workload's backends exit, and report their function times
    time.sleep(0.5)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        statements = connection.execute(
            text(
                "SELECT s.query, s.toplevel, s.calls, s.rows, "
                "s.total_plan_time, s.total_exec_time FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
                "AND s.query NOT LIKE :own "
                "ORDER BY s.total_plan_time + s.total_exec_time DESC LIMIT 12"
            ),
            {"own": "%pg_stat_%"},
        ).mappings()
        functions = connection.exec_driver_sql(
            "SELECT funcname, calls, self_time, total_time FROM pg_stat_user_functions "
            "ORDER BY self_time DESC LIMIT 12"
        ).mappings()
        return {
            "statements": [
                {
                    "query": _ends(row["query"]),
                    "nested": not row["toplevel"],
                    "calls": row["calls"],
                    "rows": row["rows"],
                    "plan_ms": round(row["total_plan_time"], 3),
                    "exec_ms": round(row["total_exec_time"], 3),
                }
                for row in statements
            ],
            "functions": [
                {
                    "function": row["funcname"],
                    "calls": row["calls"],
                    "self_ms": round(row["self_time"], 3),
                    "total_ms": round(row["total_time"], 3),
                }
                for row in functions
            ],
        }


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    return profiler


# -- command line ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--url", required=True, help="an empty database (SQLAlchemy URL)")
    parser.add_argument("--connect-args", default="{}", help="JSON: create_engine connect_args")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", metavar="PATH", help="write a pyinstrument text profile")
    parser.add_argument(
        "--server-stats",
        action="store_true",
        help="PostgreSQL: also report the server's time per statement and function",
    )
    args = parser.parse_args(argv)
    result = run(
        args.variant,
        args.workload,
        args.url,
        json.loads(args.connect_args),
        rows=args.rows,
        batch=args.batch,
        profile=args.profile,
        server_stats=args.server_stats,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
