"""Every example of the Shesha entity-history seed, word for word where it gives the text.

Each test names the seed's example it reproduces. Trails are read oldest first here
(``sort="date"``); ``trail()`` itself lists newest first.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import Enum as SqlEnum
from sqlalchemy import select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import (
    EntityHistoryItem,
    add_history_event,
    add_property_change_comment,
    add_property_change_description,
)
from tests._support import POSTGRES_ONLY
from tests.trail._seed import (
    Action,
    SchoolInformationStatus,
    SchoolVerificationOutcome,
    Seed,
)

# -- Audit custom events -------------------------------------------------------------------


def test_add_history_event_with_a_description(seed: Seed) -> None:
    """user.Password = newPassword; user.AddHistoryEvent("Password reset");"""
    with seed.Session() as session:
        user = seed.User(FullName="Jane Doe", Password="old")
        session.add(user)
        session.commit()
        user.Password = "new password"
        add_history_event(user, "Password reset")
        session.commit()
    assert seed.trail(seed.User, user.id) == [
        ("Created", ""),
        ("Updated", '"Password" was changed'),
        ("Event", "Password reset"),
    ]


def test_add_history_event_with_a_name_and_a_description(seed: Seed) -> None:
    """user.AddHistoryEvent("Password reset", "Password reset by Administrator");"""
    with seed.Session() as session:
        user = seed.User(FullName="Jane Doe", Password="old")
        session.add(user)
        session.commit()
        user.Password = "new password"
        add_history_event(user, "Password reset", "Password reset by Administrator")
        session.commit()
    assert seed.trail(seed.User, user.id)[-1] == (
        "Password reset",
        "Password reset by Administrator",
    )


def test_property_change_description_by_name_and_by_attribute(seed: Seed) -> None:
    """user.AddPropertyChangeDescription("User inactivated", "IsActive") / p => p.IsActive:
    shown as User inactivated instead of "IsActive" was changed from "true" to "false"."""
    with seed.Session() as session:
        plain, by_name, by_attribute = (seed.User(FullName=n) for n in ("A", "B", "C"))
        session.add_all([plain, by_name, by_attribute])
        session.commit()
        plain.IsActive = False
        by_name.IsActive = False
        add_property_change_description(by_name, "User inactivated", "IsActive")
        by_attribute.IsActive = False
        add_property_change_description(by_attribute, "User inactivated", seed.User.IsActive)
        session.commit()
    assert seed.trail(seed.User, plain.id)[-1] == (
        "Updated",
        '"IsActive" was changed from "true" to "false"',
    )
    assert seed.trail(seed.User, by_name.id)[-1] == ("Updated", "User inactivated")
    assert seed.trail(seed.User, by_attribute.id)[-1] == ("Updated", "User inactivated")


def test_property_change_comment_by_name_and_by_attribute(seed: Seed) -> None:
    """user.AddPropertyChangeComment("User inactivated", "IsActive"): shown as
    "IsActive" was changed from "true" to "false" (User inactivated)."""
    with seed.Session() as session:
        by_name, by_attribute = seed.User(FullName="A"), seed.User(FullName="B")
        session.add_all([by_name, by_attribute])
        session.commit()
        by_name.IsActive = False
        add_property_change_comment(by_name, "User inactivated", "IsActive")
        by_attribute.IsActive = False
        add_property_change_comment(by_attribute, "User inactivated", seed.User.IsActive)
        session.commit()
    expected = ("Updated", '"IsActive" was changed from "true" to "false" (User inactivated)')
    assert seed.trail(seed.User, by_name.id)[-1] == expected
    assert seed.trail(seed.User, by_attribute.id)[-1] == expected


# -- Specific property audit attributes ----------------------------------------------------


def test_audited_boolean_texts(seed: Seed) -> None:
    """[AuditedBoolean("SMS Based One-Time-Passwords enabled", "... disabled")] OtpEnabled."""
    with seed.Session() as session:
        user = seed.User(FullName="Jane")
        session.add(user)
        session.commit()
        user.OtpEnabled = True
        session.commit()
        user.OtpEnabled = False
        session.commit()
    assert seed.trail(seed.User, user.id)[1:] == [
        ("Updated", "SMS Based One-Time-Passwords enabled"),
        ("Updated", "SMS Based One-Time-Passwords disabled"),
    ]


def test_property_change_as_a_custom_event(seed: Seed) -> None:
    """[AuditedAsEvent(typeof(SchoolInformationStatusEventCreator))]: "School information
    status changed: Not submitted / Submitted for verification / Submitted as final"."""
    with seed.Session() as session:
        application = seed.SchoolApplication(learner="Sam")
        session.add(application)
        session.commit()
        for status in SchoolInformationStatus:  # Draft, Submitted, Approved
            application.SchoolInformationStatus = status
            session.commit()
    rows = seed.rows(seed.SchoolApplication, application.id)
    assert [(r.event, r.description) for r in rows] == [
        ("Created", ""),
        ("School information status changed", "Not submitted"),
        ("School information status changed", "Submitted for verification"),
        ("School information status changed", "Submitted as final"),
    ]
    assert rows[1].kind is auditkeeper.RowKind.EVENT


