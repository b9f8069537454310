"""Value fidelity: what the log stores for each column type, read back from the database.

The rules (DESIGN.md, "The audit-log record"): datetimes ISO-8601 with their offset,
Decimal as a string with every digit, UUID as a string, enums by value, bytes as base64,
JSON as it is; never truncated, never a silent loss. Every storage-facing test runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import ipaddress
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Enum,
    Float,
    LargeBinary,
    Numeric,
    String,
    Text,
    Time,
    Uuid,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import CaptureError
from auditkeeper.capture.triggers import announcement
from auditkeeper.model.values import dumps, loads, to_json_value
from tests._support import POSTGRES_ONLY, entries

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Action(enum.IntEnum):
    SAMPLE_CREATE = 1
    SAMPLE_UPDATE = 2
    SAMPLE_DELETE = 3


class Kind(enum.IntEnum):
    SAMPLE = 1


class Status(enum.Enum):
    ACTIVE = "active"
    ON_HOLD = "on hold"
    CLOSED = 3  # a non-string value


class Colour(str, enum.Enum):  # noqa: UP042 - the mixin form is the point
    """A str-mixin enum, as many applications (and FastAPI's docs) write them."""

    RED = "red"
    DARK_BLUE = "dark blue"


@dataclasses.dataclass
class Model:
    Base: type[DeclarativeBase]
    Sample: type[Any]
    keeper: auditkeeper.Auditkeeper
    engine: Engine
    sessions: sessionmaker[Session]

    def rows(self) -> list[Any]:
        """Every audit row, oldest first."""
        with Session(self.engine) as session:
            entry = self.keeper.Entry
            return list(session.scalars(select(entry).order_by(entry.id)))

    def by_key(self) -> list[Any]:
        """Every audit row in the order of the records' ids (one flush may write
        several records' rows in any order)."""
        return sorted(self.rows(), key=lambda row: (row.number_identifier, row.id))


def build_model(database: Any) -> Model:
    """A fresh model with one column of each kind, its audit log, and an audited factory."""

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind, users=None)

    @auditkeeper.audited(
        entity_type=Kind.SAMPLE,
        create=Action.SAMPLE_CREATE,
        update=Action.SAMPLE_UPDATE,
        delete=Action.SAMPLE_DELETE,
    )
    class Sample(Base):
        __tablename__ = "samples"
        id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
        aware: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
        naive: Mapped[dt.datetime | None] = mapped_column(DateTime())
        day: Mapped[dt.date | None] = mapped_column(Date)
        clock: Mapped[dt.time | None] = mapped_column(Time)
        amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(40, 30))
        ident: Mapped[uuid.UUID | None] = mapped_column(Uuid)
        status: Mapped[Status | None] = mapped_column(Enum(Status, native_enum=False, length=20))
        colour: Mapped[Colour | None] = mapped_column(Enum(Colour, native_enum=False, length=20))
        blob: Mapped[bytes | None] = mapped_column(LargeBinary)
        doc: Mapped[Any] = mapped_column(JSON, nullable=True)
        label: Mapped[str | None] = mapped_column(String(50))
        ratio: Mapped[float | None] = mapped_column(Float)
        body: Mapped[str | None] = mapped_column(Text)
        flag: Mapped[bool | None] = mapped_column(Boolean)
        big: Mapped[int | None] = mapped_column(BigInteger)

    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    keeper.install(sessions)
    return Model(Base, Sample, keeper, engine, sessions)


@pytest.fixture
def model(database) -> Model:
    return build_model(database)


COLUMNS = [
    "id",
    "aware",
    "naive",
    "day",
    "clock",
    "amount",
    "ident",
    "status",
    "colour",
    "blob",
    "doc",
    "label",
    "ratio",
    "body",
    "flag",
    "big",
]
EMPTY = dict.fromkeys(COLUMNS)

MEGABYTE_TEXT = ("0123456789 abcdef 'quoted' \"double\" \\ % 🦆\n" * 30_000)[:1_000_000]
ALL_BYTES = bytes(range(256)) * 3
NESTED = {
    "ключ": ["値", {"emoji": "🦆👩‍👩‍👧", "numbers": [1, -2, 2.5, 0, None, True, False]}],
    "": "",
    "empty": {"list": [], "dict": {}},
    "quote": "'\"\\%",
    "deep": [[[[{"a": [[]]}]]]],
}


