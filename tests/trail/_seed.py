"""The models of the Shesha entity-history seed, built fresh for each test.

Attribute names follow the seed (``IsActive``, ``SchoolInformationStatus``) so that the
default texts read exactly as the seed prints them; relation plumbing is pythonic.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, ForeignKey, String
from sqlalchemy import Enum as SqlEnum
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
    EventCreator,
    GenericChildTrail,
    ManyToManyTrail,
    ManyToOneTrail,
    StopTrail,
    audit_column,
    audited,
)


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    EVENT = 4


class Kind(enum.IntEnum):
    USER = 1
    PERSON = 2
    EMPLOYEE = 3
    SHA_ROLE = 4
    SHA_ROLE_APPOINTED_PERSON = 5
    PARENT = 6
    SCHOOL_APPLICATION = 7
    COMMENT = 8
    SCHOOL = 9
    DEPARTMENT_USER = 10


class SchoolInformationStatus(enum.IntEnum):
    """The seed's ``RefListSchoolInformationStatus``."""

    Draft = 1
    Submitted = 2
    Approved = 3


class SchoolVerificationOutcome(enum.IntEnum):
    PENDING = 1
    VERIFIED = 2
    DELETED_BY_PARENT = 3


class SchoolInformationStatusEventCreator(EventCreator):
    """The seed's creator, line for line."""

    def create_event(self, change):
        return self.event(
            "School information status changed",
            "Submitted for verification"
            if change.new_value == SchoolInformationStatus.Submitted
            else "Submitted as final"
            if change.new_value == SchoolInformationStatus.Approved
            else "Not submitted",
        )


def crud(kind: Kind, **options: Any) -> Any:
    return audited(
        entity_type=kind,
        create=Action.CREATE,
        update=Action.UPDATE,
        delete=Action.DELETE,
        **options,
    )


@dataclass
class Seed:
    Base: type[DeclarativeBase]
    keeper: auditkeeper.Auditkeeper
    engine: Engine
    Session: sessionmaker[Session]
    User: Any
    Person: Any
    Employee: Any
    ShaRole: Any
    ShaRoleAppointedPerson: Any
    Parent: Any
    SchoolApplication: Any
    Comment: Any
    School: Any
    DepartmentUser: Any

    def trail(self, cls: Any, key: Any, **options: Any) -> list[tuple[str, str]]:
        """``(Type of event, Description)`` of each row, oldest first."""
        options.setdefault("sort", "date")
        with self.Session() as session:
            return [
                (r.event, r.description) for r in auditkeeper.trail(session, cls, key, **options)
            ]

    def rows(self, cls: Any, key: Any, **options: Any) -> list[auditkeeper.TrailRow]:
        options.setdefault("sort", "date")
        with self.Session() as session:
            return list(auditkeeper.trail(session, cls, key, **options))


def build_seed(engine: Engine, **keeper_options: Any) -> Seed:
    class Base(DeclarativeBase):
        pass

    keeper_options.setdefault("event_action", Action.EVENT)
    keeper = auditkeeper.Auditkeeper(
        Base.metadata, actions=Action, entity_types=Kind, users="users.id", **keeper_options
    )

    @crud(Kind.USER, full_name="Shesha.Authorization.Users.User", name_field="FullName")
    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        FullName: Mapped[str] = mapped_column(default="")
        Email: Mapped[str | None]
        IsActive: Mapped[bool] = mapped_column(default=True)
        IsLocked: Mapped[bool] = mapped_column(default=False)
        OtpEnabled: Mapped[bool] = mapped_column(
            default=False,
            info=audit_column(
                true_text="SMS Based One-Time-Passwords enabled",
                false_text="SMS Based One-Time-Passwords disabled",
            ),
        )
        Password: Mapped[str | None]

    @crud(
        Kind.PERSON,
        trail=[ManyToManyTrail("ShaRoleAppointedPerson", "role", display_name="Role Appointment")],
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
        Kind.SHA_ROLE,
        trail=[ManyToManyTrail("ShaRoleAppointedPerson", "person", display_name="Member")],
    )
    class ShaRole(Base):
        __tablename__ = "roles"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    @crud(Kind.SHA_ROLE_APPOINTED_PERSON)
    class ShaRoleAppointedPerson(Base):
        __tablename__ = "role_appointed_persons"
        id: Mapped[int] = mapped_column(primary_key=True)
        person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
        role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
        person: Mapped[Person] = relationship()
        role: Mapped[ShaRole] = relationship()

    @crud(Kind.PARENT)
    class Parent(Base):
        __tablename__ = "parents"
        id: Mapped[int] = mapped_column(primary_key=True)
        full_name: Mapped[str]
        phone: Mapped[str | None]

    @crud(Kind.COMMENT)
    class Comment(Base):
        __tablename__ = "comments"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[str] = mapped_column(String(64))
        owner_type: Mapped[str] = mapped_column(String(200))
        text: Mapped[str]

    @crud(
        Kind.SCHOOL_APPLICATION,
        trail=[
            ChildTrail("submitted_by", display_name="Parent"),
            GenericChildTrail(Comment, name_field="text"),
            StopTrail("SchoolVerificationOutcome", "Deleted By Parent"),
        ],
    )
    class SchoolApplication(Base):
        __tablename__ = "school_applications"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
        learner: Mapped[str]
        SchoolInformationStatus: Mapped[SchoolInformationStatus | None] = mapped_column(
            SqlEnum(SchoolInformationStatus),
            info=audit_column(event_creator=SchoolInformationStatusEventCreator),
        )
        SchoolVerificationOutcome: Mapped[SchoolVerificationOutcome | None] = mapped_column(
            SqlEnum(SchoolVerificationOutcome)
        )
        submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("parents.id"))
        submitted_by: Mapped[Parent | None] = relationship()

    @crud(Kind.SCHOOL, trail=[ManyToOneTrail("DepartmentUser", display_name="School user")])
    class School(Base):
        __tablename__ = "schools"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    @crud(Kind.DEPARTMENT_USER)
    class DepartmentUser(Base):
        __tablename__ = "department_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        full_name: Mapped[str]
        title: Mapped[str | None]
        school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"))
        school: Mapped[School | None] = relationship()

    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    return Seed(
        Base=Base,
        keeper=keeper,
        engine=engine,
        Session=factory,
        User=User,
        Person=Person,
        Employee=Employee,
        ShaRole=ShaRole,
        ShaRoleAppointedPerson=ShaRoleAppointedPerson,
        Parent=Parent,
        SchoolApplication=SchoolApplication,
        Comment=Comment,
        School=School,
        DepartmentUser=DepartmentUser,
    )
