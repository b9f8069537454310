"""The viewer in a real browser: Debian's Chromium driven by Playwright, against the app
served by uvicorn on a free local port, on each test's database (SQLite, PostgreSQL).

Without Chromium or Playwright these tests fail: a browser test that skips would let
the page break unnoticed. No browser is ever downloaded (no ``playwright install``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    sync_playwright,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper.api import create_app
from auditkeeper.demo.crm import Crm, LeadStatus

CHROMIUM = Path("/usr/bin/chromium")
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HOSTILE_NAME = "<script>window.__xss = 1; alert(1)</script>"
HOSTILE_TAG = '"><img src=x onerror="window.__xss = 2; alert(2)">'
HOSTILE_REASON = "<b onmouseover=alert(3)>Ticket #12_34</b>"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free 127.0.0.1 port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Watch:
    """What a page did that it must not: script errors, console errors (a CSP
    violation), a style sheet, script or icon that failed to load, and dialogs (an
    ``alert`` injected through a value). A page itself may answer 404 or 422."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # A failed load is reported by ``response``, which can tell a page from a file.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def response(self, response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} {response.url}")

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@dataclass
class Viewer:
    """The app on a seeded database: its URL, and what the seed wrote."""

    url: str
    ids: dict[str, int]


def open_page(browser: Browser, viewport: dict[str, int]) -> tuple[Page, Watch, Any]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    watch = Watch()
    page.on("console", watch.console)
    page.on("response", watch.response)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    page.on("dialog", watch.dialog)
    page.set_default_timeout(10_000)
    return page, watch, context


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    """A laptop-sized page; after the test, no script error, console error or dialog."""
    page, watch, context = open_page(browser, LAPTOP)
    yield page, watch
    context.close()
    assert watch.errors == []
    assert watch.dialogs == []


@pytest.fixture
def page(watched: tuple[Page, Watch]) -> Page:
    return watched[0]


def seed(crm: Crm, sessions: sessionmaker[Session], users: list[Any]) -> dict[str, int]:
    """30 leads by Alice, one updated by Bob with a reason, a lead updated 12 times,
    a business and an assignment by Carol, and hostile names and reasons."""
    alice, bob, carol = users
    ids: dict[str, int] = {}
    with acting(alice), sessions() as session:
        leads = [crm.Lead(name=f"Lead {n:02}") for n in range(30)]
        session.add_all(leads)
        session.commit()
        ids["first_lead"] = leads[0].id
    with acting(bob, reason=HOSTILE_REASON), sessions() as session:
        lead = session.get(crm.Lead, ids["first_lead"])
        lead.status = LeadStatus.CONTACTED
        lead.score = 40
        session.commit()
    with acting(carol), sessions() as session:
        busy = crm.Lead(name="Busy lead")
        session.add(busy)
        session.commit()
        for score in range(1, 13):
            busy.score = score
            session.commit()
        ids["busy"] = busy.id
        acme = crm.Business(name="Acme Corp")
        session.add(acme)
        session.commit()
        session.get(crm.Lead, ids["first_lead"]).business_id = acme.id
        session.commit()
    with acting(alice), sessions() as session:
        hostile = crm.Lead(name=HOSTILE_NAME, email=HOSTILE_TAG)
        session.add(hostile)
        session.commit()
        hostile.name = HOSTILE_TAG
        session.commit()
        ids["hostile"] = hostile.id
    return ids


def acting(user: Any, **kw: Any) -> Any:
    return auditkeeper.acting_as(user.id, email=user.email, **kw)


@pytest.fixture
def viewer(
    crm: Crm, engine: Engine, audited_sessions: sessionmaker[Session], users: list[Any]
) -> Iterator[Viewer]:
    """The standalone app (API and page) on this test's seeded database."""
    ids = seed(crm, audited_sessions, users)
    with serving(create_app(crm.keeper, engine, user_names=crm.User.full_name)) as url:
        yield Viewer(url, ids)