def test_the_texts_the_event_creator_replaces(database) -> None:
    """... instead of "SchoolInformationStatus" was changed from "" to "Draft", from
    "Draft" to "Submitted", from "Submitted" to "Approved"."""

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=_Only)

    @auditkeeper.audited(entity_type=_Only.APPLICATION, update=Action.UPDATE)
    class SchoolApplication(Base):
        __tablename__ = "school_applications"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
        SchoolInformationStatus: Mapped[SchoolInformationStatus | None] = mapped_column(
            SqlEnum(SchoolInformationStatus)
        )

    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    with factory() as session:
        application = SchoolApplication()
        session.add(application)
        session.commit()
        for status in SchoolInformationStatus:
            application.SchoolInformationStatus = status
            session.commit()
        rows = auditkeeper.trail(session, SchoolApplication, application.id, sort="date")
    assert [r.description for r in rows] == [
        '"SchoolInformationStatus" was changed from "" to "Draft"',
        '"SchoolInformationStatus" was changed from "Draft" to "Submitted"',
        '"SchoolInformationStatus" was changed from "Submitted" to "Approved"',
    ]


class _Only(enum.IntEnum):
    APPLICATION = 1


# -- Related and children entities --------------------------------------------------------


def test_display_child_audit_trail(seed: Seed) -> None:
    """[DisplayChildAuditTrail] [Display(Name = "Parent")] SubmittedBy: changes of the
    Parent related through SubmittedBy."""
    with seed.Session() as session:
        parent = seed.Parent(full_name="Pat Parent")
        application = seed.SchoolApplication(learner="Sam", submitted_by=parent)
        session.add(application)
        session.commit()
        parent.phone = "555-0100"
        session.commit()
    assert seed.trail(seed.SchoolApplication, application.id) == [
        ("Created", ""),
        ("Parent added", ""),
        ("Parent updated", '"phone" was changed from "" to "555-0100"'),
    ]


def test_display_generic_entities_audit_trail(seed: Seed) -> None:
    """[DisplayGenericEntitesAuditTrail(typeof(Comment), NameField = "Text")]: events of
    the related comments, named by their text."""
    with seed.Session() as session:
        application = seed.SchoolApplication(learner="Sam")
        session.add(application)
        session.commit()
        comment = seed.Comment(
            owner_id=str(application.id), owner_type="SchoolApplication", text="Call the school"
        )
        session.add(comment)
        session.commit()
        session.delete(comment)
        session.commit()
    assert seed.trail(seed.SchoolApplication, application.id) == [
        ("Created", ""),
        ('"Comment" added', "Call the school"),
        ('"Comment" deleted', "Call the school"),
    ]


def test_display_many_to_many_audit_trail_both_directions(seed: Seed) -> None:
    """[DisplayManyToManyAuditTrail(typeof(ShaRoleAppointedPerson), "Person",
    DisplayName = "Member")] on ShaRole: "Member" added : Full Name of person; and the
    inverse on Person: "Role Appointment" added : Name of role."""
    with seed.Session() as session:
        role = seed.ShaRole(name="Administrators")
        person = seed.Person(full_name="John Smith")
        session.add_all([role, person])
        session.commit()
        appointment = seed.ShaRoleAppointedPerson(role=role, person=person)
        session.add(appointment)
        session.commit()
        session.delete(appointment)
        session.commit()
    assert seed.trail(seed.ShaRole, role.id) == [
        ("Created", ""),
        ('"Member" added', "John Smith"),
        ('"Member" removed', "John Smith"),
    ]
    assert seed.trail(seed.Person, person.id) == [
        ("Created", ""),
        ('"Role Appointment" added', "Administrators"),
        ('"Role Appointment" removed', "Administrators"),
    ]


def test_display_many_to_one_audit_trail(seed: Seed) -> None:
    """[DisplayManyToOneAuditTrail(typeof(DepartmentUser), DisplayName = "School user")]
    on School: "School user" added : Full Name of Department user."""
    with seed.Session() as session:
        school = seed.School(name="Hillside Primary")
        session.add(school)
        session.commit()
        member = seed.DepartmentUser(full_name="Dana Dlamini", school=school)
        session.add(member)
        session.commit()
        member.title = "Principal"
        session.commit()
    assert seed.trail(seed.School, school.id) == [
        ("Created", ""),
        ('"School user" added', "Dana Dlamini"),
        ("Dana Dlamini updated", '"title" was changed from "" to "Principal"'),
    ]


