"""The capture benchmark (bench/) still runs: its worker at a tiny size, on both dialects.

Only the no-audit baseline and auditkeeper run here; the peers (SQLAlchemy-Continuum,
PostgreSQL-Audit) are not dependencies of the project and live in bench/.venv.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench.capture import (
    code_version,
    main,
    other_source,
    plan,
    render,
    run_job,
    server_stats_tables,
)
from bench.capture_worker import SERVER_STATS_SETTINGS, WORKLOADS, changed_rows, describe, run
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import Database
from tests.pgcluster import throwaway_cluster

ROWS = 20
BATCH = 10
ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "bench" / "capture_worker.py"


def _run(database: Database, variant: str, workload: str) -> dict:
    result = run(variant, workload, database.url, database.connect_args, rows=ROWS, batch=BATCH)
    return json.loads(json.dumps(result))  # what the driver reads from the worker


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_auditkeeper_writes_one_statement_per_flush(database: Database, workload: str):
    result = _run(database, "auditkeeper", workload)
    changed = changed_rows(workload, ROWS)
    assert result["dialect"] == database.dialect
    assert result["changed_rows"] == changed
    assert result["audit_rows"] == changed  # every changed row is logged, once
    flushes = {"d": changed, "e": 0}.get(workload, -(-changed // BATCH))
    assert result["flushes"] == flushes
    assert result["units"] == (1 if workload == "e" else flushes)  # (e): one bulk statement
    kinds = result["audit_statement_kinds"]
    if database.dialect == "sqlite" and workload == "e":
        # Left to the capture triggers: the actor written to the capture state before the
        # statement, and taken back at commit.
        per_unit = 2
        assert len(kinds) == 2
        assert all(s.startswith("UPDATE auditkeeper_capture_state SET actor = ") for s in kinds)
    elif database.dialect == "sqlite":
        # The audit INSERT, and the capture state around it: mark the flush, then take
        # the mark and the rows its triggers left pending in one DELETE ... RETURNING.
        per_unit = 3
        assert len(kinds) == 3
        assert sum(1 for s in kinds if "INSERT INTO audit_log" in s) == 1
        assert sum(1 for s in kinds if "DELETE FROM auditkeeper_capture_pending" in s) == 1
    elif workload in ("a", "b", "c", "e"):
        # Left to the statement trigger: the check that the table has it, which also
        # tells the trigger who acts ((a): the new rows' values all read alike in SQL;
        # (b), (c): the flush's updates or deletions merged into one statement).
        per_unit = 1
        (statement,) = kinds
        assert "pg_trigger" in statement
    else:
        per_unit = 1
        assert all("INSERT INTO audit_log" in s for s in kinds)
    assert result["audit_statements"] == result["units"] * per_unit
    assert result["audit_statements_per_flush"] == per_unit
    assert 0 < result["write_ms"] <= result["total_ms"]
    assert result["audit_bytes_per_row"] is None or result["audit_bytes_per_row"] > 100


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_baseline_writes_no_audit_statement(database: Database, workload: str):
    result = _run(database, "baseline", workload)
    assert result["audit_statements"] == 0
    assert result["audit_rows"] == 0
    assert result["statements"] >= 1
    assert 0 < result["write_ms"] <= result["total_ms"]


def test_worker_prints_json_and_the_table_renders(tmp_path: Path):
    done = subprocess.run(
        [
            sys.executable,
            str(WORKER),
            "--variant=auditkeeper",
            "--workload=d",
            f"--url=sqlite:///{tmp_path / 'worker.sqlite3'}",
            f"--rows={ROWS}",
            f"--batch={BATCH}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    mine = json.loads(done.stdout.strip().splitlines()[-1])
    assert mine["audit_statements_per_flush"] == 3  # SQLite's capture state, see above
    base = run("baseline", "d", f"sqlite:///{tmp_path / 'base.sqlite3'}", rows=ROWS, batch=BATCH)
    table = render({"rows": ROWS, "batch": BATCH, "repetitions": 1}, [base, mine])
    assert f"(d) {describe('d', ROWS, BATCH)}" in table
    assert "| SQLite | (d)" in table
    assert (
        "SQLite (d): no peer in this run; audit statements per flush [3.0] (no target here)"
    ) in table


def test_plan_shuffles_each_repetition_and_skips_postgresql_only_peers():
    jobs = plan(2, ["postgresql", "sqlite"], ["a", "b"], ["baseline", "pgaudit"], seed=1)
    assert len(jobs) == 2 * (4 + 2)  # PostgreSQL-Audit does not run on SQLite
    assert ("sqlite", "pgaudit") not in {(j[1], j[3]) for j in jobs}
    first, second = jobs[:6], jobs[6:]
    assert [j[1:] for j in first] != [j[1:] for j in second]  # each repetition its order


def test_server_stats_name_the_statements_and_functions_that_took_the_time():
    """``bench/run --server-stats``: a cluster of its own that records every statement,
    nested ones included, and every function."""
    with throwaway_cluster(settings=SERVER_STATS_SETTINGS) as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE stats"))
        admin.dispose()
        result = run(
            "auditkeeper",
            "e",
            make_url(url).set(database="stats").render_as_string(hide_password=False),
            rows=ROWS,
            batch=BATCH,
            server_stats=True,
        )
    statements = result["server_stats"]["statements"]
    nested = [s for s in statements if s["nested"]]
    assert any(s["query"].startswith("INSERT INTO audit_log") for s in nested)  # the trigger's
    assert any(s["query"].startswith("UPDATE item") for s in statements if not s["nested"])
    functions = {f["function"]: f for f in result["server_stats"]["functions"]}
    assert functions["item_audit_statement"]["calls"] >= 1
    table = server_stats_tables("e", result)
    assert "### Server time: auditkeeper, PostgreSQL, workload (e)" in table
    assert "| `item_audit_statement` |" in table


def test_against_times_another_version_of_auditkeeper_in_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """``--against FOLDER``: a third variant, auditkeeper imported from that folder,
    interleaved with this tree's, and compared with it under the table."""
    other = tmp_path / "other" / "src"
    shutil.copytree(ROOT / "src" / "auditkeeper", other / "auditkeeper")
    code = main(
        [
            "--dialects=sqlite",
            "--workloads=d",
            "--variants=baseline,auditkeeper",
            "--repetitions=1",
            f"--rows={ROWS}",
            f"--batch={BATCH}",
            f"--against={other.parent}",  # a checkout: its src is found
        ]
    )
    table = capsys.readouterr().out
    assert code == 0, table
    changed = changed_rows("d", ROWS)
    row = next(line for line in table.splitlines() if f"auditkeeper at {other.parent} |" in line)
    assert f"| {changed} of {changed} |" in row  # it audited every change
    # The same code has the same digest, whichever folder it was read from.
    assert f"(a folder, src digest {code_version().split('digest ')[1]})" in table
    assert f"This auditkeeper against auditkeeper at {other.parent}" in table
    assert "- SQLite (d): " in table.split("This auditkeeper against")[1]


def test_against_a_revision_extracts_its_source(tmp_path: Path):
    source = other_source("HEAD", tmp_path)
    assert (source / "auditkeeper" / "__init__.py").is_file()
    assert source.is_relative_to(tmp_path)


def test_against_what_is_neither_a_folder_nor_a_revision_is_refused(tmp_path: Path):
    with pytest.raises(SystemExit, match="neither a folder holding an auditkeeper package"):
        other_source("no-such-revision-here", tmp_path)


def test_a_measurement_that_did_not_import_the_other_source_is_a_failure(tmp_path: Path):
    """The worker falls back to the installed auditkeeper when the folder has none: the
    driver notices, rather than reporting this tree's figures under the other's name."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_job("sqlite", "d", "against", None, tmp_path, ROWS, BATCH, source=empty)
    assert "auditkeeper came from" in result["error"]
    assert result["variant"] == "against"