def _first_values() -> dict[str, Any]:
    return {
        "id": 1,
        "colour": None,  # set, so that no column is left for the database to fill in
        "aware": dt.datetime(
            2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
        ),
        "naive": dt.datetime(2024, 2, 29, 23, 59, 59, 654321),
        "day": dt.date(2024, 2, 29),
        "clock": dt.time(23, 59, 59, 999999),
        "amount": decimal.Decimal("1234567890.123456789012345678901234567890"),
        "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "status": Status.ON_HOLD,
        "blob": ALL_BYTES,
        "doc": NESTED,
        "label": "",
        "ratio": 0.1,
        "body": MEGABYTE_TEXT,
        "flag": False,
        "big": 2**63 - 1,
    }


FIRST_JSON = {
    "id": 1,
    "aware": "2024-02-29T23:59:59.123456+05:30",
    "naive": "2024-02-29T23:59:59.654321",
    "day": "2024-02-29",
    "clock": "23:59:59.999999",
    "amount": "1234567890.123456789012345678901234567890",
    "ident": "12345678-1234-5678-1234-567812345678",
    "status": "on hold",
    "colour": None,
    "blob": base64.b64encode(ALL_BYTES).decode("ascii"),
    "doc": NESTED,
    "label": "",
    "ratio": 0.1,
    "body": MEGABYTE_TEXT,
    "flag": False,
    "big": 2**63 - 1,
}

SECOND_VALUES = {
    "aware": dt.datetime(
        1999, 12, 31, 0, 0, tzinfo=dt.timezone(-dt.timedelta(hours=9, minutes=45))
    ),
    "naive": dt.datetime(1, 1, 1, 0, 0),
    "day": dt.date(9999, 12, 31),
    "clock": dt.time(0, 0),
    "amount": decimal.Decimal("-0.000123000000000000000000000000"),
    "ident": uuid.UUID(int=0),
    "status": Status.CLOSED,
    "blob": b"",
    "doc": [],
    "label": "None",
    "ratio": -2.5,
    "body": MEGABYTE_TEXT[:-1] + "!",
    "flag": True,
    "big": -(2**63),
}

SECOND_JSON = {
    "id": 1,
    "aware": "1999-12-31T00:00:00-09:45",
    "naive": "0001-01-01T00:00:00",
    "day": "9999-12-31",
    "clock": "00:00:00",
    "amount": "-0.000123000000000000000000000000",
    "ident": "00000000-0000-0000-0000-000000000000",
    "status": 3,
    "colour": None,
    "blob": "",
    "doc": [],
    "label": "None",
    "ratio": -2.5,
    "body": MEGABYTE_TEXT[:-1] + "!",
    "flag": True,
    "big": -(2**63),
}


def test_every_type_round_trips_through_the_log(model: Model) -> None:
    with model.sessions() as session:
        sample = model.Sample(**_first_values())
        session.add(sample)
        session.commit()
        for key, value in SECOND_VALUES.items():
            setattr(sample, key, value)
        session.commit()
        session.delete(sample)
        session.commit()
    created, updated, deleted = model.rows()
    assert created.action == Action.SAMPLE_CREATE and created.number_identifier == 1
    assert created.changed_objects == {
        "previous": None,
        "current": FIRST_JSON,
        "difference": {k: [None, v] for k, v in FIRST_JSON.items() if v is not None},
    }
    assert updated.changed_objects == {
        "previous": FIRST_JSON,
        "current": SECOND_JSON,
        "difference": {k: [FIRST_JSON[k], SECOND_JSON[k]] for k in SECOND_VALUES},
    }
    assert deleted.changed_objects == {
        "previous": SECOND_JSON,
        "current": None,
        "difference": {k: [v, None] for k, v in SECOND_JSON.items() if v is not None},
    }
    # never truncated: the megabyte is there three times over in the update row
    assert len(updated.current["body"]) == len(updated.previous["body"]) == 1_000_000


def test_previous_is_what_the_database_returns_after_a_reload(model: Model) -> None:
    """Read back in a new session, old values are the database's (with its own limits:
    SQLite keeps neither time zones nor 40 significant digits), encoded by the same rules."""
    with model.sessions() as session:
        session.add(model.Sample(**_first_values()))
        session.commit()
    with model.sessions() as session:
        sample = session.get(model.Sample, 1)
        loaded = {key: getattr(sample, key) for key in COLUMNS}
        sample.flag = True
        session.commit()
    _, updated = model.rows()
    assert updated.previous == {key: to_json_value(value) for key, value in loaded.items()}
    assert updated.difference == {"flag": [False, True]}
    if model.engine.dialect.name == "postgresql":
        # PostgreSQL keeps every digit and the instant (shown in the session's zone)
        assert updated.previous["amount"] == FIRST_JSON["amount"]
        moment = dt.datetime.fromisoformat(updated.previous["aware"])
        assert moment == _first_values()["aware"]
        assert {k: v for k, v in updated.previous.items() if k not in ("aware", "flag")} == {
            k: v for k, v in FIRST_JSON.items() if k not in ("aware", "flag")
        }


