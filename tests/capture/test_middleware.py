"""``ActorMiddleware``: each request runs as the actor its application resolves, and only it.

The middleware does not touch storage, but the endpoints write through an audited
session, so these tests run on both dialects like every storage-facing test.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import auditkeeper
from auditkeeper import Actor, ActorError, ActorMiddleware, current_actor
from auditkeeper.demo.crm import Crm, build_crm
from tests._support import entries

with warnings.catch_warnings():
    # Starlette 1.x asks for ``httpx2`` but still works with ``httpx``, the dev extra.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient


def _actor_json() -> dict[str, Any] | None:
    actor = current_actor()
    if actor is None:
        return None
    return {
        "user_id": actor.user_id,
        "email": actor.email,
        "context": dict(actor.context or {}),
        "is_impersonated": actor.is_impersonated,
    }


def build_app(
    crm: Crm,
    factory: sessionmaker[Session],
    emails: dict[int, str],
    *,
    include_request_context: bool = True,
    app_context: dict[str, Any] | None = None,
) -> Any:
    """A Starlette app whose resolver reads ``x-user-id`` (and ``x-impersonator-id``)."""

    async def resolve(scope: Any) -> Actor | None:
        headers = dict(scope.get("headers", []))
        raw = headers.get(b"x-user-id")
        if raw is None:
            return None
        user_id = int(raw)
        impersonator = headers.get(b"x-impersonator-id")
        await asyncio.sleep(0)  # a real resolver awaits a session store or a JWKS
        return Actor(
            user_id=user_id,
            email=emails.get(user_id),
            impersonator_user_id=None if impersonator is None else int(impersonator),
            context=app_context,
        )

    def write(name: str) -> int:
        with factory() as session:
            business = crm.Business(name=name)
            session.add(business)
            session.commit()
            return int(business.id)

    async def create_async(request: Request) -> JSONResponse:
        """An async endpoint that does its blocking database work in the thread pool."""
        body = await request.json()
        before = _actor_json()
        await asyncio.sleep(random.random() / 200)  # let other requests interleave
        business_id = await run_in_threadpool(write, body["name"])
        after = _actor_json()
        return JSONResponse({"id": business_id, "before": before, "after": after})

    def create_sync(request: Request) -> JSONResponse:
        """A sync endpoint: Starlette runs it in a worker thread."""
        name = request.query_params["name"]
        return JSONResponse({"id": write(name), "actor": _actor_json()})

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(_actor_json())

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        name = await websocket.receive_text()
        business_id = await run_in_threadpool(write, name)
        await websocket.send_json({"id": business_id, "actor": _actor_json()})
        await websocket.close()

    started: list[Actor | None] = []
    app = Starlette(
        routes=[
            Route("/businesses", create_async, methods=["POST"]),
            Route("/write/{rest:path}", create_async, methods=["POST"]),
            Route("/sync-businesses", create_sync, methods=["POST"]),
            Route("/whoami", whoami),
            Route("/whoami/{rest:path}", whoami),
            WebSocketRoute("/ws", socket),
        ],
        lifespan=lambda app: _Lifespan(started),
    )
    middleware = ActorMiddleware(
        app, resolve=resolve, include_request_context=include_request_context
    )
    return middleware, started


async def _noop() -> None:
    return None


class _Lifespan:
    """Records the actor seen at start-up (lifespan scopes pass through untouched)."""

    def __init__(self, started: list[Actor | None]) -> None:
        self.started = started

    async def __aenter__(self) -> None:
        self.started.append(current_actor())

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def emails(users) -> dict[int, str]:
    return {user.id: user.email for user in users}


@pytest.fixture
def client(crm: Crm, audited_sessions, emails) -> Iterator[TestClient]:
    app, _ = build_app(crm, audited_sessions, emails)
    with TestClient(app) as test_client:
        yield test_client


def test_request_actor_and_request_context_reach_the_log(
    crm: Crm, engine: Engine, client: TestClient, users
):
    alice = users[0]
    response = client.post(
        "/businesses",
        json={"name": "Acme"},
        headers={"x-user-id": str(alice.id), "x-request-id": "req-42", "user-agent": "pytest/1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["before"]["user_id"] == body["after"]["user_id"] == alice.id
    (row,) = entries(crm, engine)
    assert row.number_identifier == body["id"]
    assert row.user_id == alice.id
    assert row.user_email == alice.email
    assert row.is_impersonated is False
    assert row.context == {
        "ip": "testclient",
        "user_agent": "pytest/1",
        "request_id": "req-42",
        "path": "/businesses",
        "method": "POST",
    }


def test_request_without_a_user_is_a_system_action(crm: Crm, engine: Engine, client: TestClient):
    response = client.post("/businesses", json={"name": "anonymous"})
    assert response.status_code == 200
    assert response.json()["before"] is None
    (row,) = entries(crm, engine)
    assert row.user_id is None and row.user_email is None
    assert row.context is None  # no actor, so no request context either


def test_sync_endpoints_see_the_actor_in_their_worker_thread(
    crm: Crm, engine: Engine, client: TestClient, users
):
    bob = users[1]
    response = client.post(
        "/sync-businesses", params={"name": "sync"}, headers={"x-user-id": str(bob.id)}
    )
    assert response.status_code == 200
    assert response.json()["actor"]["user_id"] == bob.id
    (row,) = entries(crm, engine)
    assert (row.user_id, row.context["path"], row.context["method"]) == (
        bob.id,
        "/sync-businesses",
        "POST",
    )


def test_impersonation_from_the_resolver(crm: Crm, engine: Engine, client: TestClient, users):
    alice, bob, _ = users
    headers = {"x-user-id": str(alice.id), "x-impersonator-id": str(bob.id)}
    assert client.post("/businesses", json={"name": "x"}, headers=headers).status_code == 200
    (row,) = entries(crm, engine)
    assert (row.user_id, row.is_impersonated, row.impersonator_user_id) == (alice.id, True, bob.id)


def test_the_actor_does_not_outlive_the_request(client: TestClient, users):
    alice = users[0]
    assert client.get("/whoami", headers={"x-user-id": str(alice.id)}).json()["user_id"] == alice.id
    assert client.get("/whoami").json() is None
    assert current_actor() is None


def test_application_context_wins_over_request_details(crm: Crm, audited_sessions, emails, users):
    alice = users[0]
    app, _ = build_app(
        crm, audited_sessions, emails, app_context={"request_id": "from-app", "tenant": "t1"}
    )
    with TestClient(app) as client:
        body = client.get(
            "/whoami", headers={"x-user-id": str(alice.id), "x-request-id": "from-header"}
        ).json()
    assert body["context"]["request_id"] == "from-app"
    assert body["context"]["tenant"] == "t1"
    assert body["context"]["path"] == "/whoami"


def test_request_context_can_be_turned_off(crm: Crm, engine: Engine, audited_sessions, emails):
    alice_id = next(iter(emails))
    app, _ = build_app(crm, audited_sessions, emails, include_request_context=False)
    with TestClient(app) as client:
        client.post("/businesses", json={"name": "x"}, headers={"x-user-id": str(alice_id)})
    (row,) = entries(crm, engine)
    assert row.user_id == alice_id
    assert row.context is None


def test_lifespan_passes_through_without_an_actor(crm: Crm, audited_sessions, emails):
    app, started = build_app(crm, audited_sessions, emails)
    with TestClient(app):
        pass
    assert started == [None]


def test_websocket_requests_run_as_their_actor(crm: Crm, engine: Engine, client: TestClient, users):
    carol = users[2]
    with client.websocket_connect("/ws", headers={"x-user-id": str(carol.id)}) as ws:
        ws.send_text("over a socket")
        answer = ws.receive_json()
    assert answer["actor"]["user_id"] == carol.id
    (row,) = entries(crm, engine)
    assert row.user_id == carol.id
    assert row.context["path"] == "/ws"
    assert "method" not in row.context  # websockets have no method


def test_hostile_request_details_are_stored_verbatim(
    crm: Crm, engine: Engine, client: TestClient, users
):
    alice = users[0]
    nasty = "'; DROP TABLE audit_log; -- %s %(x)s \\ \" 100%"
    response = client.post(
        "/businesses",
        json={"name": "x"},
        headers={"x-user-id": str(alice.id), "x-request-id": nasty, "user-agent": nasty},
    )
    assert response.status_code == 200
    (row,) = entries(crm, engine)
    assert row.context["request_id"] == nasty
    assert row.context["user_agent"] == nasty


def test_inner_base_http_middleware_and_background_tasks_see_the_actor(
    crm: Crm, engine: Engine, audited_sessions, users
):
    """A ``BaseHTTPMiddleware`` below the actor middleware, and a background task that
    writes after the response was sent, both run as the request's actor."""
    from starlette.background import BackgroundTask
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    bob = users[1]
    seen: list[Any] = []

    class Spy(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Any:
            seen.append(current_actor())
            return await call_next(request)

    def write(name: str) -> None:
        with audited_sessions() as session:
            session.add(crm.Business(name=name))
            session.commit()

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True}, background=BackgroundTask(write, "in the background"))

    async def resolve(scope: Any) -> Actor | None:
        raw = dict(scope["headers"]).get(b"x-user-id")
        return None if raw is None else Actor(user_id=int(raw))

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(Spy)])
    app.add_middleware(ActorMiddleware, resolve=resolve)  # outermost, as applications do it
    with TestClient(app) as client:
        assert client.get("/", headers={"x-user-id": str(bob.id)}).status_code == 200
    assert [actor.user_id for actor in seen] == [bob.id]
    (row,) = entries(crm, engine)
    assert (row.current["name"], row.user_id) == ("in the background", bob.id)


