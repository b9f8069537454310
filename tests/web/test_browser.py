"""The viewer's pages in Chromium: filter, sort, page back and forth, open a difference
and a trail, with the keyboard too, at laptop and phone widths; hostile values stay
text. Every test also fails on any script error, console error (such as a resource the
Content-Security-Policy blocked) or dialog (``conftest.Watch``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import (
    HOSTILE_NAME,
    HOSTILE_REASON,
    HOSTILE_TAG,
    PHONE,
    Viewer,
    Watch,
    open_page,
)

SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def column(page: Page, number: int) -> list[str]:
    """The texts of the log table's column ``number`` (1-based), top to bottom."""
    cells = page.locator(f"table.log tbody tr td:nth-child({number})")
    return [text.strip() for text in cells.all_inner_texts()]


def log_ids(page: Page) -> list[int]:
    return [int(text.removeprefix("#")) for text in column(page, 1)]


def filter_log(page: Page, **fields: str) -> None:
    """Fill the log's filter form (selects by value, inputs by text) and submit it."""
    for name, value in fields.items():
        control = page.locator(f"form.filters [name={name}]")
        if control.evaluate("element => element.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()


def test_filter_sort_and_page_back_and_forth(viewer: Viewer, page: Page) -> None:
    page.goto(viewer.url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    assert len(log_ids(page)) == 25  # the default page size
    filter_log(page, entity_type="LEAD", action="LEAD_CREATE", limit="10")
    first = log_ids(page)
    assert len(first) == 10 and first == sorted(first, reverse=True)
    assert set(column(page, 3)) == {"LEAD_CREATE"} and set(column(page, 4)) == {"LEAD"}
    expect(page.locator(".pager .disabled")).to_have_text("← Previous")

    page.get_by_role("link", name="Next →").click()
    second = log_ids(page)
    assert len(second) == 10 and max(second) < min(first)
    page.get_by_role("link", name="Next →").click()
    third = log_ids(page)
    assert max(third) < min(second)
    page.get_by_role("link", name="← Previous").click()
    assert log_ids(page) == second
    page.get_by_role("link", name="← Previous").click()
    assert log_ids(page) == first
    expect(page.get_by_role("link", name="← Previous")).to_have_count(0)
    expect(page.locator("#f-action")).to_have_value("LEAD_CREATE")  # the form kept it

    page.get_by_role("link", name=re.compile("^Date")).click()  # the column sorts
    oldest = log_ids(page)
    assert oldest == sorted(oldest) and oldest[0] < min(third)
    expect(page.locator("#f-sort")).to_have_value("oldest")
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")

    filter_log(page, action="", entity_type="", text="ticket #12_34", sort="newest")
    assert column(page, 3) == ["LEAD_UPDATE"]  # the reason, in any case
    filter_log(page, text="", user="bob@example.com")
    assert column(page, 3) == ["LEAD_UPDATE"]
    filter_log(page, user="")
    today = dt.datetime.now(dt.UTC).date()
    filter_log(page, since=today.isoformat(), until=today.isoformat(), limit="100")
    assert len(log_ids(page)) > 40  # "to" includes the whole day
    filter_log(page, since=(today + dt.timedelta(days=1)).isoformat(), until="")
    expect(page.locator("td.empty")).to_have_text("No audit logs match these filters.")


def test_a_row_opens_its_difference_and_the_trail(viewer: Viewer, page: Page) -> None:
    page.goto(f"{viewer.url}/?action=LEAD_UPDATE&user=bob@example.com")
    page.locator("table.log tbody tr td:nth-child(3)").first.click()  # not a link: page.js
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("LEAD_UPDATE"))
    changed = page.locator("table.diff tr.changed")
    assert sorted(changed.locator("th").all_inner_texts()) == ["score changed", "status changed"]
    status = page.locator("table.diff tr", has=page.locator("th", has_text="status"))
    assert status.locator("td mark").all_inner_texts() == ["new", "contacted"]
    assert page.locator("table.diff tr.same mark").count() == 0
    expect(page.locator("table.diff tr", has_text="name").first).to_contain_text("Lead 00")
    expect(page.locator(".facts")).to_contain_text(HOSTILE_REASON)
    page.get_by_role("link", name="All logs of this record").click()
    assert set(column(page, 5)) == {str(viewer.ids["first_lead"])}
    assert column(page, 3) == ["LEAD_ASSIGN_TO_BUSINESS", "LEAD_UPDATE", "LEAD_CREATE"]
    page.go_back()

    page.get_by_role("link", name=re.compile("^Audit trail of LEAD")).click()
    headers = page.locator("table.trail thead th").all_inner_texts()
    assert [h.strip(" ▲▼") for h in headers] == [
        "Type of event",
        "Description",
        "User",
        "Date",
        "Log",
    ]
    events = page.locator("table.trail tbody td:nth-child(1)").all_inner_texts()
    assert events == ["Updated", "Updated", "Created"]
    expect(page.locator("table.trail tbody")).to_contain_text(
        '"status" was changed from "New" to "Contacted"'
    )
    expect(page.locator("table.trail tbody")).to_contain_text("Bob Brown")  # user_names
    page.get_by_label("Search", exact=True).fill("contacted")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.trail caption")).to_contain_text("Events 1 to 1 of 1")
    page.locator("table.trail tbody a").first.click()  # back to that row's log
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("LEAD_UPDATE"))


