"""Related records in a trail: moves between owners, type filters, audited fields."""

from __future__ import annotations

import enum
from types import SimpleNamespace

import pytest
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

import auditkeeper
from auditkeeper import ManyToManyTrail
from tests.trail._seed import Seed


def test_many_to_one_child_that_moves(seed: Seed) -> None:
    with seed.Session() as session:
        first, second = seed.School(name="First"), seed.School(name="Second")
        member = seed.DepartmentUser(full_name="Dana", school=first)
        session.add_all([first, second, member])
        session.commit()
        member.school = second
        session.commit()
        member.title = "Teacher"
        session.commit()
        session.delete(member)
        session.commit()
    assert seed.trail(seed.School, first.id) == [
        ("Created", ""),
        ('"School user" added', "Dana"),
        ('"School user" removed', "Dana"),
    ]
    assert seed.trail(seed.School, second.id) == [
        ("Created", ""),
        ('"School user" added', "Dana"),
        ("Dana updated", '"title" was changed from "" to "Teacher"'),
        ('"School user" removed', "Dana"),
    ]


def test_generic_child_that_moves(seed: Seed) -> None:
    with seed.Session() as session:
        first = seed.SchoolApplication(learner="A")
        second = seed.SchoolApplication(learner="B")
        session.add_all([first, second])
        session.commit()
        comment = seed.Comment(
            owner_id=str(first.id), owner_type="SchoolApplication", text="Wrong file"
        )
        other_type = seed.Comment(owner_id=str(first.id), owner_type="Invoice", text="Not ours")
        session.add_all([comment, other_type])
        session.commit()
        comment.owner_id = str(second.id)
        session.commit()
    assert seed.trail(seed.SchoolApplication, first.id) == [
        ("Created", ""),
        ('"Comment" added', "Wrong file"),
        ('"Comment" removed', "Wrong file"),
    ]
    assert seed.trail(seed.SchoolApplication, second.id) == [
        ("Created", ""),
        ('"Comment" added', "Wrong file"),
    ]


def test_many_to_many_relation_that_changes(seed: Seed) -> None:
    with seed.Session() as session:
        admins, editors = seed.ShaRole(name="Admins"), seed.ShaRole(name="Editors")
        john, jane = seed.Person(full_name="John"), seed.Person(full_name="Jane")
        appointment = seed.ShaRoleAppointedPerson(role=admins, person=john)
        session.add_all([admins, editors, john, jane, appointment])
        session.commit()
        appointment.person = jane  # same role, another person
        session.commit()
        appointment.role = editors  # moves to another role
        session.commit()
    assert seed.trail(seed.ShaRole, admins.id)[1:] == [
        ('"Member" added', "John"),
        ('"Member" removed', "John"),
        ('"Member" added', "Jane"),
        ('"Member" removed', "Jane"),
    ]
    assert seed.trail(seed.ShaRole, editors.id)[1:] == [('"Member" added', "Jane")]
    assert seed.trail(seed.Person, jane.id)[1:] == [
        ('"Role Appointment" added', "Admins"),
        ('"Role Appointment" removed', "Admins"),
        ('"Role Appointment" added', "Editors"),
    ]


def test_stop_value_cuts_related_rows_too(seed: Seed) -> None:
    with seed.Session() as session:
        parent = seed.Parent(full_name="Pat")
        application = seed.SchoolApplication(learner="Sam", submitted_by=parent)
        session.add(application)
        session.commit()
        application.SchoolVerificationOutcome = 3  # Deleted By Parent
        session.commit()
        parent.phone = "555"
        session.commit()
    assert seed.trail(seed.SchoolApplication, application.id)[-1] == (
        "Updated",
        '"SchoolVerificationOutcome" was changed from "" to "Deleted By Parent"',
    )


# -- related types, own-field detection, audited fields ------------------------------------------


