"""The document micro-benchmark (bench/documents.py) still runs, at a tiny size."""

from __future__ import annotations

from bench.documents import SHAPES, main, measure


def test_every_shape_is_timed():
    timings = measure(repeat=3, size=5)
    assert list(timings) == list(SHAPES)
    assert all(len(seconds) == 3 and min(seconds) > 0 for seconds in timings.values())


def test_prints_a_table(capsys):
    main(["--repeat", "2", "--flush", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| shape | median ms per flush")
    assert [line.split(" | ")[0] for line in lines[3:]] == [f"| {s}" for s in SHAPES]
