"""Every column type SQLAlchemy and its PostgreSQL dialect offer, through every write
path: a flush's creation, a flush's update, a bulk ``update()``, raw SQL and a bulk
``delete()``. Each path works, and each writes the value as the others do, except where
a database keeps a value in its own form (docs/raw-sql.md, "Limits")."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import ipaddress
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, Integer, delete, select, text, update
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import DeclarativeBase, Session

import auditkeeper
from tests._support import Action, model_fixtures


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark blue"


UTC = dt.UTC
BOTH: list[tuple[str, Any, Any]] = [
    ("bigint", sa.BigInteger(), 2**40),
    ("smallint", sa.SmallInteger(), 7),
    ("bool", sa.Boolean(), True),
    ("date", sa.Date(), dt.date(2024, 2, 29)),
    ("naive", sa.DateTime(), dt.datetime(2024, 2, 29, 23, 59, 59, 123)),
    ("aware", sa.DateTime(timezone=True), dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ("time", sa.Time(), dt.time(9, 30, 1, 5)),
    ("interval", sa.Interval(), dt.timedelta(days=1, seconds=5, microseconds=7)),
    ("float", sa.Float(), 0.1),
    ("double", sa.Double(), 1e300),
    ("numeric", sa.Numeric(), decimal.Decimal("1.2300")),
    ("numeric2", sa.Numeric(10, 2), decimal.Decimal("1.5")),
    ("numeric0", sa.Numeric(10, 0), decimal.Decimal("2.6")),  # stored as 3
    ("text", sa.Text(), "hello\nworld"),
    ("char", sa.CHAR(3), "ab"),
    ("bytes", sa.LargeBinary(), b"\x00\xff"),
    ("json", sa.JSON(), {"a": [1, 2.5, None], "b": "x"}),
    ("uuid", sa.Uuid(), uuid.UUID(int=5)),
    ("uuidtext", sa.Uuid(as_uuid=False), str(uuid.UUID(int=6))),
    ("enum", sa.Enum(Color), Color.DARK_BLUE),
    ("strenum", sa.Enum("x", "y", name="xy"), "y"),
]
POSTGRESQL_ONLY: list[tuple[str, Any, Any]] = [
    ("timetz", sa.Time(timezone=True), dt.time(9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    ("real", pg.REAL(), 1.5),
    ("real_rounded", pg.REAL(), 0.123456789),  # four bytes keep 0.12345679
    ("jsonb", pg.JSONB(), {"a": {"b": True}}),
    ("pguuid", pg.UUID(), uuid.UUID(int=7)),
    ("pgenum", pg.ENUM(Color, name="color"), Color.RED),
    ("inet", pg.INET(), ipaddress.ip_address("10.0.0.1")),
    ("cidr", pg.CIDR(), ipaddress.ip_network("10.0.0.0/8")),
    ("macaddr", pg.MACADDR(), "08:00:2b:01:02:03"),
    ("macaddr8", pg.MACADDR8(), "08:00:2b:01:02:03:04:05"),
    ("money", pg.MONEY(), "12.50"),
    ("oid", pg.OID(), 42),
    ("regclass", pg.REGCLASS(), "pg_class"),
    ("tsvector", pg.TSVECTOR(), "a b"),
    ("bit", pg.BIT(4), "1010"),
    ("varbit", pg.BIT(varying=True), "101"),
    ("bytea", pg.BYTEA(), b"abc"),
    ("ts3", pg.TIMESTAMP(precision=3), dt.datetime(2024, 1, 1, 1, 1, 1, 123000)),
    # Rounded by the database: to the second, and to the column's scale, ties away from 0.
    ("ts0", pg.TIMESTAMP(True, 0), dt.datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)),
    ("numeric_tie", sa.Numeric(10, 2), decimal.Decimal("-0.125")),
    ("time2", pg.TIME(precision=2), dt.time(1, 2, 3, 450000)),
    ("pginterval", pg.INTERVAL(fields="DAY TO SECOND"), dt.timedelta(days=2)),
    ("jsonpath", pg.JSONPATH(), "$.a"),
    ("int4range", pg.INT4RANGE(), pg.Range(1, 5, bounds="[]")),
    ("tstzrange", pg.TSTZRANGE(), pg.Range(dt.datetime(2024, 1, 1, tzinfo=UTC), None)),
    ("datemultirange", pg.DATEMULTIRANGE(), [pg.Range(dt.date(2024, 1, 1), dt.date(2024, 2, 1))]),
    ("arr_text", pg.ARRAY(sa.Text()), ["a", None]),
    ("arr_numeric", pg.ARRAY(sa.Numeric(10, 2)), [decimal.Decimal("1.5")]),
    ("arr_jsonb", pg.ARRAY(pg.JSONB()), [{"a": 1}]),
    ("arr_bytes", pg.ARRAY(sa.LargeBinary()), [b"x"]),
    ("arr_interval", pg.ARRAY(sa.Interval()), [dt.timedelta(seconds=3)]),
    ("arr_time", pg.ARRAY(sa.Time()), [dt.time(1, 2)]),
    ("arr_aware", pg.ARRAY(sa.DateTime(timezone=True)), [dt.datetime(2024, 1, 1, tzinfo=UTC)]),
    ("arr_enum", pg.ARRAY(sa.Enum(Color, name="color2")), [Color.DARK_BLUE]),
    ("arr_float", pg.ARRAY(sa.Float()), [0.1, 2.0]),
    ("arr_text_2d", pg.ARRAY(sa.Text(), dimensions=2), [["a", "b"], ["c", "d"]]),
]
# The values a database keeps in a form of its own (docs/raw-sql.md, "Limits"): what
# the application assigned, then what the database gives back.
OWN_FORMS = {
    "postgresql": {
        "money": ["12.50", "$12.50"],
        "tsvector": ["a b", "'a' 'b'"],
        "jsonpath": ["$.a", '$."a"'],
    },
    "sqlite": {
        "aware": ["2024-02-29T23:59:59+00:00", "2024-02-29T23:59:59"],
        "numeric": ["1.2300", "1.2300000000", "1.23"],
        "bytes": ["AP8=", "hex:00ff"],
    },
}


class Base(DeclarativeBase):
    pass


CASES = BOTH + POSTGRESQL_ONLY
Kind = enum.IntEnum("Kind", {name.upper(): n for n, (name, _, _) in enumerate(CASES, 1)})
keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}
CLASSES: dict[str, Any] = {}
POSTGRESQL_NAMES = {name for name, _, _ in POSTGRESQL_ONLY}
for name, declared, _ in CASES:
    table = sa.Table(
        f"every_{name}",
        Base.metadata,
        sa.Column("id", Integer, primary_key=True),
        sa.Column(
            "v",
            # On SQLite the table is made, not used.
            declared.with_variant(sa.Text(), "sqlite") if name in POSTGRESQL_NAMES else declared,
            nullable=True,
        ),
        sa.Column("n", Integer, default=0),
    )
    mapped = type(f"Every_{name}", (Base,), {"__table__": table})
    CLASSES[name] = auditkeeper.audited(entity_type=Kind[name.upper()], **VERBS)(mapped)

engine, sessions = model_fixtures(Base.metadata, keeper)


def _run(engine: Engine, sessions: Any, name: str, value: Any) -> list[Any]:
    """The five paths on one table; the values of its log's documents, in order."""
    cls = CLASSES[name]
    with auditkeeper.acting_as(1), sessions() as session:
        session.add(cls(id=1, v=value))
        session.commit()
        record = session.get(cls, 1)
        record.n = 1
        session.commit()
        session.execute(update(cls).values(n=cls.n + 1))
        session.commit()
        session.execute(text(f"UPDATE every_{name} SET n = n + 1"))
        session.commit()
        session.execute(delete(cls))
        session.commit()
    with Session(engine) as session:
        query = select(keeper.Entry).where(keeper.Entry.entity_type == Kind[name.upper()])
        rows = list(session.scalars(query.order_by(keeper.Entry.id)))
    assert [row.action for row in rows] == [Action.CREATE] + [Action.UPDATE] * 3 + [Action.DELETE]
    written = [row.current["v"] for row in rows[:-1]] + [row.previous["v"] for row in rows[1:]]
    return list(dict.fromkeys(map(repr, written)))


def test_every_type_takes_every_path_alike(engine: Engine, sessions: Any) -> None:
    dialect = engine.dialect.name
    cases = CASES if dialect == "postgresql" else BOTH
    forms = {name: _run(engine, sessions, name, value) for name, _, value in cases}
    differing = {name: written for name, written in forms.items() if len(written) > 1}
    assert differing == {
        name: [repr(value) for value in values] for name, values in OWN_FORMS[dialect].items()
    }