@pytest.mark.parametrize(
    ("value", "stored"),
    [("", ""), (None, None), ("None", "None"), ("null", "null"), (" ", " ")],
)
def test_empty_none_and_the_word_none_stay_distinct(model: Model, value, stored) -> None:
    with model.sessions() as session:
        session.add(model.Sample(id=1, label=value))
        session.commit()
    (row,) = model.rows()
    assert row.current["label"] == stored
    assert type(row.current["label"]) is type(stored)
    if value is None:
        assert "label" not in row.difference  # null -> null is not a change
    else:
        assert row.difference["label"] == [None, stored]


def test_changes_between_empty_none_and_the_word_none_are_recorded(model: Model) -> None:
    with model.sessions() as session:
        sample = model.Sample(id=1, label=None)
        session.add(sample)
        session.commit()
        for value in ["", "None", None, "None", "", None]:
            sample.label = value
            session.commit()
    rows = model.rows()[1:]
    assert [r.difference["label"] for r in rows] == [
        [None, ""],
        ["", "None"],
        ["None", None],
        [None, "None"],
        ["None", ""],
        ["", None],
    ]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (0.1, 0.1),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (123456.789, 123456.789),
        (2.0**53, 2.0**53),
    ],
)
def test_floats_non_finite_as_strings(model: Model, value, stored) -> None:
    """``to_json_value`` turns NaN and infinities into the strings of ``repr``."""
    with model.sessions() as session:
        session.add(model.Sample(id=1, ratio=value))
        session.commit()
    (row,) = model.rows()
    assert row.current["ratio"] == stored
    assert type(row.current["ratio"]) is type(stored)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (ipaddress.ip_address("10.0.0.1"), "10.0.0.1"),
        (ipaddress.ip_address("2001:db8::1"), "2001:db8::1"),
        (ipaddress.ip_interface("10.0.0.1/24"), "10.0.0.1/24"),
        (ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8"),
        (ipaddress.ip_network("2001:db8::/32"), "2001:db8::/32"),
    ],
)
def test_network_addresses_as_postgresql_writes_them(value: Any, text: str) -> None:
    """PostgreSQL's inet and cidr come back from psycopg and asyncpg as ``ipaddress``
    objects; the log keeps the text the database writes for them."""
    assert to_json_value(value) == text
    assert loads(dumps({"a": value})) == {"a": text}


def test_setting_nan_again_is_not_a_change(model: Model) -> None:
    with model.sessions() as session:
        sample = model.Sample(id=1, ratio=float("nan"))
        session.add(sample)
        session.commit()
        sample.ratio = float("nan")  # a different NaN object, the same value
        session.commit()
        sample.ratio = float("inf")
        session.commit()
    assert [r.difference.get("ratio") for r in model.rows()] == [[None, "nan"], ["nan", "inf"]]


def _equal_value_writes_no_row(model: Model, field: str, stored: Any, equal: Any) -> None:
    """A value equal to the stored one for the column's type: SQLAlchemy leaves the
    column out of its UPDATE, the stored record does not change, and a save that
    changes nothing writes no row."""
    with model.sessions() as session:
        sample = model.Sample(id=1, **{field: stored})
        session.add(sample)
        session.commit()
        setattr(sample, field, equal)
        session.commit()
        assert len(model.rows()) == 1
        sample.label = "changed"
        session.commit()
    assert [r.difference for r in model.rows()[1:]] == [{"label": [None, "changed"]}]


def test_true_for_1_in_a_json_document_is_not_a_change(model: Model) -> None:
    _equal_value_writes_no_row(model, "doc", 1, True)


@POSTGRES_ONLY  # SQLite keeps a datetime's wall time, without its offset
def test_the_same_instant_in_another_zone_is_not_a_change(model: Model) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    at_ten = dt.datetime(2024, 6, 1, 10, tzinfo=dt.UTC)
    _equal_value_writes_no_row(model, "aware", at_ten, at_ten.astimezone(paris))


LARGE_FLOATS = [1e16, 1e22, -3e20, 1.5e300, 1.7976931348623157e308]


def test_large_floats_stay_floats(request: pytest.FixtureRequest, model: Model) -> None:
    with model.sessions() as session:
        session.add_all(model.Sample(id=n, ratio=v) for n, v in enumerate(LARGE_FLOATS, 1))
        session.commit()
    stored = [r.current["ratio"] for r in model.by_key()]
    assert [type(v) for v in stored] == [float] * len(LARGE_FLOATS)
    assert stored == LARGE_FLOATS


