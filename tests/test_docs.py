"""The examples in README.md and docs/ run, and print what the pages say they print.

Every ```python block of a page runs, in order, in one namespace, in an empty folder.
A block followed by a line "prints" and a ```text block must print exactly that text.
"""

from __future__ import annotations

import contextlib
import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

import auditkeeper

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def examples(page: Path) -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` for each python block of the page."""
    text = page.read_text()
    found: list[tuple[str, str | None]] = []
    blocks = list(_BLOCK.finditer(text))
    for index, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        expected = None
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if following is not None and following.group(1) == "text":
            between = text[block.end() : following.start()].strip()
            if between == "prints":
                expected = following.group(2)
        found.append((block.group(2), expected))
    return found


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    if 'os.environ["DATABASE_URL"]' in page.read_text():  # a PostgreSQL-only page
        database = request.getfixturevalue("postgresql_database")
        monkeypatch.setenv("DATABASE_URL", database.cli_url())
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}

    def run_examples() -> None:
        for number, (code, expected) in enumerate(examples(page), start=1):
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                compiled = compile(code, f"{page.name}[{number}]", "exec", dont_inherit=True)
                exec(compiled, namespace)
            if expected is not None:
                assert output.getvalue() == expected, f"{page.name} example {number}"
        assert auditkeeper.current_actor() is None, f"{page.name} leaves an actor behind"

    # A thread of their own, as a script has: no event loop running (the browser tests'
    # Playwright keeps one in this thread while it lives), no context of the test's.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run_examples).result()
    for value in namespace.values():  # close the examples' connections before GC does
        if isinstance(value, Engine):
            value.dispose()


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"{page.name} is not linked from README.md"


def test_every_page_the_readme_links_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme):
        assert (ROOT / link).exists(), f"README.md links to missing {link}"
