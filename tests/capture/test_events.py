"""Custom history events and property-change texts: stored with the entity's change, in
the same flush and the same statement, never lost."""

from __future__ import annotations

import enum

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import (
    ConfigurationError,
    add_history_event,
    add_property_change_comment,
    add_property_change_description,
)
from tests._support import StatementCounter


class Act(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    EVENT = 4
    DEFAULT_EVENT = 5


class Kind(enum.IntEnum):
    MEMBER = 1
    BADGE = 2
    NOTE = 3


def build(database, **keeper_options):
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(
        Base.metadata, actions=Act, entity_types=Kind, **keeper_options
    )

    @auditkeeper.audited(
        entity_type=Kind.MEMBER,
        create=Act.CREATE,
        update=Act.UPDATE,
        delete=Act.DELETE,
        event=Act.EVENT,
        exclude={"notes"},
    )
    class Member(Base):
        __tablename__ = "members"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        is_active: Mapped[bool] = mapped_column("IsActive", default=True)
        notes: Mapped[str | None]

    @auditkeeper.audited(entity_type=Kind.BADGE, create=Act.CREATE, update=Act.UPDATE)
    class Badge(Base):
        __tablename__ = "badges"
        id: Mapped[int] = mapped_column(primary_key=True)

    @auditkeeper.audited(entity_type=Kind.NOTE, create=Act.CREATE)
    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)

    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    return keeper, engine, factory, Member, Badge, Note


def documents(keeper, factory):
    with factory() as session:
        entries = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)).all()
        return [(e.action, e.changed_objects) for e in entries]


def event_doc(name, description):
    return {
        "previous": None,
        "current": None,
        "difference": {},
        "event": {"name": name, "description": description},
    }


def test_texts_join_the_row_of_the_same_flush_in_one_statement(database) -> None:
    keeper, engine, factory, member_cls, _, _ = build(database)
    with factory() as session:
        member = member_cls(name="Ann")
        session.add(member)
        session.commit()
        member.is_active = False
        add_property_change_description(member, "Member inactivated", member_cls.is_active)
        add_property_change_comment(member, "left the club", "IsActive")  # the column name
        add_history_event(member, "Card blocked", "by the front desk")
        with StatementCounter(engine, keeper.table.name) as counter:
            session.commit()
    assert len(counter.statements) == 1
    assert documents(keeper, factory)[1:] == [
        (
            Act.UPDATE,
            {
                "previous": {"id": 1, "name": "Ann", "IsActive": True},
                "current": {"id": 1, "name": "Ann", "IsActive": False},
                "difference": {"IsActive": [True, False]},
                "descriptions": {"IsActive": "Member inactivated"},
                "comments": {"IsActive": "left the club"},
            },
        ),
        (Act.EVENT, event_doc("Card blocked", "by the front desk")),
    ]


def test_an_event_alone_makes_the_next_flush_write_it(database) -> None:
    keeper, _, factory, member_cls, _, _ = build(database)
    with factory() as session:
        member = member_cls(name="Ann")
        session.add(member)
        session.commit()
        add_history_event(member, "Password reset")
        assert member in session.dirty
        session.commit()
        session.commit()  # written once, then forgotten
    assert documents(keeper, factory)[1:] == [(Act.EVENT, event_doc(None, "Password reset"))]


def test_texts_of_properties_that_did_not_change_become_events(database) -> None:
    keeper, _, factory, member_cls, _, _ = build(database)
    with factory() as session:
        member = member_cls(name="Ann")
        add_property_change_description(member, "named at creation", "name")  # a Created row
        session.add(member)
        session.commit()
        add_property_change_comment(member, "checked", "is_active")  # did not change
        add_property_change_description(member, "private", "notes")  # not audited
        member.notes = "x"
        session.commit()
    assert documents(keeper, factory)[1:] == [
        (Act.EVENT, event_doc(None, "named at creation")),
        (Act.EVENT, event_doc(None, "checked")),
        (Act.EVENT, event_doc(None, "private")),
    ]


def test_an_object_outside_any_session_keeps_its_annotations(database) -> None:
    keeper, _, factory, member_cls, _, _ = build(database)
    member = member_cls(name="Ann")
    add_history_event(member, "Imported")
    with factory() as session:
        session.add(member)
        session.commit()
    assert [action for action, _ in documents(keeper, factory)] == [Act.CREATE, Act.EVENT]


def test_a_rolled_back_event_is_not_kept(database) -> None:
    keeper, _, factory, member_cls, _, _ = build(database)
    with factory() as session:
        member = member_cls(name="Ann")
        session.add(member)
        session.commit()
        add_history_event(member, "Never happened")
        session.flush()
        session.rollback()
    assert [action for action, _ in documents(keeper, factory)] == [Act.CREATE]


def test_an_event_on_a_deleted_object_names_its_stored_key(database) -> None:
    keeper, _, factory, member_cls, _, _ = build(database)
    with factory() as session:
        member = member_cls(name="Ann")
        session.add(member)
        session.commit()
        session.delete(member)
        add_history_event(member, "Removed", "GDPR request")
        session.commit()
        entries = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)).all()
    assert [(e.action, e.number_identifier) for e in entries] == [
        (Act.CREATE, 1),
        (Act.DELETE, 1),
        (Act.EVENT, 1),
    ]


def test_the_event_action(database) -> None:
    keeper, _, factory, member_cls, badge_cls, note_cls = build(
        database, event_action=Act.DEFAULT_EVENT
    )
    with factory() as session:
        member, badge, note = member_cls(name="Ann"), badge_cls(), note_cls()
        session.add_all([member, badge, note])
        session.commit()
        for entity in (member, badge, note):
            add_history_event(entity, "ping")
        session.commit()
    # The class's own event=, else the Auditkeeper's event_action.
    assert [a for a, d in documents(keeper, factory) if "event" in d] == [
        Act.EVENT,
        Act.DEFAULT_EVENT,
        Act.DEFAULT_EVENT,
    ]


def test_without_an_event_action_the_update_action_or_an_error(database) -> None:
    keeper, _, factory, _, badge_cls, note_cls = build(database)
    with factory() as session:
        badge = badge_cls()
        session.add(badge)
        session.commit()
        add_history_event(badge, "ping")
        session.commit()
        with pytest.raises(ConfigurationError, match="Note cannot record history events"):
            add_history_event(note_cls(), "ping")
    assert documents(keeper, factory)[-1][0] == Act.UPDATE


def test_bad_calls(database) -> None:
    _, _, _, member_cls, badge_cls, _ = build(database)

    class NotMapped:
        pass

    member = member_cls(name="Ann")
    with pytest.raises(ConfigurationError, match="Member has no property 'colour'; its prop"):
        add_property_change_description(member, "x", "colour")
    with pytest.raises(ConfigurationError, match="is not a property of Member"):
        add_property_change_comment(member, "x", badge_cls.id)
    with pytest.raises(ConfigurationError, match="takes an instance of a mapped class"):
        add_history_event(NotMapped(), "x")
    with pytest.raises(TypeError, match="the description must be a str"):
        add_history_event(member, "name", 42)
    with pytest.raises(ConfigurationError, match="event_action must be a member of Act"):
        auditkeeper.Auditkeeper(MetaData(), actions=Act, entity_types=Kind, event_action=Kind.NOTE)


def test_a_class_that_is_not_audited(database) -> None:
    class Base(DeclarativeBase):
        pass

    class Plain(Base):
        __tablename__ = "plain"
        id: Mapped[int] = mapped_column(primary_key=True)

    with pytest.raises(ConfigurationError, match="Plain is not audited"):
        add_history_event(Plain(), "x")
