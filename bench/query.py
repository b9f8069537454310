"""Benchmark: the query layer on a PostgreSQL log of 2,000,000 rows (issue 6).

    .venv/bin/python bench/query.py                       # a throw-away PostgreSQL cluster
    .venv/bin/python bench/query.py --rows 200000 --repetitions 3
    .venv/bin/python bench/query.py --pg-url postgresql+psycopg://user@host/db
    .venv/bin/python bench/query.py --pg-url ... --no-load   # measure again, same data

The log has the demo CRM's shape (``auditkeeper.demo.crm``): businesses, leads and
comments, 20,000 records with about 100 rows each over one year, 200 users, a system
row in 50 and an impersonated row in 100; ``previous`` / ``current`` hold the whole
record and ``difference`` the one to three fields each update changed. It is loaded
with COPY into the bare table, then the indexes are built and the table analysed.

Every query goes through the public API (``auditkeeper.history``, ``read_page``,
``as_of``, ``export_log``) in a SQLAlchemy session over psycopg 3, so the times include
SQLAlchemy, the ORM objects and JSON parsing. Each measure runs ``--repetitions`` times
over ``--keys`` random keys after a warm-up; it reports the median of the repetitions'
medians, their min-max and the 95th percentile of all calls. Targets: every page and
history query under 5 ms median; export above 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.servers import postgresql_server  # noqa: E402

import auditkeeper  # noqa: E402
from auditkeeper import LogFilter  # noqa: E402
from auditkeeper.demo.crm import AuditLogActions as A  # noqa: E402
from auditkeeper.demo.crm import AuditLogEntityTypes as E  # noqa: E402
from auditkeeper.demo.crm import build_crm  # noqa: E402
from auditkeeper.query.cursor import Position, encode_cursor  # noqa: E402
from auditkeeper.query.filters import resolve  # noqa: E402

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
USERS = 200
RECORDS = {E.BUSINESS: 4_000, E.LEAD: 12_000, E.COMMENT: 4_000}
COPY_COLUMNS = (
    "action, entity_type, number_identifier, changed_objects, user_id, user_email, "
    "is_impersonated, impersonator_user_id, impersonator_email, transaction_id, created_at"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--keys", type=int, default=200, help="random keys per repetition")
    parser.add_argument("--pg-url", help="use this database instead of a throw-away cluster")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--no-load",
        action="store_true",
        help="with --pg-url: measure the log a previous run loaded there (same --rows)",
    )
    args = parser.parse_args()
    with postgresql_server(args.pg_url) as url:
        engine = create_engine(url)
        try:
            crm = build_crm()
            load = {} if args.no_load else fill(engine, crm, args.rows)
            results = measure(engine, crm, args)
        finally:
            engine.dispose()
    report = {"rows": args.rows, "load": load, "results": results, "load_average": _load()}
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


def _load() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages: other work skews the figures."""
    import os

    return [round(value, 2) for value in os.getloadavg()]


# -- loading ----------------------------------------------------------------------------


