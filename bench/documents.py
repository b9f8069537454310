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
import statistics
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
    from auditkeeper.capture.document import build_row
    from auditkeeper.capture.recorder import _row
    from auditkeeper.model import values

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
        return lambda: encode([_row(plan, state, verb, {}, {}, {}) for _, state in pairs])

    def bulk() -> int:
        return encode(
            [
                build_row(plan, "update", old, new, (old["id"],))
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=400, help="flushes timed per shape")
    parser.add_argument("--flush", type=int, default=100, help="objects per flush")
    args = parser.parse_args(argv)
    timings = measure(args.repeat, args.flush)
    print(f"audit rows built and encoded per {args.flush}-object flush, {args.repeat} flushes")
    print("| shape | median ms per flush | min ms | median µs per row |")
    print("|---|---|---|---|")
    for shape, seconds in timings.items():
        median = statistics.median(seconds)
        print(
            f"| {shape} | {median * 1e3:.2f} | {min(seconds) * 1e3:.2f} "
            f"| {median * 1e6 / args.flush:.1f} |"
        )


if __name__ == "__main__":
    main()
