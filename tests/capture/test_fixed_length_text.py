"""``CHAR(n)``: PostgreSQL stores ``"ab"`` as ``"ab   "`` and holds the two equal. The
log writes fixed-length text without its padding on every path and on both dialects, so
that a save giving back the unpadded text (or the padded text the database returned)
changes nothing and writes no row."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import CHAR, Engine, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import Action, log_rows, model_fixtures


class Kind(enum.IntEnum):
    COUNTRY = 1


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


engine, sessions = model_fixtures(Base.metadata, keeper)


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