def fill(engine: Engine, crm: Any, rows: int) -> dict[str, float]:
    """Create the CRM's tables, COPY ``rows`` audit rows into the bare log, then build
    its indexes and analyse it; return the seconds of each step."""
    keeper = crm.keeper
    table = keeper.table
    crm.Base.metadata.drop_all(engine)
    crm.Base.metadata.create_all(engine)
    keeper.create_all(engine)
    timings: dict[str, float] = {}
    with engine.begin() as connection:
        connection.execute(
            crm.User.__table__.insert(),
            [{"email": _email(n), "full_name": f"User {n}"} for n in range(1, USERS + 1)],
        )
        for index in table.indexes:
            connection.execute(text(f"DROP INDEX {index.name}"))
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table.name} ({COPY_COLUMNS}) FROM STDIN") as copy:
            for chunk in _lines(rows):
                copy.write(chunk)
        raw.commit()
    finally:
        raw.close()
    timings["copy_s"] = round(time.perf_counter() - started, 1)
    with engine.begin() as connection:
        for index in table.indexes:
            started = time.perf_counter()
            index.create(connection)
            timings[f"index_{index.name}_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {table.name}"))
        size = connection.execute(
            text(f"SELECT pg_total_relation_size('{table.name}'), pg_relation_size('{table.name}')")
        ).one()
    timings["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
    timings["total_mb"] = round(size[0] / 2**20)
    timings["heap_mb"] = round(size[1] / 2**20)
    print(f"loaded {rows:,} rows: {timings}", file=sys.stderr)
    return timings


def _email(number: int) -> str:
    return f"user{number}@example.com"


def _lines(rows: int, chunk_rows: int = 20_000) -> Iterator[str]:
    """COPY text lines for ``rows`` rows over one year, oldest first."""
    rng = random.Random(6)
    records: list[tuple[E, int]] = [
        (kind, number) for kind, count in RECORDS.items() for number in range(1, count + 1)
    ]
    states: dict[tuple[E, int], dict[str, Any]] = {}
    step = YEAR / rows
    transaction = uuid.uuid4()
    buffer: list[str] = []
    for row in range(rows):
        if rng.random() < 0.5:
            transaction = uuid.UUID(int=rng.getrandbits(128), version=4)
        kind, number = records[rng.randrange(len(records))]
        key = (kind, number)
        state = states.get(key)
        action, document = _change(rng, kind, number, state)
        states[key] = document["current"]
        who = rng.randrange(1, USERS + 1) if rng.random() >= 0.02 else None
        impersonator = rng.randrange(1, 6) if who is not None and rng.random() < 0.01 else None
        moment = START + step * row
        buffer.append(
            "\t".join(
                (
                    str(int(action)),
                    str(int(kind)),
                    str(number),
                    orjson.dumps(document).decode(),
                    r"\N" if who is None else str(who),
                    r"\N" if who is None else _email(who),
                    "t" if impersonator else "f",
                    r"\N" if impersonator is None else str(impersonator),
                    r"\N" if impersonator is None else _email(impersonator),
                    str(transaction),
                    moment.isoformat(),
                )
            )
        )
        if len(buffer) == chunk_rows:
            yield "\n".join(buffer) + "\n"
            buffer.clear()
    if buffer:
        yield "\n".join(buffer) + "\n"


def _change(
    rng: random.Random, kind: E, number: int, state: dict[str, Any] | None
) -> tuple[A, dict[str, Any]]:
    """The action and document of the next change of one record."""
    if state is None:
        current = _new_record(rng, kind, number)
        if kind is E.COMMENT:  # the seed does not audit comment creation
            state = current
        else:
            create = A.BUSINESS_CREATE if kind is E.BUSINESS else A.LEAD_CREATE
            difference = {k: [None, v] for k, v in current.items() if v is not None}
            return create, {"previous": None, "current": current, "difference": difference}
    current = dict(state)
    if kind is E.BUSINESS:
        fields = rng.sample(["name", "website", "annual_revenue", "is_active"], rng.randint(1, 2))
        action = A.BUSINESS_UPDATE
    elif kind is E.LEAD:
        fields = rng.sample(["status", "score", "name", "email", "business_id"], rng.randint(1, 3))
        action = A.LEAD_ASSIGN_TO_BUSINESS if "business_id" in fields else A.LEAD_UPDATE
    else:
        fields = ["body"]
        action = A.COMMENT_UPDATE
    for field in fields:
        current[field] = _value(rng, field, number)
    difference = {f: [state[f], current[f]] for f in fields if state[f] != current[f]}
    return action, {"previous": state, "current": current, "difference": difference}


def _new_record(rng: random.Random, kind: E, number: int) -> dict[str, Any]:
    if kind is E.BUSINESS:
        return {
            "id": number,
            "name": f"Business {number}",
            "website": None,
            "annual_revenue": None,
            "is_active": True,
            "founded_on": "2001-05-17",
            "settings": {"tier": "gold", "seats": 12},
            "api_token": "[redacted]",
            "created_at": "2025-12-31T10:00:00",
        }
    if kind is E.LEAD:
        return {
            "id": number,
            "name": f"Lead {number}",
            "email": f"lead{number}@example.com",
            "status": "new",
            "score": 0,
            "external_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "business_id": None,
        }
    return {"id": number, "lead_id": rng.randint(1, 12_000), "author_id": 1, "body": "Called."}


def _value(rng: random.Random, field: str, number: int) -> Any:
    if field == "status":
        return rng.choice(["new", "contacted", "won", "lost"])
    if field in ("score",):
        return rng.randint(0, 100)
    if field == "business_id":
        return rng.randint(1, 4_000)
    if field == "annual_revenue":
        return f"{rng.randint(1, 99_999)}000.00"
    if field == "is_active":
        return rng.random() < 0.9
    if field == "website":
        return f"https://b{number}-{rng.randint(1, 9)}.example"
    if field == "email":
        return f"lead{number}.{rng.randint(1, 99)}@example.com"
    if field == "body":
        return f"Called back, note {rng.randint(1, 10_000)}: wants a demo next week."
    return f"{field.title()} {number} v{rng.randint(1, 99)}"


# -- measuring --------------------------------------------------------------------------


def measure(engine: Engine, crm: Any, args: argparse.Namespace) -> dict[str, Any]:
    keeper = crm.keeper
    rng = random.Random(11)
    repetitions, count = args.repetitions, args.keys
    leads = RECORDS[E.LEAD]

    def lead_keys() -> list[int]:
        return [rng.randint(1, leads) for _ in range(count)]

    def instants() -> list[dt.datetime]:
        return [START + YEAR * rng.random() for _ in range(count)]

    def windows() -> list[tuple[dt.datetime, dt.datetime]]:
        starts = [START + (YEAR - dt.timedelta(days=30)) * rng.random() for _ in range(count)]
        return [(s, s + dt.timedelta(days=30)) for s in starts]

    depth = max(2, min(100, args.rows // USERS // 50 - 1))  # 100 at the full size
    deep = deep_cursors(engine, keeper, depth=depth, users=min(count, 50))
    results: dict[str, Any] = {}
    results["history of one record (~100 rows)"] = timed(
        repetitions,
        lead_keys,
        lambda s, key: auditkeeper.history(s, keeper, "LEAD", key),
        engine,
        rows=True,
    )
    results["user's page of 50, depth 1"] = timed(
        repetitions,
        lambda: [rng.randint(1, USERS) for _ in range(count)],
        lambda s, user: auditkeeper.read_page(s, keeper, LogFilter(user_id=user)),
        engine,
        rows=True,
    )
    results[f"user's page of 50, depth {depth}"] = timed(
        repetitions,
        lambda: [rng.choice(deep) for _ in range(count)],
        lambda s, pair: auditkeeper.read_page(
            s, keeper, LogFilter(user_id=pair[0]), cursor=pair[1]
        ),
        engine,
        rows=True,
    )
    results["lead 'status' changed in a 30-day window, page of 50"] = timed(
        repetitions,
        windows,
        lambda s, window: auditkeeper.read_page(
            s,
            keeper,
            LogFilter(entity_type="LEAD", field="status", since=window[0], until=window[1]),
        ),
        engine,
        rows=True,
    )
    results["'status' changed to 'won' in a 30-day window, page of 50"] = timed(
        repetitions,
        windows,
        lambda s, window: auditkeeper.read_page(
            s,
            keeper,
            LogFilter(
                entity_type="LEAD",
                field="status",
                changed_to="won",
                since=window[0],
                until=window[1],
            ),
        ),
        engine,
        rows=True,
    )
    results["as-of a random instant"] = timed(
        repetitions,
        lambda: list(zip(lead_keys(), instants(), strict=True)),
        lambda s, pair: auditkeeper.as_of(s, keeper, "LEAD", pair[0], at=pair[1]),
        engine,
    )
    results["export to JSON Lines"] = export_rate(engine, keeper, repetitions)
    return results


def deep_cursors(engine: Engine, keeper: Any, *, depth: int, users: int) -> list[tuple[int, str]]:
    """(user, cursor of page ``depth``) for the first ``users`` users: the position of
    the last row of page ``depth - 1``, found once with OFFSET."""
    table = keeper.table
    found = []
    with engine.connect() as connection:
        for user in range(1, users + 1):
            row = connection.execute(
                select(table.c.created_at, table.c.id)
                .where(table.c.user_id == user)
                .order_by(table.c.created_at.desc(), table.c.id.desc())
                .offset(50 * (depth - 1) - 1)
                .limit(1)
            ).one()
            fingerprint = resolve(LogFilter(user_id=user), keeper).fingerprint()
            found.append((user, encode_cursor(Position(row.created_at, row.id), fingerprint)))
    return found


def timed(
    repetitions: int,
    keys: Callable[[], list[Any]],
    call: Callable[[Session, Any], Any],
    engine: Engine,
    *,
    rows: bool = False,
) -> dict[str, Any]:
    """Per-call milliseconds: median of the repetitions' medians, min-max, p95."""
    medians, every, sizes = [], [], []
    with Session(engine) as session:
        for key in keys()[:20]:  # warm-up
            call(session, key)
            session.expunge_all()
        for _ in range(repetitions):
            times = []
            for key in keys():
                started = time.perf_counter()
                result = call(session, key)
                times.append((time.perf_counter() - started) * 1000)
                if rows:
                    sizes.append(len(result))
                session.expunge_all()
            medians.append(statistics.median(times))
            every.extend(times)
    every.sort()
    figures = {
        "median_ms": round(statistics.median(medians), 2),
        "min_max_ms": [round(min(medians), 2), round(max(medians), 2)],
        "p95_ms": round(every[int(len(every) * 0.95)], 2),
    }
    if sizes:
        figures["median_rows"] = statistics.median(sizes)
    print(figures, file=sys.stderr)
    return figures


class _Sink(io.TextIOBase):
    """Counts what it is given, keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)


def export_rate(engine: Engine, keeper: Any, repetitions: int) -> dict[str, Any]:
    """Rows per second of ``export_log`` to JSON Lines over three months of rows."""
    window = LogFilter(
        since=START + dt.timedelta(days=90),
        until=START + dt.timedelta(days=180),
        newest_first=False,
    )
    rates = []
    count = 0
    for _ in range(max(repetitions, 1)):
        sink = _Sink()
        started = time.perf_counter()
        with engine.connect() as connection:
            count = auditkeeper.export_log(connection, keeper, sink, window)
        rates.append(count / (time.perf_counter() - started))
        print(f"export: {count:,} rows, {rates[-1]:,.0f} rows/s", file=sys.stderr)
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(keeper.table))
    return {
        "rows": count,
        "of_rows": total,
        "median_rows_per_s": round(statistics.median(rates)),
        "min_max_rows_per_s": [round(min(rates)), round(max(rates))],
    }


if __name__ == "__main__":
    main()