def test_thirty_decimal_places_keep_every_digit(model: Model) -> None:
    amounts = [
        "0.123456789012345678901234567890",
        "9999999999.999999999999999999999999999999",
        "-1234567890.000000000000000000000000000001",
        "0.100000000000000000000000000000",
        "42",
    ]
    with model.sessions() as session:
        session.add_all(
            model.Sample(id=n, amount=decimal.Decimal(a)) for n, a in enumerate(amounts, 1)
        )
        session.commit()
    assert [r.current["amount"] for r in model.by_key()] == amounts


def test_small_decimals_are_written_with_their_places(model: Model) -> None:
    amounts = ["0.000000000000000000000000000001", "0.000000000000000000000000000000"]
    with model.sessions() as session:
        session.add_all(
            model.Sample(id=n, amount=decimal.Decimal(a)) for n, a in enumerate(amounts, 1)
        )
        session.commit()
    assert [r.current["amount"] for r in model.by_key()] == amounts


def test_a_decimal_with_fewer_places_is_not_a_change(crm, engine, audited_sessions) -> None:
    with audited_sessions() as session:
        business = crm.Business(name="Acme", annual_revenue=decimal.Decimal("10.50"))
        session.add(business)
        session.commit()
        business.annual_revenue = decimal.Decimal("10.5")
        session.commit()
    assert len(entries(crm, engine)) == 1


def test_enums_are_stored_by_value(model: Model) -> None:
    with model.sessions() as session:
        session.add_all(
            [
                model.Sample(id=1, status=Status.ACTIVE),
                model.Sample(id=2, status=Status.ON_HOLD),
                model.Sample(id=3, status=Status.CLOSED),
            ]
        )
        session.commit()
    assert [r.current["status"] for r in model.by_key()] == ["active", "on hold", 3]


def test_str_mixin_enums_are_stored_by_value(model: Model) -> None:
    with model.sessions() as session:
        session.add(model.Sample(id=1, colour=Colour.DARK_BLUE))
        session.commit()
    (row,) = model.rows()
    assert row.current["colour"] == "dark blue"
    assert row.difference["colour"] == [None, "dark blue"]


class Html(str):
    """A str subclass, like ``markupsafe.Markup`` or ``numpy.str_``."""


class Ratio(float):
    """A float subclass, like ``numpy.float64``."""


_SUBCLASS_BUG = (
    "BUG: model/values.py to_json_value returns instances of str and float subclasses "
    "unchanged (isinstance checks return `value` itself); dumps runs orjson with "
    "OPT_PASSTHROUGH_SUBCLASS, its default hook gets the same object back and raises, so "
    "the flush fails with CaptureError (wrapped in sqlalchemy's StatementError). Fix: "
    "return str(value) / float(value) for subclasses (after the Enum check)"
)


@pytest.mark.parametrize(
    ("column", "value", "stored"),
    [
        ("body", Html("<b>bold</b>"), "<b>bold</b>"),
        ("ratio", Ratio(1.5), 1.5),
        ("doc", {"html": Html("<i>x</i>")}, {"html": "<i>x</i>"}),
    ],
)
def test_str_and_float_subclasses_are_stored(model: Model, column, value, stored) -> None:
    with model.sessions() as session:
        session.add(model.Sample(id=1, **{column: value}))
        session.commit()
    (row,) = model.rows()
    assert row.current[column] == stored


def test_a_json_document_is_stored_as_it_is(model: Model) -> None:
    documents = [
        NESTED,
        [1, "two", [3, {"four": None}]],
        "just a string",
        12345,
        True,
        {"k": {"nested": {"deeper": ["ü", "😀", "\u2028", "\\n"]}}},
    ]
    with model.sessions() as session:
        session.add_all(model.Sample(id=n, doc=d) for n, d in enumerate(documents, 1))
        session.commit()
    assert [r.current["doc"] for r in model.by_key()] == documents


def test_json_integers_beyond_64_bits(request: pytest.FixtureRequest, model: Model) -> None:
    document = {"big": 2**70, "negative": -(2**80) - 1, "list": [2**64, 2**64 - 1, -(2**63)]}
    with model.sessions() as session:
        session.add(model.Sample(id=1, doc=document))
        session.commit()
    (row,) = model.rows()
    assert row.current["doc"] == document
    assert row.difference["doc"] == [None, document]