def test_the_actor_is_reset_even_when_the_app_fails():
    seen: list[Actor | None] = []

    async def failing_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_actor())
        raise RuntimeError("boom")

    async def resolve(scope: Any) -> Actor:
        return Actor(user_id=1)

    middleware = ActorMiddleware(failing_app, resolve=resolve)
    scope = {"type": "http", "path": "/", "method": "GET", "headers": [], "client": None}

    async def main() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            await middleware(scope, _noop, _noop)
        assert current_actor() is None

    asyncio.run(main())
    (actor,) = seen
    assert actor is not None and actor.user_id == 1
    assert actor.context == {"path": "/", "method": "GET"}


def test_strict_mode_refuses_anonymous_writes(database):
    crm = build_crm(require_actor=True)
    engine = database.engine()
    crm.Base.metadata.create_all(engine)
    crm.keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    crm.keeper.install(factory)
    with Session(engine) as session:
        alice = crm.User(email="alice@example.com", full_name="Alice")
        session.add(alice)
        session.commit()
        emails = {alice.id: alice.email}
    app, _ = build_app(crm, factory, emails)
    with TestClient(app) as client:
        with pytest.raises(ActorError):
            client.post("/businesses", json={"name": "anonymous"})
        ok = client.post("/businesses", json={"name": "alice's"}, headers={"x-user-id": "1"})
        assert ok.status_code == 200
    assert [(r.current["name"], r.user_id) for r in entries(crm, engine)] == [("alice's", 1)]
    with Session(engine) as session:
        assert session.scalars(select(crm.Business.name)).all() == ["alice's"]


