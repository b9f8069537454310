"""``auditkeeper serve`` builds the viewer (page and API) on the database and hands it to
uvicorn."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from sqlalchemy import Engine

from auditkeeper.cli.commands import cli
from auditkeeper.demo.crm import Crm
from tests.conftest import Database


def test_serve_runs_the_app_on_localhost(
    crm: Crm, engine: Engine, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    result = CliRunner().invoke(cli, ["serve", "--db", database.cli_url(), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    assert "open http://127.0.0.1:8123/ " in result.output
    assert "http://127.0.0.1:8123/api/logs" in result.output
    assert started["app"].url_path_for("auditkeeper_page_logs") == "/"  # the page too