def test_binary_is_base64(model: Model) -> None:
    with model.sessions() as session:
        session.add_all(
            [
                model.Sample(id=1, blob=b""),
                model.Sample(id=2, blob=None),
                model.Sample(id=3, blob=b"\x00\xff'\"\\%"),
            ]
        )
        session.commit()
    assert [r.current["blob"] for r in model.by_key()] == ["", None, "AP8nIlwl"]
    assert base64.b64decode("AP8nIlwl") == b"\x00\xff'\"\\%"


def test_booleans_and_null(model: Model) -> None:
    with model.sessions() as session:
        sample = model.Sample(id=1, flag=None)
        session.add(sample)
        session.commit()
        for value in (False, True, None):
            sample.flag = value
            session.commit()
    rows = model.rows()
    assert rows[0].current["flag"] is None and "flag" not in rows[0].difference
    assert [r.difference["flag"] for r in rows[1:]] == [[None, False], [False, True], [True, None]]


# -- hypothesis round trips through the database ----------------------------------------------

_STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
fixed_offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@pytest.fixture
def counter() -> Iterator[Iterator[int]]:
    yield iter(range(1, 10_000))


@HYPOTHESIS
@given(text=st.text(_STORABLE, max_size=300))
@example(text="'; DROP TABLE audit_log; --")
@example(text="%s %(x)s \\ \\\\ \" '")
@example(text="None")
def test_text_round_trips(model: Model, counter, text) -> None:
    number = next(counter)
    with model.sessions() as session:
        session.add(model.Sample(id=number, body=text, label=text[:50]))
        session.commit()
    row = model.rows()[-1]
    assert row.number_identifier == number
    assert row.current["body"] == text
    assert row.current["label"] == text[:50]


@HYPOTHESIS
@given(number=st.integers(min_value=-(2**63), max_value=2**63 - 1))
@example(number=2**63 - 1)
@example(number=-(2**63))
@example(number=2**53 + 1)
@example(number=0)
def test_integers_round_trip(model: Model, counter, number) -> None:
    key = next(counter)
    with model.sessions() as session:
        session.add(model.Sample(id=key, big=number, doc={"n": number}))
        session.commit()
    row = model.rows()[-1]
    assert row.current["big"] == number and type(row.current["big"]) is int
    assert row.current["doc"] == {"n": number}


@HYPOTHESIS
@given(
    amount=st.decimals(
        min_value=-(10**10) + 1,
        max_value=10**10 - 1,
        places=30,
        allow_nan=False,
        allow_infinity=False,
    )
)
@example(amount=decimal.Decimal("0.000000000000000000000000000001"))
@example(amount=decimal.Decimal("-9999999999.999999999999999999999999999999"))
def test_decimals_round_trip(model: Model, counter, amount) -> None:
    key = next(counter)
    with model.sessions() as session:
        session.add(model.Sample(id=key, amount=amount))
        session.commit()
    stored = model.rows()[-1].current["amount"]
    assert isinstance(stored, str)
    assert decimal.Decimal(stored).as_tuple() == amount.as_tuple()  # every digit and place


@HYPOTHESIS
@given(
    moment=st.datetimes(
        min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=fixed_offsets
    )
)
@example(moment=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
@example(moment=dt.datetime(2, 1, 1, 0, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))))
def test_aware_datetimes_round_trip(model: Model, counter, moment) -> None:
    key = next(counter)
    with model.sessions() as session:
        session.add(model.Sample(id=key, aware=moment, naive=moment.replace(tzinfo=None)))
        session.commit()
    current = model.rows()[-1].current
    aware = dt.datetime.fromisoformat(current["aware"])
    assert aware == moment and aware.utcoffset() == moment.utcoffset()
    assert dt.datetime.fromisoformat(current["naive"]) == moment.replace(tzinfo=None)
    assert current["naive"] == moment.replace(tzinfo=None).isoformat()


@POSTGRES_ONLY
def test_an_offset_postgresql_cannot_read_is_updated_and_deleted_too(model: Model, counter):
    """PostgreSQL reads offsets up to 15:59, and the checks at commit read the flush's
    text of a timestamp: one beyond is left uncompared rather than failing the commit."""
    far = dt.timezone(dt.timedelta(hours=16))
    key = next(counter)
    with model.sessions() as session:
        sample = model.Sample(id=key, aware=dt.datetime(2000, 1, 1, tzinfo=far))
        session.add(sample)
        session.commit()
        sample.aware = dt.datetime(2001, 1, 1, tzinfo=far)
        session.commit()
        session.delete(sample)
        session.commit()
    created, updated, deleted = model.rows()[-3:]
    assert created.current["aware"] == "2000-01-01T00:00:00+16:00"
    moment = dt.datetime(2001, 1, 1, tzinfo=far)
    assert dt.datetime.fromisoformat(updated.current["aware"]) == moment
    assert dt.datetime.fromisoformat(deleted.previous["aware"]) == moment
    assert [row.context for row in (created, updated, deleted)] == [None] * 3  # once each


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    | st.text(_STORABLE, max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(_STORABLE, max_size=10), inner, max_size=4)
    ),
    max_leaves=15,
)


