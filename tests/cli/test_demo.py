"""``auditkeeper demo``: what it prints, and exactly what it leaves in the database."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url

from auditkeeper.cli import main
from auditkeeper.cli.commands import cli
from auditkeeper.demo.crm import AuditLogActions, AuditLogEntityTypes, build_crm

A = AuditLogActions

EXPECTED_ACTIONS = Counter(
    {
        A.BUSINESS_CREATE: 2,
        A.BUSINESS_UPDATE: 1,
        A.BUSINESS_DELETE: 1,
        A.LEAD_CREATE: 3,
        A.LEAD_UPDATE: 2,
        A.LEAD_DELETE: 1,
        A.LEAD_ASSIGN_TO_BUSINESS: 1,
        A.COMMENT_UPDATE: 1,
        A.COMMENT_DELETE: 1,
    }
)


def run_cli(*args: str) -> Result:
    """Invoke the command as a user would, with Rich's colour overrides cleared."""
    runner = CliRunner(env={"FORCE_COLOR": None, "TTY_COMPATIBLE": None})
    return runner.invoke(cli, list(args))


def log_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every audit row, oldest first, as plain dicts."""
    log = build_crm().keeper.table
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(log).order_by(log.c.id))]


def sqlite_rows(path: Path) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return log_rows(engine)
    finally:
        engine.dispose()


def assert_seed_log(rows: list[dict[str, Any]]) -> None:
    """The rows the seed's scenario must write, whatever the dialect."""
    assert Counter(A(row["action"]) for row in rows) == EXPECTED_ACTIONS

    carol = [row for row in rows if row["user_email"] == "carol@example.com"]
    assert [A(row["action"]) for row in carol] == [A.LEAD_UPDATE, A.LEAD_ASSIGN_TO_BUSINESS]
    assert all(row["user_id"] is None for row in carol)  # Carol was deleted; her e-mail stays

    impersonated = [row for row in rows if row["is_impersonated"]]
    assert impersonated == [carol[0]]
    assert impersonated[0]["impersonator_email"] == "bob@example.com"
    assert impersonated[0]["impersonator_user_id"] is not None  # Bob still exists
    assert impersonated[0]["reason"] == "Support ticket #12345"
    assert impersonated[0]["changed_objects"]["difference"] == {
        "status": ["new", "contacted"],
        "score": [0, 40],
    }

    system = [row for row in rows if row["user_email"] is None]
    assert len(system) == 1
    assert system[0]["user_id"] is None
    assert system[0]["reason"] == "Nightly import"
    assert system[0]["changed_objects"]["difference"] == {"score": [10, 75]}

    alice = [row for row in rows if row["user_email"] == "alice@example.com"]
    assert len(alice) == len(rows) - 3
    assert len({row["user_id"] for row in alice}) == 1
    assert alice[0]["user_id"] is not None


