"""Records whose text keys hold what a URL treats specially (``/``, ``?``, ``#``, ``%``,
spaces): their trail and state are reached through the API and the viewer's pages,
the key percent-encoded as any client encodes a path segment."""

from __future__ import annotations

import enum
import warnings
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from auditkeeper.api import create_app
from tests._support import model_fixtures

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Action(enum.IntEnum):
    PAGE_CREATE = 1
    PAGE_UPDATE = 2


class Kind(enum.IntEnum):
    PAGE = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(entity_type=Kind.PAGE, create=Action.PAGE_CREATE, update=Action.PAGE_UPDATE)
class Page(Base):
    __tablename__ = "pages"
    path: Mapped[str] = mapped_column(String(60), primary_key=True)
    title: Mapped[str] = mapped_column(String(60))


engine, sessions = model_fixtures(Base.metadata, keeper)
KEYS = ["reports/2024/q1", "/leading", "trailing/", "x?y#z", "a b", "50%", "ünï/ß", "trail"]


@pytest.fixture
def client(sessions: Any) -> TestClient:
    with sessions() as session, auditkeeper.acting_as(1):
        pages = [Page(path=key, title="first") for key in KEYS]
        session.add_all(pages)
        session.commit()
        for page in pages:
            page.title = "second"
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
