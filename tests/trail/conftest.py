"""The seed's models on this test's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.trail._seed import Seed, build_seed


@pytest.fixture
def seed(engine: Engine) -> Seed:
    return build_seed(engine)
