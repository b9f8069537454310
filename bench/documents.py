"""Micro-benchmark of the capture path's Python part: building and encoding audit rows.

::

    PYTHONPATH=src .venv/bin/python bench/documents.py [--repeat 400] [--flush 100]

No database round trip is timed. The bench model's ``item`` (``bench/models.py``) is
loaded from an in-memory SQLite database once; each measurement then turns one flush's
worth of objects (``--flush``, 100 by default) into audit rows exactly as the flush hook
does after the flush (``recorder._row``: old values from the committed state, new ones
from the instance) and encodes each row's ``changed_objects`` (``values.dumps``, what the
audit table's column type does when the rows are written). Shapes:

- ``insert``: new objects (every column against null);
- ``update``: loaded objects with 3 columns changed (text, int, timestamptz), as in (b);
- ``delete``: loaded objects, as in (c);
- ``bulk``: plain ``{column: value}`` rows before and after an ``update()`` of 3 columns,
  as the bulk-statement path (e) reads them.

Shapes run interleaved, ``--repeat`` times each, with the garbage collector off while a
flush is timed. It prints, per shape, the median and minimum time of one flush and the
median per row. The machine is shared and noisy: compare runs made one after the other,
and read the medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(_ROOT))

from bench.models import build, item_row, updated_values  # noqa: E402

__all__ = ["SHAPES", "main", "measure"]

SHAPES = ("insert", "update", "delete", "bulk")

_Flush = Callable[[], int]
"""Builds and encodes one flush's audit rows; returns how many rows it built."""


def _flushes(size: int) -> dict[str, _Flush]:
    """One callable per shape, each building the rows of the same ``size`` objects."""
    import inspect as signatures

    from auditkeeper.capture.document import build_row
    from auditkeeper.capture.recorder import _row
    from auditkeeper.model import values

    # The database the rows are for, where this tree's functions ask for it (an older
    # tree's, timed by ``--against``, do not).
    dialect = {"dialect": "sqlite"} if "dialect" in signatures.signature(_row).parameters else {}
    model = build("auditkeeper")
    item_cls = model.Item
    recorder = model.extra["keeper"]._recorder
    plan = recorder.plan_for(inspect(item_cls))
    engine = create_engine("sqlite://")
    model.create_all(engine)
    with Session(engine) as seeding:  # not audited: no keeper installed on it
        seeding.add_all(item_cls(id=i, **item_row(i)) for i in range(1, size + 1))
        seeding.commit()

    loaded = Session(engine).scalars(select(item_cls).order_by(item_cls.id)).all()
    created = [item_cls(id=i, **item_row(i)) for i in range(1, size + 1)]
    changing = Session(engine).scalars(select(item_cls).order_by(item_cls.id)).all()
    for i, obj in enumerate(changing, start=1):
        for key, value in updated_values(i).items():
            setattr(obj, key, value)
    moment = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    columns = [c.key for c in plan.columns]
    before = [{key: getattr(obj, key) for key in columns} for obj in loaded]
    after = [
        {**old, "quantity": old["quantity"] + 1, "status": "bulk", "updated_at": moment}
        for old in before
    ]

    def encode(rows: list[dict[str, Any] | None]) -> int:
        for row in rows:
            if row is not None:
                values.dumps(row["changed_objects"])
        return len(rows)

    def rows_of(objects: list[Any], verb: str) -> Callable[[], int]:
        # A state refers to its object weakly: the pairs keep the objects alive.
        pairs = [(obj, inspect(obj)) for obj in objects]
        assert all(key in state.dict for _, state in pairs for key in columns)
        return lambda: encode(
            [_row(plan, state, verb, {}, {}, {}, **dialect) for _, state in pairs]
        )

    def bulk() -> int:
        return encode(
            [
                build_row(plan, "update", old, new, (old["id"],), **dialect)
                for old, new in zip(before, after, strict=True)
            ]
        )

    return {
        "insert": rows_of(created, "create"),
        "update": rows_of(changing, "update"),
        "delete": rows_of(loaded, "delete"),
        "bulk": bulk,
    }


def measure(repeat: int, size: int) -> dict[str, list[float]]:
    """Seconds per flush, ``repeat`` of them per shape, shapes interleaved."""
    flushes = _flushes(size)
    for flush in flushes.values():  # warm-up
        assert flush() == size
    timings: dict[str, list[float]] = {shape: [] for shape in flushes}
    for _ in range(repeat):
        for shape, flush in flushes.items():
            gc.disable()
            started = time.perf_counter()
            flush()
            timings[shape].append(time.perf_counter() - started)
            gc.enable()
    return timings


def compare(against: Path, rounds: int, repeat: int, size: int) -> dict[str, list[float]]:
    """Seconds per flush of this tree's auditkeeper and of the one in ``against`` (a
    ``src`` directory), measured in alternating fresh processes: ``{"this shape": [...],
    "against shape": [...]}``, so that both see the same load on a shared machine."""
    import auditkeeper

    trees = {"this": Path(auditkeeper.__file__).resolve().parents[1], "against": against}
    pooled: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, tree in trees.items():
            done = subprocess.run(
                [sys.executable, __file__, "--json", f"--repeat={repeat}", f"--flush={size}"],
                env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True,
                text=True,
                check=True,
            )
            for shape, seconds in json.loads(done.stdout).items():
                pooled.setdefault(f"{name} {shape}", []).extend(seconds)
    return pooled


def _row(label: str, seconds: list[float], size: int) -> str:
    median = statistics.median(seconds)
    return (
        f"| {label} | {median * 1e3:.2f} | {min(seconds) * 1e3:.2f} | {median * 1e6 / size:.1f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=400, help="flushes timed per shape")
    parser.add_argument("--flush", type=int, default=100, help="objects per flush")
    parser.add_argument("--json", action="store_true", help="print the raw seconds as JSON")
    parser.add_argument(
        "--against",
        type=Path,
        help="another tree's src directory: time both, alternating fresh processes",
    )
    parser.add_argument("--rounds", type=int, default=4, help="process pairs with --against")
    args = parser.parse_args(argv)
    if args.against is not None:
        timings = compare(args.against, args.rounds, args.repeat, args.flush)
        flushes = args.rounds * args.repeat
    else:
        timings = measure(args.repeat, args.flush)
        flushes = args.repeat
    if args.json:
        print(json.dumps(timings))
        return
    print(f"audit rows built and encoded per {args.flush}-object flush, {flushes} flushes")
    print("| shape | median ms per flush | min ms | median µs per row |")
    print("|---|---|---|---|")
    for label in sorted(timings, key=lambda label: SHAPES.index(label.split()[-1])):
        print(_row(label, timings[label], args.flush))


if __name__ == "__main__":
    main()