class Act(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3


class Kind(enum.IntEnum):
    PERSON = 1
    EMPLOYEE = 2
    ROLE = 3
    APPOINTMENT = 4
    COURSE = 5
    MENTORSHIP = 6


def crud(kind: Kind, **options):
    return auditkeeper.audited(
        entity_type=kind, create=Act.CREATE, update=Act.UPDATE, delete=Act.DELETE, **options
    )


@pytest.fixture
def org(database):
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)

    @crud(
        Kind.PERSON,
        trail=[
            ManyToManyTrail("Mentorship", "course", display_name="Mentored", own_field="mentor"),
        ],
    )
    class Person(Base):
        __tablename__ = "persons"
        id: Mapped[int] = mapped_column(primary_key=True)
        full_name: Mapped[str]
        kind: Mapped[str] = mapped_column(String(20), default="person")
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "person"}

    @crud(Kind.EMPLOYEE)
    class Employee(Person):
        __mapper_args__ = {"polymorphic_identity": "employee"}

    @crud(
        Kind.ROLE,
        trail=[
            ManyToManyTrail("Appointment", "person", display_name="Member"),
            ManyToManyTrail(
                "Appointment",
                "person",
                display_name="Staff",
                related_type="Employee",
                audited_fields=["full_name"],
            ),
            ManyToManyTrail(
                "Appointment",
                "person_id",
                display_name="Anyone",
                any_related_type=True,
                audited_fields=["full_name"],
            ),
        ],
    )
    class Role(Base):
        __tablename__ = "roles"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    @crud(Kind.APPOINTMENT)
    class Appointment(Base):
        __tablename__ = "appointments"
        id: Mapped[int] = mapped_column(primary_key=True)
        person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
        role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
        person: Mapped[Person] = relationship()
        role: Mapped[Role] = relationship()

    @crud(Kind.COURSE)
    class Course(Base):
        __tablename__ = "courses"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    @crud(Kind.MENTORSHIP)
    class Mentorship(Base):
        __tablename__ = "mentorships"
        id: Mapped[int] = mapped_column(primary_key=True)
        mentor_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
        mentee_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
        course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
        mentor: Mapped[Person] = relationship(foreign_keys=[mentor_id])
        mentee: Mapped[Person] = relationship(foreign_keys=[mentee_id])
        course: Mapped[Course] = relationship()

    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    return SimpleNamespace(
        Base=Base,
        keeper=keeper,
        Session=factory,
        Person=Person,
        Employee=Employee,
        Role=Role,
        Appointment=Appointment,
        Course=Course,
        Mentorship=Mentorship,
    )


def test_related_type_and_any_related_type(org) -> None:
    with org.Session() as session:
        role = org.Role(name="Ops")
        pat, eve = org.Person(full_name="Pat"), org.Employee(full_name="Eve")
        session.add_all([role, pat, eve])
        session.commit()
        session.add_all([org.Appointment(role=role, person=p) for p in (pat, eve)])
        session.commit()
        pat.full_name = "Pat P."
        eve.full_name = "Eve E."
        session.commit()
        rows = auditkeeper.trail(session, org.Role, role.id, sort="date")
    shown = [(r.event, r.description) for r in rows]
    assert shown[0] == ("Created", "")
    adds = [s for s in shown if s[0].endswith(" added")]
    assert sorted(adds) == sorted(
        [
            ('"Member" added', "Pat P."),
            ('"Member" added', "Eve E."),
            ('"Staff" added', "Eve E."),
            ('"Anyone" added', "Pat P."),
            ('"Anyone" added', "Eve E."),
        ]
    )
    updates = [s for s in shown if s[0].endswith(" updated")]
    assert sorted(updates) == sorted(
        [
            ('"Staff" updated', '"full_name" was changed from "Eve" to "Eve E."'),
            ('"Anyone" updated', '"full_name" was changed from "Pat" to "Pat P."'),
            ('"Anyone" updated', '"full_name" was changed from "Eve" to "Eve E."'),
        ]
    )


def test_own_field_named_when_several_fields_reference_the_owner(org) -> None:
    with org.Session() as session:
        mentor, mentee = org.Person(full_name="Mo"), org.Person(full_name="Me")
        course = org.Course(name="Chess")
        session.add_all([mentor, mentee, course])
        session.commit()
        session.add(org.Mentorship(mentor=mentor, mentee=mentee, course=course))
        session.commit()
        as_mentor = auditkeeper.trail(session, org.Person, mentor.id, sort="date")
        as_mentee = auditkeeper.trail(session, org.Person, mentee.id, sort="date")
    assert [(r.event, r.description) for r in as_mentor] == [
        ("Created", ""),
        ('"Mentored" added', "Chess"),
    ]
    assert [(r.event, r.description) for r in as_mentee] == [("Created", "")]