def test_property_change_to_stop_audit_trail(seed: Seed) -> None:
    """[PropertyChangeToStopAuditTrail("SchoolVerificationOutcome", "Deleted By Parent")]:
    records after the change to Deleted By Parent are not displayed."""
    with seed.Session() as session:
        application = seed.SchoolApplication(learner="Sam")
        session.add(application)
        session.commit()
        application.SchoolVerificationOutcome = SchoolVerificationOutcome.DELETED_BY_PARENT
        session.commit()
        application.learner = "Samuel"
        session.commit()
        session.add(
            seed.Comment(owner_id=str(application.id), owner_type="SchoolApplication", text="x")
        )
        session.commit()
    assert seed.trail(seed.SchoolApplication, application.id) == [
        ("Created", ""),
        (
            "Updated",
            '"SchoolVerificationOutcome" was changed from "" to "Deleted By Parent"',
        ),
    ]


# -- SQL stored procedures ----------------------------------------------------------------

USER = "Shesha.Authorization.Users.User"
REASON = "Support ticket #12345: Unlock all users"


def _locked_users(seed: Seed) -> list[int]:
    with seed.Session() as session:
        users = [seed.User(FullName=f"User {n}", IsLocked=n != 2) for n in range(1, 4)]
        session.add_all(users)
        session.commit()
        return [u.id for u in users if u.IsLocked]


def test_procedure_add_entity_history_events_with_property_data(seed: Seed) -> None:
    """Core_AddEntityHistoryEvents with property data: shown as a property change, with
    the optional description 'User unlocked'."""
    locked = _locked_users(seed)
    with seed.Session() as session:
        seed.keeper.add_entity_history_events(
            session,
            [
                EntityHistoryItem(1, pid, USER, "IsLocked", "System.Boolean", "false", "true")
                for pid in locked[:1]
            ]
            + [
                EntityHistoryItem(
                    1, pid, USER, "IsLocked", "System.Boolean", "false", "true", "User unlocked"
                )
                for pid in locked[1:]
            ],
            reason=REASON,
            user_id=1,
        )
        session.commit()
    assert seed.trail(seed.User, locked[0])[-1] == (
        "Updated",
        '"IsLocked" was changed from "true" to "false"',
    )
    assert seed.trail(seed.User, locked[1])[-1] == ("Updated", "User unlocked")


def test_procedure_add_entity_history_events_without_property_data(seed: Seed) -> None:
    """Without property data: displayed as an entity change event (User unlocked)."""
    locked = _locked_users(seed)
    with seed.Session() as session:
        seed.keeper.add_entity_history_events(
            session,
            [
                EntityHistoryItem(1, pid, USER, None, None, None, None, "User unlocked")
                for pid in locked
            ],
            reason=REASON,
            user_id=1,
        )
        session.commit()
    for pid in locked:
        assert seed.trail(seed.User, pid)[-1] == ("User unlocked", "")


def test_procedure_add_single_entity_history_event(seed: Seed) -> None:
    """Core_AddSingleEntityHistoryEvent, with and without property data."""
    user_id = _locked_users(seed)[0]
    with seed.Session() as session:
        for property_data in (("IsLocked", "System.Boolean", "false", "true"), (None,) * 4):
            name, type_name, new, old = property_data
            seed.keeper.add_single_entity_history_event(
                session,
                change_type=1,
                entity_id=user_id,
                entity_type_full_name=USER,
                property_name=name,
                property_type_full_name=type_name,
                new_value=new,
                old_value=old,
                description="User unlocked",
                reason=REASON,
                user_id=1,
            )
        session.commit()
    assert seed.trail(seed.User, user_id)[-2:] == [
        ("Updated", "User unlocked"),
        ("User unlocked", ""),
    ]


@POSTGRES_ONLY
def test_postgresql_procedures_render_like_orm_rows(seed: Seed) -> None:
    """The seed's four SQL examples, run as PostgreSQL functions."""
    locked = _locked_users(seed)
    with seed.engine.begin() as connection:
        for property_data in (
            "'IsLocked', 'System.Boolean', 'false', 'true'",
            "NULL, NULL, NULL, NULL",
        ):
            connection.execute(
                text(
                    "SELECT audit_add_entity_history_events(NULL, :reason, NULL, 1, "
                    "ARRAY(SELECT ROW(1, id, :type, "
                    + property_data
                    + ", 'User unlocked')::audit_entity_history_item "
                    'FROM users WHERE "IsLocked"))'
                ),
                {"reason": REASON, "type": USER},
            )
        connection.execute(
            text(
                "SELECT audit_add_single_entity_history_event(NULL, :reason, NULL, 1, 1, :id, "
                ":type, 'IsLocked', 'System.Boolean', 'false', 'true', NULL)"
            ),
            {"reason": REASON, "type": USER, "id": locked[0]},
        )
    assert seed.trail(seed.User, locked[0])[1:] == [
        ("Updated", "User unlocked"),
        ("User unlocked", ""),
        ("Updated", '"IsLocked" was changed from "true" to "false"'),
    ]
    with seed.Session() as session:
        stored = session.scalars(
            select(seed.keeper.Entry.changed_objects)
            .where(seed.keeper.Entry.number_identifier == locked[0])
            .order_by(seed.keeper.Entry.id)
        ).all()
    assert stored[1]["descriptions"] == {"IsLocked": "User unlocked"}
