"""Bad trail declarations give clear errors, at declaration or render time, never a
broken trail."""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest
from sqlalchemy import ForeignKey, create_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

import auditkeeper
from auditkeeper import (
    ChildTrail,
    ConfigurationError,
    EventCreator,
    GenericChildTrail,
    ManyToManyTrail,
    ManyToOneTrail,
    StopTrail,
    audit_column,
)


class Act(enum.IntEnum):
    CREATE = 1
    UPDATE = 2


class Kind(enum.IntEnum):
    PERSON = 1
    TEAM = 2
    LINK = 3
    NOTE = 4
    BADGE = 5


def build(team_trail=(), person_column_info=None, team_options=None):
    """A team with members, links and notes; ``team_trail`` is the team's trail options."""

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.PERSON, create=Act.CREATE, update=Act.UPDATE)
    class Person(Base):
        __tablename__ = "persons"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(info=person_column_info or {})
        team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
        buddy_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))

    @auditkeeper.audited(
        entity_type=Kind.TEAM,
        create=Act.CREATE,
        update=Act.UPDATE,
        trail=team_trail,
        **(team_options or {}),
    )
    class Team(Base):
        __tablename__ = "teams"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        lead_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
        lead: Mapped[Any] = relationship("Person", foreign_keys=[lead_id])
        members: Mapped[list[Any]] = relationship("Person", foreign_keys="Person.team_id")

    @auditkeeper.audited(entity_type=Kind.LINK, create=Act.CREATE, update=Act.UPDATE)
    class Link(Base):
        __tablename__ = "links"
        id: Mapped[int] = mapped_column(primary_key=True)
        from_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
        to_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
        person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))

    @auditkeeper.audited(entity_type=Kind.NOTE, create=Act.CREATE, update=Act.UPDATE)
    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int]
        owner_type: Mapped[str]
        body: Mapped[str]

    @auditkeeper.audited(entity_type=Kind.BADGE, create=Act.CREATE, update=Act.UPDATE)
    class Badge(Base):  # a composite key: shown in its own trail, not in another's
        __tablename__ = "badges"
        team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
        code: Mapped[str] = mapped_column(primary_key=True)

    engine = auditkeeper.configure_sqlite(create_engine("sqlite://"))
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine)
    keeper.install(factory)
    return factory, Team, Person


def render_error(**options) -> str:
    factory, team, _ = build(**options)
    with factory() as session, pytest.raises(ConfigurationError) as raised:
        auditkeeper.trail(session, team, 1)
    return str(raised.value)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (StopTrail("colour", "red"), "StopTrail('colour') on Team names 'colour'"),
        (ChildTrail("coach"), "Team has no relationship 'coach'"),
        (ChildTrail("members"), "must be a reference to one record (many-to-one), not onetomany"),
        (
            ChildTrail("lead", audited_fields=["nickname"]),
            "audited_fields names 'nickname', which is neither an audited property of Person",
        ),
        (GenericChildTrail("Note"), ""),  # well-formed: owner_id and owner_type exist
        (
            GenericChildTrail("Note", owner_id_field="parent_id"),
            "owner_id_field='parent_id' is not an audited property of Note",
        ),
        (GenericChildTrail("Nope"), "no mapped class is named 'Nope'"),
        (
            ManyToManyTrail("Link", "person_id"),
            "2 fields of Link reference Team (from_team_id, to_team_id); name one with own_field=",
        ),
        (
            ManyToManyTrail("Link", "name"),
            "related_field='name' is not an audited reference of Link",
        ),
        (
            ManyToOneTrail("Person"),
            "2 fields of Person reference Team (team_id, buddy_team_id); "
            "name one with related_field=",
        ),
        (
            ManyToOneTrail("Note"),
            "no audited field of Note references Team; name it with related_field=",
        ),
        (
            ManyToOneTrail("Badge"),
            "Badge has a composite primary key; a trail shows related records only with a "
            "single-column key",
        ),
    ],
)
def test_bad_related_options_name_the_class_and_property(option, message) -> None:
    if not message:  # a well-formed option: renders
        factory, team, _ = build(team_trail=[option])
        with factory() as session:
            assert list(auditkeeper.trail(session, team, 1)) == []
        return
    assert message in render_error(team_trail=[option])


