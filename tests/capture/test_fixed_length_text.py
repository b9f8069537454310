"""``CHAR(n)``: PostgreSQL stores ``"ab"`` as ``"ab   "`` and holds the two equal. The
log writes fixed-length text without its padding on every path and on both dialects, so
that a save giving back the unpadded text (or the padded text the database returned)
changes nothing and writes no row. ``VARCHAR(n)``: PostgreSQL cuts spaces past ``n``,
and the log writes what it kept."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import CHAR, Engine, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import Action, log_rows, model_fixtures, sent_statements


class Kind(enum.IntEnum):
    COUNTRY = 1
    CITY = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.COUNTRY, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Country(Base):
    __tablename__ = "countries"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(CHAR(5))
    name: Mapped[str] = mapped_column(String(40))


@auditkeeper.audited(
    entity_type=Kind.CITY, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class City(Base):
    """Every value reads alike in SQL: the statement trigger may log its changes."""

    __tablename__ = "cities"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def sent(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def test_fixed_length_text_is_logged_without_its_padding_on_every_path(
    sessions: Any, engine: Engine
) -> None:
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        country = Country(id=1, code="ab", name="Absurdistan")
        session.add(country)
        session.commit()
        session.expire(country)  # read back as stored: "ab   " on PostgreSQL
        country.code = "ab"
        session.commit()
        session.expire(country)
        country.code = "ab "
        session.commit()
        assert len(log_rows(engine, keeper)) == 1  # nothing changed
        country.name = "Abland"
        session.commit()
        session.connection().execute(text("UPDATE countries SET name = 'Abia'"))
        session.connection().execute(text("UPDATE countries SET code = 'ab  '"))  # no change
        session.connection().execute(text("UPDATE countries SET code = 'xy'"))
        session.commit()
        session.expire(country)
        session.delete(country)
        session.commit()
    rows = log_rows(engine, keeper)
    assert [(row.action, row.difference) for row in rows] == [
        (Action.CREATE, {"id": [None, 1], "code": [None, "ab"], "name": [None, "Absurdistan"]}),
        (Action.UPDATE, {"name": ["Absurdistan", "Abland"]}),
        (Action.UPDATE, {"name": ["Abland", "Abia"]}),
        (Action.UPDATE, {"code": ["ab", "xy"]}),
        (Action.DELETE, {"id": [1, None], "code": ["xy", None], "name": ["Abia", None]}),
    ]
    assert {(row.previous or {}).get("code") for row in rows} == {None, "ab", "xy"}
    assert {(row.current or {}).get("code") for row in rows} == {None, "ab", "xy"}


@pytest.mark.parametrize("model", [City, Country], ids=["by-the-triggers", "by-the-flush"])
def test_spaces_past_a_varchar_length_are_logged_as_the_database_keeps_them(
    sessions: Any, engine: Engine, sent: list[str], model: Any
) -> None:
    """PostgreSQL cuts the spaces past ``VARCHAR(n)``'s length (and refuses other text
    there): the log writes what it stored, once, whichever path writes the row (a
    ``City``'s creations, updates and deletions of two records: the statement trigger;
    a ``Country``'s, with its ``CHAR``: the flush). SQLite keeps the spaces."""

    def stored(given: str) -> str:
        return given[:40] if engine.dialect.name == "postgresql" else given

    created = ["x" * 40 + "   ", "w" * 40 + "  "]
    both, alone = "y" * 40 + " ", "z" * 40 + "      "
    with sessions() as session, auditkeeper.acting_as(user_id=None, email="ops@example.com"):
        session.add_all([model(id=1, name=created[0]), model(id=2, name=created[1])])
        session.commit()
        first, second = session.get(model, 1), session.get(model, 2)
        first.name = second.name = both
        session.commit()
        second.name = alone  # one record: its row rides on its UPDATE
        session.commit()
        session.delete(first)
        session.delete(second)
        session.commit()
    if engine.dialect.name == "postgresql":
        by_trigger = [s.split("*/ ")[2].split()[0] for s in sent if "auditkeeper:flush-rows" in s]
        assert by_trigger == (["INSERT", "UPDATE", "DELETE"] if model is City else [])
    rows = log_rows(engine, keeper)
    assert [(row.action, row.number_identifier, row.difference["name"]) for row in rows] == [
        (Action.CREATE, 1, [None, stored(created[0])]),
        (Action.CREATE, 2, [None, stored(created[1])]),
        (Action.UPDATE, 1, [stored(created[0]), stored(both)]),
        (Action.UPDATE, 2, [stored(created[1]), stored(both)]),
        (Action.UPDATE, 2, [stored(both), stored(alone)]),
        (Action.DELETE, 1, [stored(both), None]),
        (Action.DELETE, 2, [stored(alone), None]),
    ]
