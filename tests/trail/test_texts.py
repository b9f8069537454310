"""Every row of DESIGN.md's "Audit trail: exact texts" table, and how values print."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from types import SimpleNamespace

import pytest
from sqlalchemy import Date, DateTime, ForeignKey, Numeric
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

import auditkeeper
from auditkeeper import EntityHistoryItem, add_history_event
from tests.trail._seed import Seed

# -- the table's rows -------------------------------------------------------------------------


def test_created_updated_deleted(seed: Seed) -> None:
    with seed.Session() as session:
        user = seed.User(FullName="Jane", Email="jane@example.com")
        session.add(user)
        session.commit()
        user.FullName = "Jane Doe"
        user.Email = None
        user.IsActive = False
        session.commit()
        session.delete(user)
        session.commit()
    assert seed.trail(seed.User, user.id) == [
        ("Created", ""),
        (
            "Updated",
            '"FullName" was changed from "Jane" to "Jane Doe"; '
            '"Email" was changed from "jane@example.com" to ""; '
            '"IsActive" was changed from "true" to "false"',
        ),
        ("Deleted", ""),
    ]


def test_a_save_of_nothing_audited_shows_no_row(seed: Seed) -> None:
    with seed.Session() as session:
        user = seed.User(FullName="Jane")
        session.add(user)
        session.commit()
        user.FullName = "Jane"
        session.commit()
    assert seed.trail(seed.User, user.id) == [("Created", "")]


def test_history_events_in_the_same_transaction_or_alone(seed: Seed) -> None:
    with seed.Session() as session:
        user = seed.User(FullName="Jane")
        session.add(user)
        add_history_event(user, "Invited")  # before the first flush: written with it
        session.commit()
        add_history_event(user, "Welcome mail", "Sent to jane@example.com")  # nothing else
        session.commit()
    assert seed.trail(seed.User, user.id) == [
        ("Created", ""),
        ("Event", "Invited"),
        ("Welcome mail", "Sent to jane@example.com"),
    ]


def test_procedure_with_property_without_description_gives_the_default_text(seed: Seed) -> None:
    with seed.Session() as session:
        user = seed.User(FullName="Jane", IsLocked=True)
        session.add(user)
        session.commit()
        seed.keeper.add_entity_history_events(
            session,
            [EntityHistoryItem(1, user.id, "User", "IsLocked", "System.Boolean", "false", "true")],
        )
        seed.keeper.add_entity_history_events(
            session,
            [EntityHistoryItem(1, user.id, "User", None, None, None, None, "User unlocked")],
        )
        session.commit()
    assert seed.trail(seed.User, user.id)[1:] == [
        ("Updated", '"IsLocked" was changed from "true" to "false"'),
        ("User unlocked", ""),
    ]


def test_procedure_rows_inserted_directly_render_like_orm_rows(seed: Seed) -> None:
    """Rows of the stored-document grammar, inserted with the Core table."""
    with seed.Session() as session:
        user = seed.User(FullName="Jane", IsLocked=True)
        session.add(user)
        session.commit()
    now = dt.datetime.now(dt.UTC)
    documents = [
        {
            "previous": None,
            "current": None,
            "difference": {"IsLocked": [True, False]},
            "descriptions": {"IsLocked": "User unlocked"},
        },
        {"previous": None, "current": None, "difference": {"OtpEnabled": [False, True]}},
        {
            "previous": None,
            "current": None,
            "difference": {},
            "event": {"name": "User unlocked", "description": None},
        },
    ]
    with seed.engine.begin() as connection:
        connection.execute(
            seed.keeper.table.insert(),
            [
                {
                    "action": 2,
                    "entity_type": 1,
                    "number_identifier": user.id,
                    "changed_objects": document,
                    "created_at": now + dt.timedelta(seconds=n),
                }
                for n, document in enumerate(documents)
            ],
        )
    assert seed.trail(seed.User, user.id)[1:] == [
        ("Updated", "User unlocked"),
        ("Updated", "SMS Based One-Time-Passwords enabled"),
        ("User unlocked", ""),
    ]


def test_description_and_comment_of_an_unchanged_property_are_shown_as_events(seed: Seed) -> None:
    with seed.Session() as session:
        user = seed.User(FullName="Jane")
        session.add(user)
        session.commit()
        auditkeeper.add_property_change_description(user, "Kept active", "IsActive")
        auditkeeper.add_property_change_comment(user, "Checked by support", seed.User.IsActive)
        session.commit()
    assert seed.trail(seed.User, user.id)[1:] == [
        ("Event", "Kept active"),
        ("Event", "Checked by support"),
    ]


def test_child_added_updated_removed_and_audited_fields(database) -> None:
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=_Act, entity_types=_Kind)

    @_crud(_Kind.PARENT)
    class Parent(Base):
        __tablename__ = "parents"
        id: Mapped[int] = mapped_column(primary_key=True)
        full_name: Mapped[str]
        phone: Mapped[str | None]

    @_crud(
        _Kind.APPLICATION,
        trail=[
            auditkeeper.ChildTrail("submitted_by", display_name="Parent"),
            auditkeeper.ChildTrail(
                "guardian", display_name="Guardian", audited_fields=["phone", "Updated"]
            ),
        ],
    )
    class Application(Base):
        __tablename__ = "applications"
        id: Mapped[int] = mapped_column(primary_key=True)
        submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("parents.id"))
        guardian_id: Mapped[int | None] = mapped_column(ForeignKey("parents.id"))
        submitted_by: Mapped[Parent | None] = relationship(foreign_keys=[submitted_by_id])
        guardian: Mapped[Parent | None] = relationship(foreign_keys=[guardian_id])

    factory = _setup(database, Base, keeper)
    with factory() as session:
        parent, guardian = Parent(full_name="Pat"), Parent(full_name="Gus")
        session.add_all([parent, guardian])
        session.commit()
        application = Application(submitted_by=parent, guardian=guardian)
        session.add(application)
        session.commit()
        parent.phone = "1"
        guardian.phone = "2"
        guardian.full_name = "Gus G."
        session.commit()
        application.submitted_by = None
        session.commit()
        session.delete(parent)
        session.commit()
        rows = auditkeeper.trail(session, Application, application.id, sort="date")
    assert [(r.event, r.description, r.kind.value) for r in rows] == [
        ("Parent added", "", "added"),
        ("Created", "", "created"),
        ("Parent updated", '"phone" was changed from "" to "1"', "updated"),
        ("Guardian updated", '"phone" was changed from "" to "2"', "updated"),
        ("Updated", '"submitted_by_id" was changed from "Pat" to ""', "updated"),
    ]
    # Once it no longer points at the parent, the parent's deletion is not its history.
    with factory() as session:
        application.submitted_by = guardian
        session.add(application)
        session.commit()
        session.delete(guardian)
        application.submitted_by = None
        application.guardian = None
        session.commit()
        rows = auditkeeper.trail(session, Application, application.id, sort="-date", limit=2)
    assert [(r.event, r.description) for r in rows] == [
        ("Parent removed", ""),
        (
            "Updated",
            '"submitted_by_id" was changed from "Gus G." to ""; '
            '"guardian_id" was changed from "Gus G." to ""',
        ),
    ]


def test_soft_delete_shows_deleted_with_what_changed_with_it(database) -> None:
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=_Act, entity_types=_Kind)

    @_crud(_Kind.PARENT, soft_delete="is_deleted")
    class Parent(Base):
        __tablename__ = "parents"
        id: Mapped[int] = mapped_column(primary_key=True)
        full_name: Mapped[str]
        is_deleted: Mapped[bool] = mapped_column(default=False)
        deleted_reason: Mapped[str | None]

    factory = _setup(database, Base, keeper)
    with factory() as session:
        plain, reasoned = Parent(full_name="A"), Parent(full_name="B")
        session.add_all([plain, reasoned])
        session.commit()
        plain.is_deleted = True
        reasoned.is_deleted = True
        reasoned.deleted_reason = "duplicate"
        session.commit()
        plain_rows = auditkeeper.trail(session, Parent, plain.id, sort="date")
        reasoned_rows = auditkeeper.trail(session, Parent, reasoned.id, sort="date")
    assert [(r.event, r.description) for r in plain_rows] == [("Created", ""), ("Deleted", "")]
    assert [(r.event, r.description) for r in reasoned_rows][-1] == (
        "Deleted",
        '"deleted_reason" was changed from "" to "duplicate"',
    )
    assert reasoned_rows[-1].kind is auditkeeper.RowKind.DELETED


# -- values -----------------------------------------------------------------------------------


class _Act(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3


class _Kind(enum.IntEnum):
    PARENT = 1
    APPLICATION = 2
    OWNER = 3
    THING = 4


class Colour(enum.Enum):
    LIGHT_BLUE = "lb"
    DARK_RED = "dr"


class Size(enum.Enum):
    SMALL = 1
    LARGE = 2

    @property
    def label(self) -> str:
        return {1: "Small (S)", 2: "Large (L)"}[self.value]


def _crud(kind: _Kind, **options):
    return auditkeeper.audited(
        entity_type=kind, create=_Act.CREATE, update=_Act.UPDATE, delete=_Act.DELETE, **options
    )


def _setup(database, base, keeper):
    engine = database.engine()
    base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    return factory


@pytest.fixture
def things(database):
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=_Act, entity_types=_Kind)

    class Owner(Base):
        """Not audited: named by its ``name`` column."""

        __tablename__ = "owners"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    @_crud(_Kind.THING)
    class Thing(Base):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str | None] = mapped_column(info=auditkeeper.audit_column(display="Title"))
        due_on: Mapped[dt.date | None] = mapped_column(Date)
        seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
        price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
        count: Mapped[int | None]
        ratio: Mapped[float | None]
        colour: Mapped[Colour | None] = mapped_column(SqlEnum(Colour))
        size: Mapped[Size | None] = mapped_column(SqlEnum(Size))
        owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
        api_token: Mapped[str | None]

    return SimpleNamespace(Owner=Owner, Thing=Thing, Session=_setup(database, Base, keeper))


def test_values_print_as_text(things) -> None:
    with things.Session() as session:
        owner = things.Owner(name="Acme Holdings")
        thing = things.Thing()
        session.add_all([owner, thing])
        session.commit()
        thing.title = "Lamp"
        thing.due_on = dt.date(2024, 2, 29)
        thing.seen_at = dt.datetime(
            2024, 2, 29, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=2))
        )
        thing.price = decimal.Decimal("10.50")
        thing.count = 3
        thing.ratio = 0.25
        thing.colour = Colour.LIGHT_BLUE
        thing.size = Size.LARGE
        thing.owner_id = owner.id
        thing.api_token = "s3cret"
        session.commit()
        rows = auditkeeper.trail(session, things.Thing, thing.id, sort="date")
    assert rows[-1].description.split("; ") == [
        '"Title" was changed from "" to "Lamp"',
        '"due_on" was changed from "" to "2024-02-29"',
        '"seen_at" was changed from "" to "'
        + (
            "2024-02-29T21:59:59+00:00"
            if "+00:00" in rows[-1].description
            else "2024-02-29T23:59:59+02:00"
        )
        + '"',
        '"price" was changed from "" to "10.50"',
        '"count" was changed from "" to "3"',
        '"ratio" was changed from "" to "0.25"',
        '"colour" was changed from "" to "Light Blue"',
        '"size" was changed from "" to "Large (L)"',
        '"owner_id" was changed from "" to "Acme Holdings"',
        '"api_token" was changed',
    ]


def test_a_reference_to_a_record_that_no_longer_exists(things) -> None:
    with things.Session() as session:
        owner = things.Owner(name="Gone Ltd")
        thing = things.Thing()
        session.add_all([owner, thing])
        session.commit()
        thing.owner_id = owner.id
        session.commit()
        thing.owner_id = None
        session.delete(owner)
        session.commit()
        rows = auditkeeper.trail(session, things.Thing, thing.id, sort="date")
    assert rows[-1].description == f'"owner_id" was changed from "Owner {owner.id}" to ""'


# -- the User column ---------------------------------------------------------------------------


def test_user_column(seed: Seed) -> None:
    with seed.Session() as session:
        alice = seed.User(FullName="Alice Adams", Email="alice@example.com")
        bob = seed.User(FullName="Bob Brown", Email="bob@example.com")
        session.add_all([alice, bob])
        session.commit()
        nameless = seed.User(FullName="")
        target = seed.User(FullName="Target")
        session.add_all([nameless, target])
        session.commit()  # a system action
        for actor in (
            auditkeeper.acting_as(alice.id, email="alice@example.com"),
            auditkeeper.acting_as(None, email="gone@example.com"),
            auditkeeper.acting_as(nameless.id),
            auditkeeper.acting_as(
                alice.id,
                email="alice@example.com",
                impersonator_user_id=bob.id,
                impersonator_email="bob@example.com",
            ),
            auditkeeper.acting_as(alice.id, email="alice@example.com", is_impersonated=True),
        ):
            with actor:
                add_history_event(target, "touched")
                session.commit()
    names = seed.rows(seed.User, target.id, user_names=seed.User.FullName)
    assert [r.user for r in names] == [
        "System",
        "Alice Adams",
        "gone@example.com",
        f"User {nameless.id}",
        "Alice Adams (impersonated by Bob Brown)",
        "Alice Adams (impersonated)",
    ]
    assert names[-2].impersonator == "Bob Brown"
    emails = seed.rows(seed.User, target.id)
    assert [r.user for r in emails] == [
        "System",
        "alice@example.com",
        "gone@example.com",
        f"User {nameless.id}",
        "alice@example.com (impersonated by bob@example.com)",
        "alice@example.com (impersonated)",
    ]
    by_function = seed.rows(seed.User, target.id, user_names=lambda ids: {i: f"#{i}" for i in ids})
    assert by_function[1].user == f"#{alice.id}"
