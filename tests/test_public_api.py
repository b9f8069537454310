"""The public names: exported from the root, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
import types

import auditkeeper


def test_all_matches_the_exports() -> None:
    exported = {
        name
        for name in dir(auditkeeper)
        if not name.startswith("_")
        and name != "annotations"  # from __future__
        and not isinstance(getattr(auditkeeper, name), types.ModuleType)  # subpackages
    }
    assert set(auditkeeper.__all__) - {"__version__"} == exported
    assert len(set(auditkeeper.__all__)) == len(auditkeeper.__all__)
    for name in auditkeeper.__all__:
        assert getattr(auditkeeper, name) is not None


def test_import_does_not_load_optional_extras() -> None:
    code = (
        "import sys, auditkeeper; "
        "print(sorted(m for m in ('click', 'rich', 'starlette', 'fastapi', 'jinja2', 'uvicorn', "
        "'psycopg', 'greenlet', 'sqlalchemy.ext.asyncio', 'auditkeeper.web') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
