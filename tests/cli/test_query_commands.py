"""``auditkeeper logs``, ``show``, ``as-of`` and ``export`` on the demo's log."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from auditkeeper.cli.commands import cli
from auditkeeper.query import EXPORT_COLUMNS
from tests.cli.test_demo import run_cli
from tests.conftest import Database


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's log (13 rows) in a SQLite file, shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("query") / "demo.sqlite3"
    assert run_cli("demo", "--db", str(path)).exit_code == 0
    return str(path)


def query(*args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner(env={"FORCE_COLOR": None, "TTY_COMPATIBLE": None, **(env or {})})
    return runner.invoke(cli, list(args))


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = query(*args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == "" or args[0] == "export"
    return result


def ids(demo_db: str, *args: str) -> list[int]:
    document = json.loads(ok("logs", "--db", demo_db, "--json", *args).stdout)
    return [entry["id"] for entry in document["entries"]]


def test_logs_prints_a_table_newest_first(demo_db: str) -> None:
    output = ok("logs", "--db", demo_db).stdout
    for text in (
        "LEAD_ASSIGN_TO_BUSINESS",
        "LEAD 1",
        "carol@example.com",
        "user_id: null",
        "impersonated by",
        "bob@example.com",
        'status: "new" → "contacted"',
        "Nightly",
        "13 rows, newest first.",
    ):
        assert text in output
    assert output.index("│ 13 │") < output.index("│  1 │")
    assert "More rows" not in output
    assert max(len(line) for line in output.splitlines()) <= 132


def test_logs_json_has_the_export_fields(demo_db: str) -> None:
    document = json.loads(ok("logs", "--db", demo_db, "--json").stdout)
    assert document["next_cursor"] is None
    assert [e["id"] for e in document["entries"]] == list(range(13, 0, -1))
    first = document["entries"][-1]
    assert list(first) == list(EXPORT_COLUMNS)
    assert first["action_name"] == "BUSINESS_CREATE"
    assert first["changed_objects"]["current"]["api_token"] == "[redacted]"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-e", "LEAD", "-r", "1", "--oldest-first"], [3, 7, 8]),
        (["-e", "lead", "-e", "comment", "--action", "COMMENT_DELETE"], [10]),
        (["--action", "LEAD_UPDATE", "--action", "4"], [13, 7, 5, 4, 3]),
        (["--email", "carol@example.com"], [8, 7]),
        (["--impersonated"], [7]),
        (["--not-impersonated", "-e", "LEAD", "--user", "1"], [11, 5, 4, 3]),
        (["--impersonator-email", "bob@example.com"], [7]),
        (["--impersonator", "2"], [7]),
        (["--field", "status", "--changed-to", "contacted"], [7]),
        (["--field", "score", "--changed-to", "75"], [13]),
        (["--field", "score", "--changed-to", '"75"'], []),
        (["--field", "business_id", "-e", "LEAD"], [8]),
        (["--since", "2000-01-01", "--until", "2000-01-02"], []),
        (
            ["--since", "2000-01-01T00:00:00+02:00", "-e", "BUSINESS", "--oldest-first"],
            [1, 2, 6, 12],
        ),
        (["--tenant", "acme"], []),
        (["--text", "MUSTERMANN"], [13, 5]),
        (["--text", "ticket #123"], [7]),
        (["--text", "nightly", "--action", "LEAD_UPDATE"], [13]),
        (["--text", "%"], []),
    ],
)
def test_filters(demo_db: str, args: list[str], expected: list[int]) -> None:
    assert ids(demo_db, *args) == expected


def test_transaction_filter(demo_db: str) -> None:
    document = json.loads(ok("logs", "--db", demo_db, "--json", "--oldest-first").stdout)
    first = document["entries"][0]
    same = [e["id"] for e in document["entries"] if e["transaction_id"] == first["transaction_id"]]
    assert ids(demo_db, "--transaction", first["transaction_id"], "--oldest-first") == same


def test_pages_follow_their_cursor(demo_db: str) -> None:
    seen: list[int] = []
    cursor: list[str] = []
    while True:
        document = json.loads(ok("logs", "--db", demo_db, "--json", "--limit", "4", *cursor).stdout)
        seen.extend(e["id"] for e in document["entries"])
        if document["next_cursor"] is None:
            break
        cursor = ["--cursor", document["next_cursor"]]
    assert seen == list(range(13, 0, -1))
    table = ok("logs", "--db", demo_db, "--limit", "4").stdout
    assert "More rows: repeat the command with --cursor ey" in table


def test_show_prints_previous_and_current(demo_db: str) -> None:
    output = ok("show", "7", "--db", demo_db).stdout
    assert "LEAD_UPDATE (5)" in output
    assert "impersonated by bob@example.com; reason: Support ticket #12345" in output
    status = next(line for line in output.splitlines() if "│ status" in line)
    assert '"new"' in status and '"contacted"' in status and "yes" in status
    name = next(line for line in output.splitlines() if "│ name" in line)
    assert "yes" not in name
    document = json.loads(ok("show", "7", "--db", demo_db, "--json").stdout)
    assert document["changed_objects"]["difference"] == {
        "status": ["new", "contacted"],
        "score": [0, 40],
    }


def test_as_of(demo_db: str) -> None:
    assert "LEAD 2 now: deleted" in ok("as-of", "LEAD", "2", "--db", demo_db).stdout
    before = ok("as-of", "lead", "1", "--at", "2000-01-01", "--db", demo_db).stdout
    assert before.startswith("lead 1 as of 2000-01-01T00:00:00+00:00: not created")
    now = json.loads(ok("as-of", "LEAD", "1", "--db", demo_db, "--json").stdout)
    assert now["status"] == "exists"
    assert now["fields"]["business_id"] == 1
    assert now["last_entry_id"] == 8
    show = json.loads(ok("show", "7", "--db", demo_db, "--json").stdout)
    then = json.loads(
        ok(
            "as-of", "LEAD", "1", "--transaction", show["transaction_id"], "--db", demo_db, "--json"
        ).stdout
    )
    assert then["fields"]["status"] == "contacted"
    assert then["fields"]["business_id"] is None
    acme = json.loads(ok("as-of", "BUSINESS", "1", "--db", demo_db, "--json").stdout)
    assert "internal_rank" not in acme["fields"]  # an excluded column
    assert acme["fields"]["api_token"] == "[redacted]"


def test_export_to_stdout_and_to_a_file(demo_db: str, tmp_path: Path) -> None:
    result = ok("export", "--db", demo_db, "-e", "LEAD")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [3, 4, 5, 7, 8, 11, 13]
    assert result.stderr == "Exported 7 rows to stdout (jsonl).\n"
    target = tmp_path / "log.csv"
    result = ok("export", "--db", demo_db, "-o", str(target), "--newest-first")
    assert result.stderr == f"Exported 13 rows to {target} (csv).\n"
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [int(row["id"]) for row in rows] == list(range(13, 0, -1))
    assert not (tmp_path / "log.csv.partial").exists()
    forced = tmp_path / "log.txt"
    ok("export", "--db", demo_db, "-o", str(forced), "--format", "CSV")
    assert forced.read_text().startswith("id,created_at,action,")


def test_environment_variables_name_the_database_and_the_app(
    demo_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "my_audit_app.py"
    module.write_text(
        "from auditkeeper.demo.crm import build_crm\ncrm = build_crm()\nkeeper = crm.keeper\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_audit_app", raising=False)
    env = {"AUDITKEEPER_DB": demo_db, "AUDITKEEPER_APP": "my_audit_app:keeper"}
    document = json.loads(ok("logs", "--json", "-e", "BUSINESS", env=env).stdout)
    assert len(document["entries"]) == 4
    assert json.loads(ok("logs", "--json", "--app", "my_audit_app:crm", env=env).stdout)


def one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs"], "no database given: pass --db URL_OR_PATH or set AUDITKEEPER_DB"),
        (["logs", "--db", "missing.sqlite3"], "missing.sqlite3: no such SQLite file"),
        (["logs", "--db", "nosuchdialect://host/db"], "Can't load plugin"),
        (["logs", "--db", "postgresql+psycopg://u:secret@127.0.0.1:1/db"], "u:***@127.0.0.1:1"),
        (["logs", "--db", "postgresql+psycopg://host:notaport/db"], "is not a database URL"),
        (["logs", "-e", "invoice"], "unknown entity type 'invoice'; AuditLogEntityTypes has"),
        (["logs", "-a", "LEAD_ARCHIVE"], "unknown action 'LEAD_ARCHIVE'"),
        (["logs", "--since", "last tuesday"], "--since: 'last tuesday' is not a date or time"),
        (["logs", "--until", "2026-13-01"], "--until: '2026-13-01' is not a date or time"),
        (["logs", "--since", "2026-03-02", "--until", "2026-03-01"], "must be before until"),
        (["logs", "--cursor", "garbage"], "'garbage' is not a page cursor"),
        (["logs", "-r", "1"], "needs exactly one entity_type"),
        (["logs", "-e", "LEAD", "-r", "one"], "integer keys; 'one' is not an integer"),
        (["logs", "--user", "alice"], "--user: 'alice' is not a user id"),
        (["logs", "--transaction", "xyz"], "transaction_id 'xyz' is not a UUID"),
        (["logs", "--app", "nocolon"], "must be MODULE:ATTRIBUTE"),
        (["logs", "--app", "no_such_module_x:keeper"], "cannot import no_such_module_x"),
        (["logs", "--app", "auditkeeper.demo.crm:nothing"], "has no attribute 'nothing'"),
        (["logs", "--app", "auditkeeper.demo.crm:__all__"], "is list, not an Auditkeeper"),
        (["logs", "--app", "auditkeeper.demo.crm:LeadStatus"], "calling it failed"),
        (["show", "999"], "no audit row has id 999"),
        (["as-of", "LEAD", "1", "--at", "soon"], "--at: 'soon' is not a date or time"),
        (["as-of", "LEAD", "1", "--at", "2026-01-01", "--transaction", "x"], "not both"),
        (["as-of", "LEAD", "1", "--transaction", "0" * 32], "no audit row has transaction_id"),
        (["as-of", "TICKET", "1"], "unknown entity type 'TICKET'"),
        (["export", "--format", "xml"], "--format 'xml' is not one of jsonl, csv"),
        (["export", "-o", "/nonexistent-dir/x.jsonl"], "cannot write /nonexistent-dir/x.jsonl"),
    ],
)
def test_mistakes_are_one_line_and_exit_code_2(demo_db: str, args: list[str], message: str) -> None:
    needs_db = not any(a.startswith("--db") for a in args) and args != ["logs"]
    result = query(*args, *(["--db", demo_db] if needs_db else []))
    one_line_error(result, message)
    assert "secret" not in result.stderr


def test_a_database_without_the_log_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    create_engine(f"sqlite:///{path}").connect().close()
    one_line_error(query("logs", "--db", str(path)), "has no audit_log table")


def test_as_a_subprocess(demo_db: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "auditkeeper.cli", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    listed = run("logs", "--db", demo_db, "--email", "carol@example.com")
    assert listed.returncode == 0, listed.stderr
    assert "LEAD_ASSIGN_TO_BUSINESS" in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 132
    exported = run("export", "--db", demo_db)
    assert len(exported.stdout.splitlines()) == 13
    assert exported.stderr == "Exported 13 rows to stdout (jsonl).\n"  # no progress bar: not a tty
    failed = run("logs", "--db", demo_db, "--since", "tomorrow")
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.startswith("Error: --since: 'tomorrow' is not a date or time")
    assert failed.stderr.count("\n") == 1


def test_help_lists_the_commands() -> None:
    output = ok("--help").stdout
    for command in ("logs", "show", "as-of", "export"):
        assert command in output
    assert "--changed-to" in ok("logs", "--help").stdout
    assert "AUDITKEEPER_DB" in ok("export", "--help").stdout


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_on_postgresql(database: Database) -> None:
    url = make_url(database.url).update_query_dict(database.connect_args)
    text_url = url.render_as_string(hide_password=False)
    assert run_cli("demo", "--db", text_url).exit_code == 0
    assert ids(text_url, "-e", "LEAD", "-r", "1", "--oldest-first") == [3, 7, 8]
    assert ids(text_url, "--field", "status", "--changed-to", "contacted") == [7]
    lines = ok("export", "--db", text_url, "--email", "carol@example.com").stdout.splitlines()
    assert [json.loads(line)["action_name"] for line in lines] == [
        "LEAD_UPDATE",
        "LEAD_ASSIGN_TO_BUSINESS",
    ]
    assert "LEAD 2" in ok("as-of", "LEAD", "2", "--db", text_url).stdout
    one_line_error(query("logs", "--db", text_url, "--since", "x"), "is not a date or time")


def test_the_progress_bar_runs_on_a_terminal(demo_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal stderr, the export shows a progress bar (and still writes every row)."""
    from auditkeeper.cli import query_commands

    shown: list[Any] = []

    class Terminal(query_commands.Console):  # type: ignore[misc, name-defined]
        def __init__(self, **kw: Any) -> None:
            super().__init__(file=io.StringIO(), force_terminal=True, **kw)
            shown.append(self)

    monkeypatch.setattr(query_commands, "Console", Terminal)
    result = ok("export", "--db", demo_db)
    assert len(result.stdout.splitlines()) == 13
    assert shown and "exporting" in shown[0].file.getvalue()