def test_a_long_trail_pages_and_sorts(viewer: Viewer, page: Page) -> None:
    page.goto(f"{viewer.url}/records/LEAD/{viewer.ids['busy']}?limit=10")
    caption = page.locator("table.trail caption")
    expect(caption).to_have_text("Events 1 to 10 of 13")
    newest = page.locator("table.trail tbody td:nth-child(2)").first.inner_text()
    assert newest == '"score" was changed from "11" to "12"'
    page.get_by_role("link", name="Next →").click()
    expect(caption).to_have_text("Events 11 to 13 of 13")
    assert page.locator("table.trail tbody td:nth-child(1)").all_inner_texts()[-1] == "Created"
    page.get_by_role("link", name="← Previous").click()
    expect(caption).to_have_text("Events 1 to 10 of 13")
    page.get_by_role("link", name=re.compile("^Date")).click()  # oldest first now
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    assert page.locator("table.trail tbody td:nth-child(1)").first.inner_text() == "Created"


def test_hostile_values_are_shown_as_text_and_never_run(viewer: Viewer, page: Page) -> None:
    page.goto(f"{viewer.url}/?text=img src=x")
    assert column(page, 3) == ["LEAD_UPDATE", "LEAD_CREATE"]  # the hostile lead's rows
    page.get_by_role("link", name=f"#{log_ids(page)[0]}").click()
    diff = page.locator("table.diff")
    expect(diff.get_by_text(HOSTILE_NAME, exact=True)).to_be_visible()
    expect(diff.get_by_text(HOSTILE_TAG, exact=True).first).to_be_visible()
    assert_inert(page)
    page.get_by_role("link", name=re.compile("^Audit trail of")).click()
    expect(page.locator("table.trail")).to_contain_text(HOSTILE_NAME)
    assert_inert(page)
    page.goto(f"{viewer.url}/?since={HOSTILE_NAME}")
    expect(page.locator(".problem")).to_contain_text(HOSTILE_NAME[:20])
    assert_inert(page)
    page.goto(f"{viewer.url}/?user=bob@example.com")
    expect(page.locator("table.log")).to_contain_text(HOSTILE_REASON)
    assert_inert(page)
    # (the fixture asserts that no dialog opened and no script failed)


def assert_inert(page: Page) -> None:
    """No injected script ran and no injected element exists."""
    assert page.evaluate("window.__xss") is None
    assert page.locator("img, b, [onerror], [onmouseover]").count() == 0


@SQLITE_ONLY
def test_the_keyboard_reaches_and_opens_everything(viewer: Viewer, page: Page) -> None:
    page.goto(viewer.url)
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    for _ in range(40):  # through the form to the table's first link
        page.keyboard.press("Tab")
        if re.fullmatch(r"#\d+", page.evaluate("document.activeElement.textContent")):
            break
    focused = page.evaluate("document.activeElement.textContent")
    assert re.fullmatch(r"#\d+", focused), focused
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(f"^Log {focused}"))
    page.go_back()
    page.locator("#f-action").focus()  # choose with keys, submit with Enter
    page.keyboard.press("End")
    page.locator("#f-text").focus()
    page.keyboard.type("lead 0")
    page.keyboard.press("Enter")
    expect(page.locator("td.empty")).to_be_visible()  # no comment was deleted
    expect(page.locator("#f-action")).to_have_value("COMMENT_DELETE")
    expect(page.locator("#f-text")).to_have_value("lead 0")


@SQLITE_ONLY
def test_every_control_is_labelled_and_tables_are_described(viewer: Viewer, page: Page) -> None:
    for path in ("/", f"/logs/{1}", f"/records/LEAD/{viewer.ids['busy']}"):
        page.goto(viewer.url + path)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("h1").count() == 1
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input:not([type=hidden]), select')]
                .filter(control => control.labels.length === 0).map(c => c.name)"""
        )
        assert unlabelled == []
        for table in page.locator("table").all():
            assert table.locator("caption").inner_text().strip()
            assert table.locator("thead th:not([scope=col])").count() == 0


@SQLITE_ONLY
def test_a_phone_reads_the_page_without_sideways_scrolling(
    viewer: Viewer, browser: Browser
) -> None:
    page, watch, context = open_page(browser, PHONE)
    try:
        for path in ("/", f"/logs/{2}", f"/records/LEAD/{viewer.ids['busy']}"):
            page.goto(viewer.url + path)
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], (path, widths)
            box = page.locator(".scroll").bounding_box()
            assert box is not None and box["width"] <= PHONE["width"]
        page.goto(viewer.url)
        table = page.locator("div.scroll")  # the table scrolls inside its own box
        assert table.evaluate("box => box.scrollWidth > box.clientWidth")
        form = page.locator("form.filters").bounding_box()
        assert form is not None and form["width"] <= PHONE["width"]
        page.locator("table.log tbody tr td:nth-child(1) a").first.click()
        expect(page.locator("table.diff")).to_be_visible()
    finally:
        context.close()
    assert watch.errors == [] and watch.dialogs == []


@SQLITE_ONLY
def test_watch_catches_a_blocked_inline_script(viewer: Viewer, watched: tuple[Page, Watch]) -> None:
    """The Content-Security-Policy refuses inline scripts, and ``Watch`` sees it: the
    other tests' empty error lists mean something."""
    page, watch = watched
    page.goto(viewer.url)
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s); }"""
    )
    page.wait_for_timeout(100)
    assert page.evaluate("window.__inline") is None
    assert any("Content Security Policy" in error for error in watch.errors)
    watch.errors.clear()