@HYPOTHESIS
@given(document=json_values)
def test_json_documents_round_trip(model: Model, counter, document) -> None:
    key = next(counter)
    with model.sessions() as session:
        session.add(model.Sample(id=key, doc=document))
        session.commit()
    assert model.rows()[-1].current["doc"] == document


# -- the encoding functions themselves ---------------------------------------------------------


@pytest.mark.parametrize("value", ["", "text", 0, -1, 2**200, True, False, None])
def test_native_values_pass_through(value) -> None:
    assert to_json_value(value) is value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (decimal.Decimal("10.50"), "10.50"),
        (decimal.Decimal("-0.00"), "-0.00"),
        (decimal.Decimal("NaN"), "NaN"),
        (decimal.Decimal("-Infinity"), "-Infinity"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(1, 2, 3, 4), "01:02:03.000004"),
        (
            dt.time(12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
            "12:00:00-03:00",
        ),
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "2024-01-01T00:00:00+00:00"),
        (dt.datetime(2024, 1, 1), "2024-01-01T00:00:00"),
        (uuid.UUID(int=255), "00000000-0000-0000-0000-0000000000ff"),
        (b"\x00\x01", "AAE="),
        (bytearray(b"abc"), "YWJj"),
        (memoryview(b"abc"), "YWJj"),
        (dt.timedelta(days=1, microseconds=1), 86400.000001),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (1.5, 1.5),
        (Status.ON_HOLD, "on hold"),
        (Action.SAMPLE_UPDATE, 2),
        ((1, "a"), [1, "a"]),
        (
            [decimal.Decimal("1.0"), [uuid.UUID(int=1)]],
            ["1.0", ["00000000-0000-0000-0000-000000000001"]],
        ),
        ({"d": {"e": dt.date(2000, 1, 1)}}, {"d": {"e": "2000-01-01"}}),
    ],
)
def test_to_json_value(value, expected) -> None:
    converted = to_json_value(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_int_subclasses_become_plain_ints() -> None:
    converted = to_json_value(Action.SAMPLE_CREATE)
    assert converted == 1 and type(converted) is int


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Html("x"), "x"), (Ratio(2.5), 2.5), (Colour.RED, "red"), ({Html("k"): 1}, {"k": 1})],
)
def test_subclasses_of_native_types_become_native(value, expected) -> None:
    converted = to_json_value(value)
    assert converted == expected and type(converted) is type(expected)
    if isinstance(converted, dict):
        assert all(type(key) is str for key in converted)
    assert loads(dumps(converted)) == expected


def test_non_string_keys_become_text() -> None:
    converted = to_json_value(
        {1: "int", uuid.UUID(int=1): "uuid", dt.date(2024, 1, 2): "date", None: "none", 1.5: "f"}
    )
    assert converted == {
        "1": "int",
        "00000000-0000-0000-0000-000000000001": "uuid",
        "2024-01-02": "date",
        "null": "none",
        "1.5": "f",
    }


def test_keys_that_collide_once_converted_are_refused() -> None:
    with pytest.raises(CaptureError, match="key"):
        to_json_value({1: "a", "1": "b"})


def test_sets_become_sorted_lists() -> None:
    assert to_json_value({"pear", "apple", "fig"}) == ["apple", "fig", "pear"]
    assert to_json_value(frozenset({3, 1, 2})) == [1, 2, 3]
    assert to_json_value(set()) == []
    assert to_json_value({"tags": {"b", "a"}}) == {"tags": ["a", "b"]}


@settings(max_examples=30, deadline=None)
@given(items=st.sets(st.integers() | st.text(max_size=5), max_size=12))
def test_equal_sets_give_equal_lists(items) -> None:
    """Whatever the insertion order, the same set gives the same list (no spurious changes)."""
    forwards = to_json_value(set(items))
    backwards = to_json_value(set(reversed(list(items))))
    assert forwards == backwards
    assert sorted(map(repr, forwards)) == sorted(map(repr, items))


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value",
    [
        object(),
        _Opaque(),
        complex(1, 2),
        {"nested": [1, {"deeper": _Opaque()}]},
        [1, 2, object()],
        {_Opaque(): 1},
    ],
)
def test_unsupported_values_raise_capture_error(value) -> None:
    with pytest.raises(CaptureError, match="cannot store a value of type"):
        to_json_value(value)


