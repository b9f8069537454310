"""Records whose text keys hold what a URL treats specially (``/``, ``?``, ``#``, ``%``,
spaces), and records with composite keys (given as the JSON array the log writes):
their trail and state are reached through the API, the viewer's pages and the
command line, the key percent-encoded as any client encodes a path segment."""

from __future__ import annotations

import enum
import json
import warnings
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from auditkeeper.api import create_app
from auditkeeper.cli.commands import cli
from tests._support import model_fixtures
from tests.conftest import Database

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Action(enum.IntEnum):
    PAGE_CREATE = 1
    PAGE_UPDATE = 2
    SEAT_CREATE = 3
    SEAT_UPDATE = 4


class Kind(enum.IntEnum):
    PAGE = 1
    SEAT = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(entity_type=Kind.PAGE, create=Action.PAGE_CREATE, update=Action.PAGE_UPDATE)
class Page(Base):
    __tablename__ = "pages"
    path: Mapped[str] = mapped_column(String(60), primary_key=True)
    title: Mapped[str] = mapped_column(String(60))


@auditkeeper.audited(entity_type=Kind.SEAT, create=Action.SEAT_CREATE, update=Action.SEAT_UPDATE)
class Seat(Base):
    __tablename__ = "seats"
    row: Mapped[str] = mapped_column(String(10), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(40))


engine, sessions = model_fixtures(Base.metadata, keeper)
KEYS = ["reports/2024/q1", "/leading", "trailing/", "x?y#z", "a b", "50%", "ünï/ß", "trail"]


@pytest.fixture
def client(sessions: Any) -> TestClient:
    with sessions() as session, auditkeeper.acting_as(1):
        pages = [Page(path=key, title="first") for key in KEYS]
        seat = Seat(row="a/b", number=1)
        session.add_all([*pages, seat, Seat(row="a/b", number=11)])
        session.commit()
        for page in pages:
            page.title = "second"
        seat.holder = "Jane"
        session.commit()
    return TestClient(create_app(keeper, sessions))


@pytest.mark.parametrize("key", KEYS)
def test_a_record_is_reached_whatever_its_key_holds(client: TestClient, key: str) -> None:
    encoded = quote(key, safe="")
    trail = client.get(f"/api/records/PAGE/{encoded}/trail")
    state = client.get(f"/api/records/PAGE/{encoded}/as-of")
    page = client.get(f"/records/PAGE/{encoded}")
    assert trail.status_code == 200, trail.text
    assert [row["event"] for row in trail.json()["rows"]] == ["Updated", "Created"]
    assert state.status_code == 200, state.text
    assert state.json()["fields"] == {"path": key, "title": "second"}
    assert page.status_code == 200
    assert "Created" in page.text


SEAT = quote('["a/b",1]', safe="")


def test_a_composite_key_is_given_as_the_json_array_the_log_writes(client: TestClient) -> None:
    trail = client.get(f"/api/records/SEAT/{SEAT}/trail")
    state = client.get(f"/api/records/SEAT/{SEAT}/as-of")
    logs = client.get("/api/logs", params={"entity_type": "SEAT", "record": '["a/b", 1]'})
    page = client.get(f"/records/SEAT/{SEAT}")
    assert [row["event"] for row in trail.json()["rows"]] == ["Updated", "Created"]
    assert state.json()["fields"] == {"row": "a/b", "number": 1, "holder": "Jane"}
    assert [item["record_id"] for item in logs.json()["items"]] == ['["a/b",1]'] * 2
    assert page.status_code == 200 and "Jane" in page.text


@pytest.mark.parametrize("key", ['["a/b"]', '["a/b",1,2]', "a/b", '{"row": "a/b"}'])
def test_a_composite_key_of_another_shape_is_refused(client: TestClient, key: str) -> None:
    for path in (f"/api/records/SEAT/{quote(key, safe='')}/trail", "/api/logs"):
        answer = client.get(path, params={"entity_type": "SEAT", "record": key})
        assert answer.status_code == 422, (path, answer.text)
        assert "2 parts" in answer.text


def test_the_command_line_takes_a_composite_key(client: TestClient, database: Database) -> None:
    app = f"{__name__}:keeper"
    found = CliRunner().invoke(
        cli, ["trail", "Seat", '["a/b", 1]', "--app", app, "--db", database.cli_url()]
    )
    refused = CliRunner().invoke(
        cli, ["trail", "Seat", "a/b", "--app", app, "--db", database.cli_url()]
    )
    logs = CliRunner().invoke(
        cli,
        [
            "logs",
            "--json",
            "-e",
            "SEAT",
            "-r",
            '["a/b",11]',
            "--app",
            app,
            "--db",
            database.cli_url(),
        ],
    )
    assert found.exit_code == 0, found.output
    assert "Updated" in found.output and "Created" in found.output
    assert refused.exit_code == 2 and "2 parts" in refused.output
    assert logs.exit_code == 0, logs.output
    entries = json.loads(logs.output)["entries"]
    assert [(row["entity_key"], row["number_identifier"]) for row in entries] == [
        ('["a/b",11]', None)
    ]