def test_concurrent_requests_never_mix_actors_threads(
    crm: Crm, engine: Engine, client: TestClient, users
):
    """Requests from 8 threads at once, through one event loop (a shared TestClient)."""
    ids = [u.id for u in users]

    def call(number: int) -> tuple[int, int, dict[str, Any]]:
        user_id = ids[number % len(ids)]
        response = client.post(
            "/businesses",
            json={"name": f"request-{number}"},
            headers={"x-user-id": str(user_id), "x-request-id": f"r{number}"},
        )
        assert response.status_code == 200
        return number, user_id, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(48)))
    for number, user_id, body in results:
        assert body["before"]["user_id"] == body["after"]["user_id"] == user_id
        assert body["after"]["context"]["request_id"] == f"r{number}"
    rows = entries(crm, engine)
    assert len(rows) == 48
    for row in rows:
        number = int(row.current["name"].removeprefix("request-"))
        assert row.user_id == ids[number % len(ids)]
        assert row.context["request_id"] == f"r{number}"


def test_concurrent_requests_never_mix_actors_asyncio(
    crm: Crm, engine: Engine, audited_sessions, emails, users
):
    """Many requests in flight on one event loop (httpx.AsyncClient + ASGITransport)."""
    app, _ = build_app(crm, audited_sessions, emails)
    ids = [u.id for u in users]

    async def main() -> list[tuple[int, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            async def call(number: int) -> tuple[int, Any]:
                headers = {"x-request-id": f"r{number}"}
                if number % 4:  # every fourth request is anonymous
                    headers["x-user-id"] = str(ids[number % len(ids)])
                response = await http.post(
                    "/businesses", json={"name": f"request-{number}"}, headers=headers
                )
                assert response.status_code == 200
                return number, response.json()

            return await asyncio.gather(*(call(n) for n in range(40)))

    for number, body in asyncio.run(main()):
        expected = ids[number % len(ids)] if number % 4 else None
        for moment in ("before", "after"):
            seen = body[moment]
            assert (None if seen is None else seen["user_id"]) == expected
    rows = entries(crm, engine)
    assert len(rows) == 40
    for row in rows:
        number = int(row.current["name"].removeprefix("request-"))
        if number % 4:
            assert row.user_id == ids[number % len(ids)]
            assert row.context["request_id"] == f"r{number}"
        else:
            assert row.user_id is None and row.context is None


def test_an_oversized_header_does_not_break_the_request(client: TestClient, users):
    alice = users[0]
    huge = "A" * (auditkeeper.MAX_CONTEXT_BYTES + 1)
    response = client.get("/whoami", headers={"x-user-id": str(alice.id), "user-agent": huge})
    assert response.status_code == 200
    assert response.json()["user_id"] == alice.id


def test_nul_in_the_request_path_does_not_break_the_request(
    request: pytest.FixtureRequest, database, crm: Crm, engine: Engine, client: TestClient, users
):
    """``/write/a%00b`` decodes to a path with NUL, which goes into the context."""
    alice = users[0]
    headers = {"x-user-id": str(alice.id)}
    assert client.get("/whoami/a%00b", headers=headers).status_code == 200
    response = client.post("/write/a%00b", json={"name": "x"}, headers=headers)
    assert response.status_code == 200
    (row,) = entries(crm, engine)
    assert row.user_id == alice.id
