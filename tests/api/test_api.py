"""The JSON API on both dialects: reads, keyset pages, tenants, 405 on writes, 422s."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fastapi import Header
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.api import CSP, create_app
from auditkeeper.demo.crm import Crm

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def seeded(crm: Crm, audited_sessions: sessionmaker[Session], users: list[Any]) -> dict[str, Any]:
    """Leads in two tenants, one with a script in its name, and an update."""
    ids: dict[str, Any] = {}
    with (
        auditkeeper.acting_as(users[0].id, email=users[0].email, tenant_id="acme"),
        audited_sessions() as session,
    ):
        for n in range(5):
            session.add(crm.Lead(name=f"Lead {n}"))
        evil = crm.Lead(name="<script>alert(1)</script>")
        session.add(evil)
        session.commit()
        ids["evil"] = evil.id
        evil.name = "renamed"
        session.commit()
    with (
        auditkeeper.acting_as(users[1].id, email=users[1].email, tenant_id="other"),
        audited_sessions() as session,
    ):
        other = crm.Lead(name="Other tenant")
        session.add(other)
        session.commit()
        ids["other"] = other.id
    return ids


def _client(crm: Crm, engine: Engine, **kw: Any) -> TestClient:
    return TestClient(create_app(crm.keeper, engine, **kw), raise_server_exceptions=True)


def test_list_pages_and_filters(crm: Crm, engine: Engine, seeded: dict[str, Any]) -> None:
    client = _client(crm, engine)
    first = client.get("/api/logs", params={"limit": 3})
    assert first.status_code == 200
    assert first.headers["content-security-policy"] == CSP
    body = first.json()
    assert len(body["items"]) == 3 and body["next_cursor"]
    assert body["previous_cursor"] is None
    seen = [item["id"] for item in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = client.get("/api/logs", params={"limit": 3, "cursor": cursor}).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 8
    back = client.get("/api/logs", params={"limit": 3, "cursor": page["previous_cursor"]})
    assert [item["id"] for item in back.json()["items"]] == seen[3:6]
    updates = client.get("/api/logs", params={"action": "lead_update"}).json()["items"]
    assert [u["record_id"] for u in updates] == [seeded["evil"]]
    assert updates[0]["action_name"] == "LEAD_UPDATE"
    assert updates[0]["changed_fields"] == ["name"]
    one = client.get(
        "/api/logs", params={"entity_type": "LEAD", "record": str(seeded["evil"])}
    ).json()
    assert len(one["items"]) == 2
    found = client.get("/api/logs", params={"text": "<SCRIPT>"}).json()["items"]
    assert [(f["record_id"], f["action_name"]) for f in found] == [
        (seeded["evil"], "LEAD_UPDATE"),
        (seeded["evil"], "LEAD_CREATE"),
    ]
    assert client.get("/api/logs", params={"text": "lead_"}).json()["items"] == []


def test_one_log_trail_as_of_and_catalogue(
    crm: Crm, engine: Engine, seeded: dict[str, Any]
) -> None:
    client = _client(crm, engine)
    update = client.get("/api/logs", params={"action": "LEAD_UPDATE"}).json()["items"][0]
    detail = client.get(f"/api/logs/{update['id']}").json()
    assert detail["difference"]["name"] == ["<script>alert(1)</script>", "renamed"]
    assert detail["previous"]["name"] == "<script>alert(1)</script>"
    assert detail["current"]["name"] == "renamed"
    trail = client.get(f"/api/records/LEAD/{seeded['evil']}/trail").json()
    assert trail["total"] == 2
    assert [r["event"] for r in trail["rows"]] == ["Updated", "Created"]
    found = client.get(
        f"/api/records/lead/{seeded['evil']}/trail", params={"search": "renamed"}
    ).json()
    assert found["total"] == 1
    state = client.get(f"/api/records/2/{seeded['evil']}/as-of").json()
    assert state["status"] == "exists" and state["fields"]["name"] == "renamed"
    catalogue = client.get("/api/catalogue").json()
    assert {"code": 2, "name": "LEAD", "entity_class": "Lead"} in catalogue["entity_types"]
    assert client.get("/openapi.json").status_code == 200


def test_tenant_scope(crm: Crm, engine: Engine, seeded: dict[str, Any]) -> None:
    def tenant(x_tenant: str = Header()) -> str:
        return x_tenant

    client = _client(crm, engine, tenant=tenant)
    acme = {"x-tenant": "acme"}
    items = client.get("/api/logs", headers=acme).json()["items"]
    assert {i["tenant_id"] for i in items} == {"acme"} and len(items) == 7
    other_row = client.get("/api/logs", headers={"x-tenant": "other"}).json()["items"][0]
    assert client.get(f"/api/logs/{other_row['id']}", headers=acme).status_code == 404
    path = f"/api/records/LEAD/{seeded['other']}"
    assert client.get(f"{path}/trail", headers=acme).status_code == 404
    assert client.get(f"{path}/as-of", headers=acme).status_code == 404
    assert client.get("/api/logs").status_code == 422  # no tenant header


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_refused(crm: Crm, engine: Engine, seeded: dict[str, Any], method: str) -> None:
    client = _client(crm, engine)
    before = client.get("/api/logs", params={"limit": 100}).json()["items"]
    for path in (
        "/api/logs",
        f"/api/logs/{before[0]['id']}",
        "/api/catalogue",
        f"/api/records/LEAD/{seeded['evil']}/trail",
    ):
        assert client.request(method, path).status_code == 405
    assert client.get("/api/logs", params={"limit": 100}).json()["items"] == before


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/api/logs", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/logs", {"since": "yesterday"}, "since"),
        ("/api/logs", {"until": "2026-13-45"}, "until"),
        ("/api/logs", {"since": "2026-03-02", "until": "2026-03-01"}, "since"),
        ("/api/logs", {"entity_type": "PLANET"}, "entity_type"),
        ("/api/logs", {"action": "nope"}, "action"),
        ("/api/logs", {"record": "1"}, "record"),
        ("/api/logs", {"entity_type": "LEAD", "record": "x"}, "record"),
        ("/api/logs", {"user_id": "99999999999999999999999"}, "user_id"),
        ("/api/logs", {"user_email": "a\x00b"}, "user_email"),
        ("/api/logs", {"text": "a\x00b"}, "text"),
        ("/api/logs", {"text": "x" * 513}, "text"),
        ("/api/logs", {"limit": "0"}, "limit"),
        ("/api/logs/abc", {}, "entry_id"),
        ("/api/logs/99999999999999999999999", {}, "entry_id"),
        ("/api/records/LEAD/abc/trail", {}, "key"),
        ("/api/records/LEAD/1/trail", {"sort": "colour"}, "sort"),
        ("/api/records/PLANET/1/trail", {}, "entity_type"),
        ("/api/records/LEAD/1/as-of", {"at": "soon"}, "at"),
    ],
)
def test_bad_input_is_422_naming_the_parameter(
    crm: Crm, engine: Engine, seeded: dict[str, Any], path: str, params: dict[str, str], param: str
) -> None:
    response = _client(crm, engine).get(path, params=params)
    assert response.status_code == 422, response.text
    assert param in [d["loc"][-1] for d in response.json()["detail"]]