def test_dumps_and_loads_round_trip() -> None:
    document = {"a": [1, 2.5, None, True, "ü🦆"], "b": {"c": ""}, "d": 2**63 - 1}
    text = dumps(document)
    assert isinstance(text, str)
    assert json.loads(text) == document
    assert loads(text) == document
    assert loads(text.encode("utf-8")) == document
    assert "ü🦆" in text  # UTF-8, not \u escapes


def test_dumps_keeps_every_digit_of_big_integers() -> None:
    document = {"big": 2**70, "small": -(2**90), "list": [2**64]}
    text = dumps(document)
    assert str(2**70) in text and str(-(2**90)) in text and str(2**64) in text
    assert json.loads(text) == document


def test_64_bit_bounds_round_trip() -> None:
    for number in (2**63 - 1, -(2**63), 2**64 - 1):
        assert loads(dumps([number])) == [number]


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 2**70, 10**40])
def test_loads_keeps_integers_beyond_64_bits(number) -> None:
    decoded = loads(dumps({"n": number}))
    assert decoded == {"n": number} and type(decoded["n"]) is int


@pytest.mark.parametrize("document", [{"x": math.nan}, {"x": math.inf, "big": 2**70}])
def test_non_finite_floats_never_become_null(document) -> None:
    """What the recorder stores always passes through to_json_value first."""
    text = dumps(to_json_value(document))
    assert json.loads(text)["x"] in ("nan", "inf")


def test_dumps_refuses_raw_non_finite_floats_with_big_integers() -> None:
    with pytest.raises(CaptureError):
        dumps({"x": math.inf, "big": 2**70})


def test_timedelta_is_exact_or_refused() -> None:
    value = dt.timedelta(days=36_500, microseconds=1)
    assert dt.timedelta(seconds=to_json_value(value)) == value
    with pytest.raises(CaptureError, match="too long"):
        to_json_value(dt.timedelta(days=10**6, microseconds=1))


_JSON_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | _JSON_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_JSON_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@given(_DOCUMENTS)
@example({"digits in text": "1" * 25, "n": 10**18})
@example([-(2**63) - 1, "x" * 19])
def test_loads_reads_back_every_document_from_text_or_bytes(document) -> None:
    """Integers of any size survive (the long-number check sees digits in strings too,
    and then the slower decoder keeps everything)."""
    text = dumps(document)
    assert loads(text) == document
    assert loads(text.encode("utf-8")) == document


def test_loads_accepts_what_orjson_refuses() -> None:
    assert loads("[1, 2]") == [1, 2]
    assert math.isnan(loads("NaN"))  # stdlib json extension, never written by dumps


def test_a_flush_of_every_type_is_logged_once(model: Model) -> None:
    """The capture trigger recognises the flush's row for every column type, to and from
    null (no second row marked as the trigger's)."""
    values = {
        "aware": dt.datetime(2026, 3, 1, 12, 30, 15, 500, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 3, 1, 12, 30, 15),
        "day": dt.date(1999, 12, 31),
        "clock": dt.time(23, 59, 58, 120000),
        "amount": decimal.Decimal("12.5"),
        "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "status": Status.ON_HOLD,
        "colour": Colour.DARK_BLUE,
        "blob": b"\x00\xffbytes",
        "doc": {"nested": [1, 2.5, None, "x"], "flag": True},
        "label": "x",
        "ratio": 0.1,
        "body": "long",
        "flag": True,
        "big": 2**62,
    }
    with model.sessions() as session:
        sample = model.Sample(id=1)
        session.add(sample)
        session.commit()
        for state in (values, dict.fromkeys(values), values):
            for name, value in state.items():
                setattr(sample, name, value)
            session.commit()
    rows = model.rows()
    assert len(rows) == 4
    assert [row.context for row in rows] == [None] * 4


