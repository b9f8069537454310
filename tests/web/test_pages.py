"""The viewer's pages over HTTP, on both dialects: escaping, headers, 422 and 404 pages,
mounting under a prefix, tenants, and refusing anything but GET."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from fastapi import FastAPI, Header
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditkeeper.api import CSP, create_app
from auditkeeper.demo.crm import Crm
from auditkeeper.web import create_page_router
from tests.web.conftest import HOSTILE_NAME, HOSTILE_REASON, HOSTILE_TAG, acting, seed

SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def seeded(crm: Crm, audited_sessions: sessionmaker[Session], users: list[Any]) -> dict[str, int]:
    return seed(crm, audited_sessions, users)


def client_of(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=True)


def test_every_hostile_value_is_escaped(crm: Crm, engine: Engine, seeded: dict[str, int]) -> None:
    client = client_of(create_app(crm.keeper, engine))
    hostile = client.get("/", params={"text": "img src"}).text
    entry = re.findall(r'href="/logs/(\d+)"', hostile)[0]
    pages = [
        hostile,
        client.get("/", params={"user": "bob@example.com"}).text,
        client.get(f"/logs/{entry}").text,
        client.get(f"/records/LEAD/{seeded['hostile']}").text,
        client.get("/", params={"since": HOSTILE_NAME}).text,
        client.get("/", params={"text": HOSTILE_TAG}).text,
    ]
    for html in pages:
        for raw in ("<script>window", "<img", "<b ", 'onerror="window'):
            assert raw not in html
    assert "&lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in pages[2]
    assert "&#34;&gt;&lt;img src=x onerror=&#34;window.__xss = 2" in pages[2]
    assert "&lt;b onmouseover=alert(3)&gt;Ticket #12_34&lt;/b&gt;" in pages[1]
    assert HOSTILE_REASON not in pages[1]


def test_pages_carry_the_security_headers(crm: Crm, engine: Engine, seeded: dict[str, int]) -> None:
    """The page router sets them itself: a page mounted in another app keeps them."""
    app = FastAPI()
    app.include_router(create_page_router(crm.keeper, engine), prefix="/audit")
    client = client_of(app)
    for path in ("/audit/", "/audit/logs/1", "/audit/records/LEAD/1", "/audit/?since=x"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<script>" not in response.text and " style=" not in response.text
    script = client.get("/audit/static/page.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "data-href" in script.text


def test_a_mounted_page_links_under_its_prefix(
    crm: Crm, engine: Engine, seeded: dict[str, int]
) -> None:
    app = FastAPI()
    app.include_router(create_page_router(crm.keeper, engine), prefix="/audit")
    client = TestClient(app, root_path="/tools")  # behind a proxy that strips /tools
    html = client.get("/audit/", params={"limit": 10}).text
    links = set(re.findall(r'(?:href|src|action)="([^"]+)"', html)) - {"#main"}
    assert links and all(link.startswith("/tools/audit/") for link in links), links
    assert "/tools/audit/static/page.css" in links
    assert any(link.startswith("/tools/audit/logs/") for link in links)
    assert any(link.startswith("/tools/audit/records/LEAD/") for link in links)


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/", {"since": "yesterday"}, "since"),
        ("/", {"until": "2026-02-30"}, "until"),
        ("/", {"since": "2026-03-02", "until": "2026-03-01"}, "since"),
        ("/", {"entity_type": "PLANET"}, "entity_type"),
        ("/", {"action": "LAUNCH"}, "action"),
        ("/", {"user": "not-a-number"}, "user_id"),
        ("/", {"user": "a\x00b@example.com"}, "user"),
        ("/", {"sort": "sideways"}, "sort"),
        ("/", {"limit": "1000"}, "limit"),
        ("/", {"limit": "ten"}, "limit"),
        ("/", {"cursor": "not-a-cursor"}, "cursor"),
        ("/", {"record": "1"}, "record"),
        ("/", {"text": "x" * 600}, "text"),
        ("/logs/abc", {}, "entry_id"),
        ("/records/LEAD/abc", {}, "key"),
        ("/records/LEAD/1%2F2", {}, "key"),  # an encoded / stays in the key
        ("/records/PLANET/1", {}, "entity_type"),
        ("/records/LEAD/1", {"sort": "colour"}, "sort"),
        ("/records/LEAD/1", {"skip": "-1"}, "skip"),
        ("/records/LEAD/1", {"limit": "7"}, "limit"),
    ],
)
def test_bad_input_is_a_422_page_naming_the_parameter(
    crm: Crm, engine: Engine, path: str, params: dict[str, str], param: str
) -> None:
    response = client_of(create_app(crm.keeper, engine)).get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<code class="param">{param}</code>' in response.text


def test_a_cursor_of_another_order_is_a_422_page(
    crm: Crm, engine: Engine, seeded: dict[str, int]
) -> None:
    client = client_of(create_app(crm.keeper, engine))
    cursor = re.findall(r"cursor=([\w-]+)", client.get("/", params={"limit": 10}).text)[0]
    response = client.get("/", params={"limit": 10, "sort": "oldest", "cursor": cursor})
    assert response.status_code == 422
    assert "made for a different filter or order" in response.text


@SQLITE_ONLY  # routing, files and refusals: the dialect does not matter
@pytest.mark.parametrize("path", ["/logs/999999", "/records/COMMENT/1x", "/static/forms.py"])
def test_what_does_not_exist_is_a_404_page(crm: Crm, engine: Engine, path: str) -> None:
    response = client_of(create_app(crm.keeper, engine)).get(path)
    assert response.status_code in (404, 422)
    assert "Back to the audit log" in response.text


@SQLITE_ONLY  # routing, files and refusals: the dialect does not matter
def test_static_files_are_only_the_pages_own(crm: Crm, engine: Engine) -> None:
    client = client_of(create_app(crm.keeper, engine))
    for path in ("/static/..%2Fforms.py", "/static/../forms.py", "/static/%2e%2e/forms.py"):
        response = client.get(path)
        assert response.status_code == 404
        assert "import" not in response.text


def test_a_record_without_logs_has_an_empty_trail(crm: Crm, engine: Engine) -> None:
    response = client_of(create_app(crm.keeper, engine)).get("/records/LEAD/999999")
    assert response.status_code == 200
    assert "No events." in response.text


@SQLITE_ONLY  # routing, files and refusals: the dialect does not matter
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_pages_answer_only_get(crm: Crm, engine: Engine, method: str) -> None:
    client = client_of(create_app(crm.keeper, engine))
    for path in ("/", "/logs/1", "/records/LEAD/1", "/static/page.css"):
        assert client.request(method, path).status_code == 405


def test_a_tenant_sees_only_its_own_rows(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session], users: list[Any]
) -> None:
    for tenant in ("acme", "other"):
        with acting(users[0], tenant_id=tenant), audited_sessions() as session:
            session.add(crm.Lead(name=f"Lead of {tenant}"))
            session.commit()

    def tenant(x_tenant: str = Header()) -> str:
        return x_tenant

    client = client_of(create_app(crm.keeper, engine, tenant=tenant))
    acme = {"x-tenant": "acme"}
    html = client.get("/", headers=acme).text
    assert "Lead of" not in html  # the table names no record, but:
    ids = set(re.findall(r' href="/logs/(\d+)"', html))
    assert len(ids) == 1
    assert client.get(f"/logs/{min(ids)}", headers=acme).status_code == 200
    other = set(
        re.findall(r' href="/logs/(\d+)"', client.get("/", headers={"x-tenant": "other"}).text)
    )
    assert len(other) == 1 and other != ids
    assert client.get(f"/logs/{min(other)}", headers=acme).status_code == 404
    assert client.get("/records/LEAD/2", headers=acme).status_code == 404  # other's lead
    assert client.get("/records/LEAD/1", headers=acme).status_code == 200


@SQLITE_ONLY  # routing, files and refusals: the dialect does not matter
def test_without_the_page_create_app_serves_only_the_api(crm: Crm, engine: Engine) -> None:
    client = client_of(create_app(crm.keeper, engine, page=False))
    assert client.get("/").status_code == 404
    assert client.get("/api/catalogue").status_code == 200
