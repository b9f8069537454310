"""The screenshots in docs/web.md, taken by the suite's browser on the demo's log.

Every run takes them; ``AUDITKEEPER_SCREENSHOTS=docs`` writes them over docs/images
(their times change at every run, so a plain test run leaves the tree clean)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from playwright.sync_api import Browser, expect
from rich.console import Console
from sqlalchemy import create_engine

import auditkeeper
from auditkeeper.api import create_app
from auditkeeper.cli.demo import run_demo
from tests.web.conftest import LAPTOP, open_page, serving

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_docs_screenshots_show_the_demo_log(browser: Browser, tmp_path: Path) -> None:
    engine = auditkeeper.configure_sqlite(create_engine(f"sqlite:///{tmp_path / 'demo.db'}"))
    crm = run_demo(engine, Console(file=io.StringIO()))
    app = create_app(crm.keeper, engine, user_names=crm.User.full_name)
    page, watch, context = open_page(browser, LAPTOP)
    to_docs = os.environ.get("AUDITKEEPER_SCREENSHOTS") == "docs"
    images = DOCS_IMAGES if to_docs else tmp_path
    images.mkdir(exist_ok=True)
    try:
        with serving(app) as url:
            page.goto(url)
            expect(page.locator("table.log tbody tr")).to_have_count(13)
            page.screenshot(path=images / "viewer.png", full_page=True)
            page.get_by_text("impersonated by bob@example.com").click()  # log 7
            expect(page.locator("table.diff tr.changed")).to_have_count(2)
            page.screenshot(path=images / "viewer-diff.png", full_page=True)
    finally:
        context.close()
        engine.dispose()
    assert watch.errors == [] and watch.dialogs == []
    for name in ("viewer.png", "viewer-diff.png"):
        assert (images / name).read_bytes().startswith(PNG)