def test_the_capture_triggers_write_the_values_as_the_flush_does(model: Model, database) -> None:
    """A row copied with raw SQL is logged by the capture trigger: its document must read
    like the flush's document of the original (docs/raw-sql.md names the exceptions)."""
    sample = model.Sample(
        id=1,
        aware=dt.datetime(2026, 3, 1, 12, 30, 15, 500, tzinfo=dt.UTC),
        naive=dt.datetime(2026, 3, 1, 12, 30, 15),
        day=dt.date(1999, 12, 31),
        clock=dt.time(23, 59, 58, 120000),
        amount=decimal.Decimal("12.500000000000000000000000000001"),
        ident=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        status=Status.ON_HOLD,
        colour=Colour.DARK_BLUE,
        blob=b"\x00\xffbytes",
        doc={"nested": [1, 2.5, None, "x"], "flag": True},
        label='quote " and \\ and <tag>',
        ratio=0.1,
        body="long " * 100,
        flag=True,
        big=2**62,
    )
    with model.sessions() as session:
        session.add(sample)
        session.commit()
    columns = ", ".join(c for c in COLUMNS if c != "id")
    with model.engine.begin() as connection:
        connection.exec_driver_sql(
            f"INSERT INTO samples (id, {columns}) SELECT 2, {columns} FROM samples WHERE id = 1"
        )
    by_flush, by_trigger = model.rows()
    assert by_trigger.context == {"captured_by": "database trigger"}
    expected = {**by_flush.current, "id": 2}
    if database.dialect == "sqlite":  # what SQLite stores, as docs/raw-sql.md says
        expected["aware"] = "2026-03-01T12:30:15.000500"  # the offset is not stored
        expected["blob"] = "hex:00ff6279746573"  # no base64 in SQLite
        expected["amount"] = "12.500000000000000000000000000000"  # a REAL: 15 digits
    assert by_trigger.current == expected


@POSTGRES_ONLY
def test_the_statement_triggers_write_every_type_as_the_row_trigger(model: Model) -> None:
    """The set-based SQL of a bulk statement (docs/bulk.md) against the row trigger's,
    value type by value type: the same rows inserted, changed, then deleted, by each."""
    first = {
        "aware": dt.datetime(2026, 3, 1, 12, 30, 15, 500, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 3, 1, 12, 30, 15),
        "day": dt.date(1999, 12, 31),
        "clock": dt.time(23, 59, 58, 120000),
        "amount": decimal.Decimal("12.500000000000000000000000000001"),
        "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "status": Status.ON_HOLD,
        "colour": Colour.DARK_BLUE,
        "blob": ALL_BYTES,
        "doc": NESTED,
        "label": 'quote " and \\ and <tag>',
        "ratio": 0.1,
        "body": MEGABYTE_TEXT[:5000],
        "flag": True,
        "big": 2**62,
    }
    second = {
        "aware": dt.datetime(2027, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "naive": None,
        "day": dt.date(2000, 1, 1),
        "clock": None,
        "amount": decimal.Decimal("-0.000000000000000000000000000001"),
        "ident": None,
        "status": None,
        "colour": Colour.DARK_BLUE,
        "blob": b"",
        "doc": {"flag": False, "list": [None]},
        "label": "",
        "ratio": float("-inf"),
        "body": "None",
        "flag": False,
        "big": -(2**63),
    }
    with model.sessions() as session:
        session.add_all([model.Sample(id=1, **first), model.Sample(id=2, **first)])
        session.commit()
    columns = ", ".join(c for c in COLUMNS if c != "id")
    announce = announcement(model.Sample.__table__, postgresql.dialect())
    with model.engine.begin() as connection:  # copies: by the statement trigger, by the row one
        connection.exec_driver_sql(
            f"{announce} INSERT INTO samples (id, {columns}) SELECT 3, {columns} FROM samples "
            "WHERE id = 1"
        )
        connection.exec_driver_sql(
            f"INSERT INTO samples (id, {columns}) SELECT 4, {columns} FROM samples WHERE id = 1"
        )
    for key, disabled in ((1, None), (2, "samples_audit_updates")):
        if disabled:
            with model.engine.begin() as connection:
                connection.exec_driver_sql(f"ALTER TABLE samples DISABLE TRIGGER {disabled}")
        with model.sessions() as session:
            sample = model.Sample
            session.execute(update(sample).where(sample.id == key).values(**second))
            session.commit()
    for key, disabled in ((1, None), (2, "samples_audit_deletes")):
        if disabled:
            with model.engine.begin() as connection:
                connection.exec_driver_sql(f"ALTER TABLE samples DISABLE TRIGGER {disabled}")
        with model.sessions() as session:
            session.execute(delete(model.Sample).where(model.Sample.id == key))
            session.commit()
    rows = model.rows()[2:]
    assert [r.context["captured_by"] for r in rows] == [
        "database statement trigger",
        "database trigger",
    ] * 3

    def without_key(document: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if document is None else {k: v for k, v in document.items() if k != "id"}

    for by_statement, by_row in (rows[0:2], rows[2:4], rows[4:6]):
        assert by_statement.action == by_row.action
        for side in ("previous", "current", "difference"):
            assert without_key(getattr(by_statement, side)) == without_key(getattr(by_row, side))
    assert set(rows[2].difference) == set(first) - {"colour"}
