"""Declarations next to the model, and the errors bad ones give."""

from __future__ import annotations

import enum
import uuid

import pytest
from sqlalchemy import ForeignKey, Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper
from auditkeeper.capture.declaration import is_secret_name


class Act(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    RENAME = 4


class Kind(enum.IntEnum):
    ITEM = 1
    PAIR = 2


class Other(enum.IntEnum):
    STRAY = 9


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("password_hash", True),
        ("passwordHash", True),
        ("api_key", True),
        ("apiKey", True),
        ("refresh_token", True),
        ("otp_secret", True),
        ("totp", True),
        ("private_key", True),
        ("name", False),
        ("tokenizer_version", False),
        ("keyboard_layout", False),
        ("email", False),
        ("spinner", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def build(**audited_options):
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.ITEM, **audited_options)
    class Item(Base):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        otp_enabled: Mapped[bool] = mapped_column(default=False)
        otp_code: Mapped[str | None]
        note: Mapped[str | None] = mapped_column(info=auditkeeper.audit_column(redact=True))
        session_token: Mapped[str | None] = mapped_column(
            info=auditkeeper.audit_column(redact=False)
        )

    return Base, keeper, Item


def run(database, base, keeper, work):
    engine = database.engine()
    base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    with factory() as session:
        work(session)
    with factory() as session:
        return list(session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)))


def test_secret_defaults_and_overrides(database) -> None:
    base, keeper, item = build(create=Act.CREATE)
    rows = run(
        database,
        base,
        keeper,
        lambda s: (
            s.add(item(name="n", otp_enabled=True, otp_code="123456", note="x", session_token="t")),
            s.commit(),
        ),
    )
    (row,) = rows
    assert row.current == {
        "id": row.number_identifier,
        "name": "n",
        "otp_enabled": True,  # booleans are never secret
        "otp_code": "[redacted]",
        "note": "[redacted]",  # redacted by declaration
        "session_token": "t",  # deny-list overridden on the column
    }


def test_declared_exclude_and_redact(database) -> None:
    base, keeper, item = build(create=Act.CREATE, exclude={"note"}, redact={"name"})

    def work(session):
        session.add(item(name="hidden", note="gone"))
        session.commit()

    (row,) = run(database, base, keeper, work)
    assert "note" not in row.current
    assert row.current["name"] == "[redacted]"


def test_on_change_picks_the_domain_action(database) -> None:
    base, keeper, item = build(
        update=Act.UPDATE, on_change=[auditkeeper.on_change("name", action=Act.RENAME)]
    )

    def work(session):
        thing = item(name="a")
        session.add(thing)
        session.commit()
        thing.name = "b"
        session.commit()
        thing.otp_enabled = True
        session.commit()

    rows = run(database, base, keeper, work)
    assert [r.action for r in rows] == [Act.RENAME, Act.UPDATE]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"create": Other.STRAY}, "not a member of Act"),
        ({"create": Act.CREATE, "exclude": {"nope"}}, "unknown columns \\['nope'\\]"),
        ({"create": Act.CREATE, "redact": {"nope"}}, "unknown columns"),
        (
            {"update": Act.UPDATE, "on_change": [auditkeeper.on_change("nope", action=Act.RENAME)]},
            "not audited",
        ),
    ],
)
def test_bad_declarations_fail_at_first_use(database, options, message) -> None:
    base, keeper, item = build(**options)
    with pytest.raises(auditkeeper.ConfigurationError, match=message):
        run(database, base, keeper, lambda s: (s.add(item(name="x")), s.commit()))


def test_bad_declarations_fail_at_declaration() -> None:
    with pytest.raises(auditkeeper.ConfigurationError, match="declares no action"):
        auditkeeper.audited(entity_type=Kind.ITEM)
    with pytest.raises(auditkeeper.ConfigurationError, match="entity_type must be"):
        auditkeeper.audited(entity_type=1, create=Act.CREATE)  # type: ignore[arg-type]
    with pytest.raises(auditkeeper.ConfigurationError, match="create must be"):
        auditkeeper.audited(entity_type=Kind.ITEM, create=1)  # type: ignore[arg-type]
    with pytest.raises(auditkeeper.ConfigurationError, match="at least one field"):
        auditkeeper.on_change(action=Act.RENAME)
    with pytest.raises(auditkeeper.ConfigurationError, match="IntEnum class"):
        auditkeeper.Auditkeeper(MetaData(), actions=dict, entity_types=Kind)  # type: ignore[arg-type]


def test_class_attribute_form_and_inheritance(database) -> None:
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    class Item(Base):
        __tablename__ = "items"
        __audited__ = auditkeeper.Audited(entity_type=Kind.ITEM, create=Act.CREATE)
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str]
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "item"}

    class Special(Item):
        __tablename__ = "specials"
        id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
        power: Mapped[int]
        __mapper_args__ = {"polymorphic_identity": "special"}

    def work(session):
        session.add_all([Item(), Special(power=9)])
        session.commit()

    rows = sorted(run(database, Base, keeper, work), key=lambda r: r.number_identifier)
    assert [r.current for r in rows] == [
        {"id": rows[0].number_identifier, "kind": "item"},
        {"id": rows[1].number_identifier, "kind": "special", "power": 9},
    ]