def assert_comment_creation_not_logged(rows: list[dict[str, Any]]) -> None:
    comments = [row for row in rows if row["entity_type"] == AuditLogEntityTypes.COMMENT]
    assert [A(row["action"]) for row in comments] == [A.COMMENT_UPDATE, A.COMMENT_DELETE]
    # The first comment row is the update of a comment whose creation left no row.
    assert comments[0]["changed_objects"]["previous"]["body"] == "Called her, she wants a demo."


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """One demo run on a fresh SQLite file, shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    return run_cli("demo", "--db", str(path)), path


def test_demo_succeeds_and_prints_every_action(demo_run: tuple[Result, Path]) -> None:
    result, _ = demo_run
    assert result.exit_code == 0, result.output
    for action in AuditLogActions:
        assert action.name in result.stdout
    assert "The audit log: 13 rows written by this run" in result.stdout
    assert result.stderr == ""


def test_demo_prints_who_acted_and_why(demo_run: tuple[Result, Path]) -> None:
    output = demo_run[0].stdout
    assert "impersonated by" in output
    assert "bob@example.com" in output
    assert "Support ticket #12345" in output
    assert "system" in output
    assert "user_id: null" in output  # Carol's rows after her account was deleted
    assert 'api_token: "[redacted]"' in output
    assert 'status: "new" → "contacted"' in output


def test_demo_shows_that_edits_of_the_log_are_refused(demo_run: tuple[Result, Path]) -> None:
    output = demo_run[0].stdout
    assert "UPDATE audit_log SET user_email =" in output
    assert "auditkeeper: UPDATE on audit_log is refused" in output
    assert "audit log entries are read-only: cannot set 'user_email'" in output
    assert "DELETE of audit log entries is refused" in output
    assert "Rows naming mallory@example.com afterwards: 0" in output


def test_demo_says_how_to_explore_further(demo_run: tuple[Result, Path]) -> None:
    result, path = demo_run
    assert f'sqlite3 {path} "select * from audit_log"' in result.stdout
    assert "docs/demo.md" in result.stdout
    assert f"    auditkeeper serve --db {path}\n" in result.stdout
    assert "open http://127.0.0.1:8000/ in a browser" in result.stdout


def test_comment_creation_writes_no_row(demo_run: tuple[Result, Path]) -> None:
    result, path = demo_run
    assert "not logged, the seed audits comment updates and deletes only" in result.stdout
    assert "COMMENT_CREATE" not in result.stdout
    assert_comment_creation_not_logged(sqlite_rows(path))


def test_demo_writes_exactly_the_seed_log(demo_run: tuple[Result, Path]) -> None:
    assert_seed_log(sqlite_rows(demo_run[1]))


def test_the_secret_never_reaches_the_log(demo_run: tuple[Result, Path]) -> None:
    rows = sqlite_rows(demo_run[1])
    assert "sk-live" not in str([row["changed_objects"] for row in rows])
    acme = next(
        row for row in rows if (row["changed_objects"]["current"] or {}).get("name") == "Acme Corp"
    )
    assert acme["changed_objects"]["current"]["api_token"] == "[redacted]"
    assert "internal_rank" not in acme["changed_objects"]["current"]  # excluded column


def test_a_second_run_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    assert run_cli("demo", "--db", str(path)).exit_code == 0
    second = run_cli("demo", "--db", str(path))
    assert second.exit_code == 0, second.output
    assert "earlier runs" not in second.stdout
    assert_seed_log(sqlite_rows(path))


def test_keep_adds_a_run_to_the_same_log(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    assert run_cli("demo", "--db", str(path)).exit_code == 0
    second = run_cli("demo", "--db", str(path), "--keep")
    assert second.exit_code == 0, second.output
    assert "(rows up to id 13 are from earlier runs, kept by --keep)" in second.stdout
    rows = sqlite_rows(path)
    assert len(rows) == 26
    assert_seed_log(rows[13:])


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("/nonexistent-dir/demo.sqlite3", "unable to open database file"),
        ("nosuchdialect://host/db", "Can't load plugin"),
        ("postgresql+psycopg://user:secret@127.0.0.1:1/db", "user:***@127.0.0.1:1/db"),
        ("postgresql+psycopg://host:notaport/db", "is not a database URL or path"),
    ],
    ids=["missing-directory", "unknown-dialect", "unreachable-server", "malformed-url"],
)
def test_a_bad_database_is_one_line_and_exit_code_2(database: str, message: str) -> None:
    result = run_cli("demo", "--db", database)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    result = run_cli("demo", "--db", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot open sqlite:///{path}: file is not a database\n"
    assert path.read_text() == "not a database\n" * 100


def test_the_console_command_runs_in_a_subprocess(tmp_path: Path) -> None:
    """Without --db the demo writes auditkeeper-demo.sqlite3 in the current directory."""
    completed = subprocess.run(
        [sys.executable, "-m", "auditkeeper.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "LEAD_ASSIGN_TO_BUSINESS" in completed.stdout
    assert max(len(line) for line in completed.stdout.splitlines()) <= 132
    assert_seed_log(sqlite_rows(tmp_path / "auditkeeper-demo.sqlite3"))


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_demo_on_postgresql(database: Any) -> None:
    """The same log on PostgreSQL, run twice: the reset drops the tables (DROP TABLE is
    allowed where DELETE and TRUNCATE are refused)."""
    url = make_url(database.url).update_query_dict(database.connect_args)
    text_url = url.render_as_string(hide_password=False)
    for _ in range(2):
        result = run_cli("demo", "--db", text_url)
        assert result.exit_code == 0, result.output
    assert "auditkeeper: UPDATE on audit_log is refused" in result.stdout
    assert 'psql "postgresql://' in result.stdout or "psql 'postgresql://" in result.stdout
    serve = re.search(r"auditkeeper serve --db (\S+)", result.stdout)
    assert serve is not None and "postgresql+psycopg://" in serve.group(1)  # serve can open it
    rows = log_rows(database.engine())
    assert_seed_log(rows)
    assert_comment_creation_not_logged(rows)


def test_help_and_version() -> None:
    assert "demo" in run_cli("--help").stdout
    assert "--reset / --keep" in run_cli("demo", "--help").stdout
    version = run_cli("--version")
    assert version.exit_code == 0
    assert version.stdout == "auditkeeper, version 0.1.0\n"


def test_without_the_cli_extra_main_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in sys.modules if n.startswith("auditkeeper.cli.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "click", None)  # import click now fails
    with pytest.raises(SystemExit) as exited:
        main(["demo"])
    assert exited.value.code == 1
    assert 'pip install "auditkeeper[cli]"' in capsys.readouterr().err


def test_importing_auditkeeper_does_not_import_click_or_rich() -> None:
    code = (
        "import sys, auditkeeper, auditkeeper.cli; "
        "print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout == "[]\n"


def test_demo_says_where_the_command_is_when_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``./scripts/demo`` runs it from .venv, which a new user's shell has not activated."""
    command = Path(sys.executable).parent / "auditkeeper"
    monkeypatch.setenv("PATH", str(tmp_path))  # no auditkeeper there
    monkeypatch.chdir(tmp_path)  # outside the project: the path is shown whole
    result = run_cli("demo", "--db", str(tmp_path / "demo.sqlite3"))
    assert result.exit_code == 0, result.output
    hint = " ".join(result.stdout.split())
    assert f"`auditkeeper` is in {command.parent}: run `source {command.parent}/activate`" in hint
    monkeypatch.setenv("PATH", str(command.parent))
    again = run_cli("demo", "--db", str(tmp_path / "again.sqlite3"))
    assert "`auditkeeper` is in" not in again.stdout
