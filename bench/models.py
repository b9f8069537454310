"""The benchmark's model, declared once for each variant, and its deterministic data.

``item`` has 16 columns and rows of about 1 KB (``shared/reference/perf-anchors.md``):
a bigint identity key, 5 varchar, a text of about 560 characters, 2 int, 2 numeric,
2 bool, 2 timestamptz and a JSON (JSONB on PostgreSQL) of about 250 bytes.

Variants:

- ``baseline``: no auditing.
- ``auditkeeper``: ``@audited`` + ``Auditkeeper.install``, every change made by an actor.
- ``continuum``: SQLAlchemy-Continuum, default options (``make_versioned(user_cls=None)``,
  validity strategy, ``item_version`` + ``transaction`` tables).
- ``pgaudit``: PostgreSQL-Audit, default statement-level triggers, with the actor passed
  through ``versioning_manager.values`` (without values it writes no ``transaction`` row
  and records no actor). Two workarounds for SQLAlchemy 2.x + psycopg 3: an explicit
  ``::regclass`` in the ``audit_table`` call, and ``transaction`` / ``activity`` created
  before ``item``. PostgreSQL only.

The peers are imported only when their variant is built: the project's own test suite
runs ``baseline`` and ``auditkeeper`` without them installed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Identity,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, configure_mappers, mapped_column, sessionmaker

__all__ = [
    "PEERS",
    "POSTGRESQL_ONLY",
    "VARIANTS",
    "Model",
    "build",
    "item_row",
    "updated_values",
]

VARIANTS = ("baseline", "auditkeeper", "continuum", "pgaudit")
"""Every variant, in the order the table prints them."""
PEERS = ("continuum", "pgaudit")
"""Variants that need packages outside the project's dependencies."""
POSTGRESQL_ONLY = frozenset({"pgaudit"})

LABELS = {
    "baseline": "baseline (no audit)",
    "auditkeeper": "auditkeeper",
    "continuum": "SQLAlchemy-Continuum",
    "pgaudit": "PostgreSQL-Audit",
}

ACTOR_ID = 1
ACTOR_EMAIL = "bench@example.com"


class Action(enum.IntEnum):
    ITEM_CREATE = 1
    ITEM_UPDATE = 2
    ITEM_DELETE = 3


class EntityType(enum.IntEnum):
    ITEM = 1


@dataclass
class Model:
    """One variant's declarative model and how to set it up."""

    variant: str
    Item: Any
    create_all: Callable[[Engine], None]
    """Create every table (and trigger) of the variant."""
    install: Callable[[sessionmaker[Any]], None]
    """Attach the variant's capture to the benchmark's sessions."""
    actor: Callable[[], contextlib.AbstractContextManager[Any]]
    """The context the timed work runs in (who acts)."""
    audit_tables: tuple[str, ...] = ()
    """The tables the variant stores its log in; the first holds one row per change."""
    extra: dict[str, Any] = field(default_factory=dict)


def _columns() -> dict[str, Any]:
    big = BigInteger().with_variant(Integer(), "sqlite")
    return {
        "__tablename__": "item",
        "id": mapped_column(big, Identity(), primary_key=True),
        "name": mapped_column(String(100), nullable=False),
        "email": mapped_column(String(200), nullable=False),
        "status": mapped_column(String(20), nullable=False),
        "city": mapped_column(String(100), nullable=False),
        "code": mapped_column(String(40), nullable=False),
        "description": mapped_column(Text, nullable=False),
        "quantity": mapped_column(Integer, nullable=False),
        "priority": mapped_column(Integer, nullable=False),
        "price": mapped_column(Numeric(12, 2), nullable=False),
        "weight": mapped_column(Numeric(10, 3), nullable=False),
        "active": mapped_column(Boolean, nullable=False),
        "verified": mapped_column(Boolean, nullable=False),
        "created_at": mapped_column(DateTime(timezone=True), nullable=False),
        "updated_at": mapped_column(DateTime(timezone=True), nullable=False),
        "extra": mapped_column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    }


def _base() -> type[DeclarativeBase]:
    class Base(DeclarativeBase):
        pass

    return Base


def _nothing() -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


def build(variant: str) -> Model:
    """Declare ``item`` for ``variant`` on a fresh declarative base."""
    if variant == "baseline":
        return _baseline()
    if variant == "auditkeeper":
        return _auditkeeper()
    if variant == "continuum":
        return _continuum()
    if variant == "pgaudit":
        return _pgaudit()
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


def _baseline() -> Model:
    base = _base()
    item_cls = type("Item", (base,), _columns())
    return Model(
        "baseline",
        item_cls,
        create_all=base.metadata.create_all,
        install=lambda factory: None,
        actor=_nothing,
    )