def test_two_classes_may_not_share_an_entity_type(database) -> None:
    # A record is its entity type and key: Note 1 and Memo 1 would be one record.
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.ITEM, create=Act.CREATE)
    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)

    @auditkeeper.audited(entity_type=Kind.ITEM, create=Act.CREATE)
    class Memo(Base):
        __tablename__ = "memos"
        id: Mapped[int] = mapped_column(primary_key=True)

    engine = database.engine()
    message = "entity type Kind.ITEM is declared by both (Note and Memo|Memo and Note)"
    # Refused where the capture triggers are made, and again at each use.
    with pytest.raises(auditkeeper.ConfigurationError, match=message):
        Base.metadata.create_all(engine)
    with pytest.raises(auditkeeper.ConfigurationError, match=message):
        keeper.create_all(engine)
    factory = sessionmaker(engine)
    keeper.install(factory)
    with factory() as session, pytest.raises(auditkeeper.ConfigurationError, match=message):
        session.add_all([Note(id=1), Memo(id=1)])
        session.flush()


def test_keys_uuid_string_and_composite(database) -> None:
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.ITEM, create=Act.CREATE, delete=Act.DELETE)
    class ByUuid(Base):
        __tablename__ = "by_uuid"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)

    @auditkeeper.audited(entity_type=Kind.PAIR, create=Act.CREATE, update=Act.UPDATE)
    class Pair(Base):
        __tablename__ = "pairs"
        left: Mapped[str] = mapped_column(String, primary_key=True)
        right: Mapped[int] = mapped_column(Integer, primary_key=True)
        value: Mapped[int] = mapped_column(default=0)

    fixed = uuid.UUID("12345678-1234-5678-1234-567812345678")

    def work(session):
        session.add_all([ByUuid(id=fixed), Pair(left="a,b", right=1), Pair(left="a", right=2)])
        session.commit()
        pair = session.get(Pair, ("a,b", 1))
        pair.value = 5
        session.delete(session.get(ByUuid, fixed))
        session.commit()

    rows = run(database, Base, keeper, work)
    keys = [(r.entity_type, r.number_identifier, r.entity_key) for r in rows]
    assert (Kind.ITEM, None, str(fixed)) in keys
    assert (Kind.PAIR, None, '["a,b",1]') in keys
    assert (Kind.PAIR, None, '["a",2]') in keys
    assert sum(1 for k in keys if k[2] == '["a,b",1]') == 2
    assert sum(1 for k in keys if k[2] == str(fixed)) == 2


def test_install_targets(database) -> None:
    from sqlalchemy.orm import Session, scoped_session

    base, keeper, item = build(create=Act.CREATE)
    engine = database.engine()
    base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine)
    installation = keeper.install(factory)
    with pytest.raises(auditkeeper.ConfigurationError, match="already installed"):
        keeper.install(factory)
    installation.uninstall()
    with factory() as session:  # uninstalled: its flushes log nothing themselves
        session.add(item(name="quiet"))
        session.commit()
    scoped = scoped_session(sessionmaker(engine))
    keeper.install(scoped)
    scoped.add(item(name="scoped"))
    scoped.commit()
    scoped.remove()
    single = Session(engine)
    keeper.install(single)
    single.add(item(name="single"))
    single.commit()
    single.close()
    with pytest.raises(auditkeeper.ConfigurationError, match="install\\(\\) takes"):
        keeper.install(engine.url)  # type: ignore[arg-type]
    with Session(engine) as session:
        logged = {r.current["name"]: r.context for r in session.scalars(select(keeper.Entry))}
    # The capture trigger logs what the uninstalled session's flush did not.
    assert logged.pop("quiet") == {"captured_by": "database trigger"}
    assert logged == {"scoped": None, "single": None}


def test_int_enum_in_an_enum_column_is_stored_by_value(database) -> None:
    from sqlalchemy import Enum as SAEnum

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.ITEM, create=Act.CREATE, update=Act.UPDATE)
    class Ticket(Base):
        __tablename__ = "tickets"
        id: Mapped[int] = mapped_column(primary_key=True)
        level: Mapped[Level] = mapped_column(SAEnum(Level))

    def work(session):
        ticket = Ticket(level=Level.LOW)
        session.add(ticket)
        session.commit()
        ticket.level = Level.HIGH
        session.commit()

    created, updated = run(database, Base, keeper, work)
    assert created.current["level"] == 1
    assert updated.difference == {"level": [1, 2]}


def test_a_session_class_shared_by_two_logs(database) -> None:
    """Installed on the global Session class, each log records only its own classes."""
    from sqlalchemy.orm import Session

    base_a, keeper_a, item_a = build(create=Act.CREATE)

    class Other(enum.IntEnum):
        THING = 7

    class BaseB(DeclarativeBase):
        pass

    keeper_b = auditkeeper.Auditkeeper(
        BaseB.metadata, actions=Act, entity_types=Other, table_name="audit_log_b"
    )

    @auditkeeper.audited(entity_type=Other.THING, create=Act.CREATE)
    class Thing(BaseB):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)

    engine = database.engine()
    base_a.metadata.create_all(engine)
    keeper_a.create_all(engine)
    BaseB.metadata.create_all(engine)
    keeper_b.create_all(engine)

    class AppSession(Session):
        pass

    keeper_a.install(AppSession)
    keeper_b.install(AppSession)
    with AppSession(engine) as session:
        session.add_all([item_a(name="a"), Thing()])
        session.commit()
        entries_a = session.scalars(select(keeper_a.Entry)).all()
        entries_b = session.scalars(select(keeper_b.Entry)).all()
    assert [e.entity_type for e in entries_a] == [Kind.ITEM]
    assert [e.entity_type for e in entries_b] == [Other.THING]