def test_a_good_own_field_resolves_the_ambiguity() -> None:
    factory, team, _ = build(
        team_trail=[ManyToManyTrail("Link", "person_id", own_field="from_team_id")]
    )
    with factory() as session:
        assert list(auditkeeper.trail(session, team, 1)) == []


def test_unknown_name_field() -> None:
    message = render_error(team_trail=[GenericChildTrail("Note", name_field="title")])
    assert "name field 'title' is not a property of Note" in message


def test_soft_delete_of_an_unknown_column() -> None:
    assert "soft_delete= on Team names 'deleted'" in render_error(
        team_options={"soft_delete": "deleted"}
    )


def test_boolean_texts_on_a_column_that_is_not_boolean() -> None:
    factory, _, person = build(
        person_column_info=audit_column(true_text="yes", false_text="no"),
    )
    with (
        factory() as session,
        pytest.raises(ConfigurationError, match=r"Person\.name needs a Boolean"),
    ):
        auditkeeper.trail(session, person, 1)


def test_declaration_errors() -> None:
    with pytest.raises(ConfigurationError, match="needs both texts"):
        audit_column(true_text="on")
    with pytest.raises(ConfigurationError, match=r"must subclass auditkeeper\.EventCreator"):
        audit_column(event_creator=int)
    with pytest.raises(ConfigurationError, match="does not override create_event"):
        audit_column(event_creator=EventCreator)
    with pytest.raises(ConfigurationError, match="not both"):
        audit_column(true_text="a", false_text="b", event_creator=lambda change: ("a", "b"))
    with pytest.raises(ConfigurationError, match="audited_fields must be a list of names"):
        ChildTrail("lead", audited_fields="name")
    with pytest.raises(ConfigurationError, match=re.escape("trail= of entity type")):
        auditkeeper.audited(entity_type=Kind.TEAM, create=Act.CREATE, trail=["lead"])
    with pytest.raises(ConfigurationError, match="event must be a member"):
        auditkeeper.audited(entity_type=Kind.TEAM, create=Act.CREATE, event=3)


class Raising(EventCreator):
    def create_event(self, change):
        raise KeyError(change.new_value)


class WrongShape(EventCreator):
    def create_event(self, change):
        return "just a text"


@pytest.mark.parametrize(
    ("creator", "message"),
    [
        (Raising, "the event creator Raising of Person.name raised KeyError('Bo')"),
        (WrongShape, "returned 'just a text'; it must return (event name, description)"),
    ],
)
def test_creator_errors_at_render_time(creator, message) -> None:
    factory, _, person = build(person_column_info=audit_column(event_creator=creator))
    with factory() as session:
        someone = person(name="Al")
        session.add(someone)
        session.commit()
        someone.name = "Bo"
        session.commit()  # writing works: the creator runs when the trail is rendered
        with pytest.raises(ConfigurationError) as raised:
            auditkeeper.trail(session, person, someone.id)
    assert message in str(raised.value)


def test_a_class_that_is_not_audited() -> None:
    class Base(DeclarativeBase):
        pass

    auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    class Plain(Base):
        __tablename__ = "plain"
        id: Mapped[int] = mapped_column(primary_key=True)

    with (
        Session(create_engine("sqlite://")) as session,
        pytest.raises(ConfigurationError, match="Plain is not audited"),
    ):
        auditkeeper.trail(session, Plain, 1)


def test_no_audit_log_on_the_class_metadata() -> None:
    class Base(DeclarativeBase):
        pass

    @auditkeeper.audited(entity_type=Kind.TEAM, create=Act.CREATE)
    class Lonely(Base):
        __tablename__ = "lonely"
        id: Mapped[int] = mapped_column(primary_key=True)

    with (
        Session(create_engine("sqlite://")) as session,
        pytest.raises(
            ConfigurationError,
            match="no Auditkeeper was built on the metadata of Lonely: pass keeper=",
        ),
    ):
        auditkeeper.trail(session, Lonely, 1)


def test_bad_sort_and_paging() -> None:
    factory, team, _ = build()
    with factory() as session:
        with pytest.raises(ConfigurationError, match="sort='colour' is not one of date"):
            auditkeeper.trail(session, team, 1, sort="colour")
        with pytest.raises(ValueError, match="must not be negative"):
            auditkeeper.trail(session, team, 1, skip=-1)