def _auditkeeper() -> Model:
    import auditkeeper

    base = _base()
    keeper = auditkeeper.Auditkeeper(base.metadata, actions=Action, entity_types=EntityType)
    item_cls = auditkeeper.audited(
        entity_type=EntityType.ITEM,
        create=Action.ITEM_CREATE,
        update=Action.ITEM_UPDATE,
        delete=Action.ITEM_DELETE,
    )(type("Item", (base,), _columns()))

    def create_all(engine: Engine) -> None:
        base.metadata.create_all(engine)
        keeper.create_all(engine)

    return Model(
        "auditkeeper",
        item_cls,
        create_all=create_all,
        install=keeper.install,
        actor=lambda: auditkeeper.acting_as(ACTOR_ID, email=ACTOR_EMAIL),
        audit_tables=(keeper.table.name,),
        extra={"keeper": keeper},
    )


def _continuum() -> Model:
    from sqlalchemy_continuum import make_versioned

    make_versioned(user_cls=None)  # before the model is declared
    base = _base()
    item_cls = type("Item", (base,), {**_columns(), "__versioned__": {}})
    configure_mappers()  # builds item_version and transaction
    return Model(
        "continuum",
        item_cls,
        create_all=base.metadata.create_all,
        install=lambda factory: None,  # make_versioned listens on every Session
        actor=_nothing,
        audit_tables=("item_version", "transaction"),
    )


def _pgaudit() -> Model:
    import sqlalchemy as sa
    from postgresql_audit import versioning_manager

    # Workaround 1: audit_table('item') arrives as character varying with psycopg 3 and
    # no function matches; the table name must be cast to regclass explicitly.
    def audit_table_query(table: sa.Table, exclude_columns: Any = None) -> Any:
        return text(f"SELECT audit_table('{table.name}'::regclass)")

    versioning_manager.build_audit_table_query = audit_table_query
    base = _base()
    versioning_manager.init(base)
    item_cls = type("Item", (base,), {**_columns(), "__versioned__": {}})
    configure_mappers()

    def create_all(engine: Engine) -> None:
        # Workaround 2: activity's after_create hook defines audit_table(), which item's
        # hook calls; create_all would otherwise create item first.
        first = [
            versioning_manager.transaction_cls.__table__,
            versioning_manager.activity_cls.__table__,
        ]
        base.metadata.create_all(engine, tables=first)
        base.metadata.create_all(engine)

    def install(factory: sessionmaker[Any]) -> None:
        # Its before_flush hook listens on every Session; values name the actor, and
        # without them no transaction row is written at all.
        versioning_manager.values = {"actor_id": str(ACTOR_ID)}

    return Model(
        "pgaudit",
        item_cls,
        create_all=create_all,
        install=install,
        actor=_nothing,
        audit_tables=("activity", "transaction"),
    )


# -- data ---------------------------------------------------------------------------

_WORDS = [
    *("audit", "ledger", "invoice", "order", "customer", "shipment", "warehouse", "record"),
    *("account", "balance", "payment", "refund", "discount", "region", "contract"),
    *("partner", "supplier", "product", "catalogue", "quarter", "review", "approval"),
    *("status", "delivery", "schedule", "inventory", "report"),
]
_CITIES = ["Lisbon", "Oslo", "Dublin", "Prague", "Vienna", "Madrid", "Turin", "Ghent"]
_STATUSES = ["new", "active", "paused", "closed"]
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def item_row(i: int) -> dict[str, Any]:
    """The values of the ``i``-th item (the same for every variant and run)."""
    rng = random.Random(i)
    return {
        "name": f"Customer {i:06d} {rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
        "email": f"customer{i:06d}@{rng.choice(_WORDS)}.example.com",
        "status": _STATUSES[i % len(_STATUSES)],
        "city": rng.choice(_CITIES),
        "code": f"ITM-{i:08d}-{rng.randrange(16**6):06x}",
        "description": _text(rng, 560),
        "quantity": rng.randrange(1000),
        "priority": rng.randrange(10),
        "price": decimal.Decimal(rng.randrange(100, 10_000_000)).scaleb(-2),
        "weight": decimal.Decimal(rng.randrange(1, 1_000_000)).scaleb(-3),
        "active": rng.random() < 0.8,
        "verified": rng.random() < 0.5,
        "created_at": _EPOCH + dt.timedelta(seconds=i * 37),
        "updated_at": _EPOCH + dt.timedelta(seconds=i * 37),
        "extra": {
            "source": rng.choice(_WORDS),
            "tags": [rng.choice(_WORDS) for _ in range(4)],
            "score": round(rng.random() * 100, 3),
            "flags": {"vip": rng.random() < 0.1, "newsletter": rng.random() < 0.5},
            "notes": _text(rng, 110),
        },
    }


def updated_values(i: int) -> dict[str, Any]:
    """The three columns workloads (b) and (d) change: text, int and timestamptz."""
    rng = random.Random(1_000_000 + i)
    return {
        "description": _text(rng, 560),
        "quantity": 1000 + rng.randrange(1000),  # never its old value (< 1000)
        "updated_at": _EPOCH + dt.timedelta(days=30, seconds=i * 11),
    }
