"""Many-to-many links through a plain association table are changes of both sides."""

from __future__ import annotations

import enum

import pytest
from sqlalchemy import Column, ForeignKey, Table, select, text
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

import auditkeeper


class Action(enum.IntEnum):
    MEMBER_CREATE = 1
    MEMBER_UPDATE = 2
    ROLE_CREATE = 3
    ROLE_UPDATE = 4
    MEMBER_ROLES_CHANGED = 5


class Kind(enum.IntEnum):
    MEMBER = 1
    ROLE = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)

appointments = Table(
    "appointments",
    Base.metadata,
    Column("member_id", ForeignKey("members.id"), primary_key=True),
    Column("role_id", ForeignKey("roles.id"), primary_key=True),
)


@auditkeeper.audited(
    entity_type=Kind.MEMBER,
    create=Action.MEMBER_CREATE,
    update=Action.MEMBER_UPDATE,
    on_change=[auditkeeper.on_change("roles", action=Action.MEMBER_ROLES_CHANGED)],
)
class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    roles: Mapped[list[Role]] = relationship(secondary=appointments, back_populates="members")


@auditkeeper.audited(entity_type=Kind.ROLE, create=Action.ROLE_CREATE, update=Action.ROLE_UPDATE)
class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    members: Mapped[list[Member]] = relationship(secondary=appointments, back_populates="roles")


@pytest.fixture
def setup(database):
    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    installation = keeper.install(factory)
    yield engine, factory
    installation.uninstall()


def rows(engine) -> list:
    with Session(engine) as session:
        return list(session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)))


def test_links_from_either_side_are_logged_on_both(setup, database) -> None:
    """Whichever side the application changed, and whether or not the other side's
    collection was loaded, both records get their row."""
    engine, factory = setup
    with factory() as session:
        ann, admin, editor = Member(name="Ann"), Role(title="admin"), Role(title="editor")
        session.add_all([ann, admin, editor])
        session.commit()
        ann.roles.append(admin)  # from the member's side; admin.members is not loaded
        session.commit()
        editor.members.append(ann)  # from the role's side
        session.commit()
        ann.roles.remove(admin)
        session.commit()
    logged = rows(engine)[3:]  # after the three creations
    by_commit: dict[object, set[tuple[str, int, str]]] = {}
    for r in logged:
        by_commit.setdefault(r.transaction_id, set()).add(
            (Kind(r.entity_type).name, r.number_identifier, repr(r.difference))
        )
    both = sorted([admin.id, editor.id])
    expected = [
        {
            ("MEMBER", ann.id, repr({"roles": [[], [admin.id]]})),
            ("ROLE", admin.id, repr({"members": [[], [ann.id]]})),
        },
        {
            ("MEMBER", ann.id, repr({"roles": [[admin.id], both]})),
            ("ROLE", editor.id, repr({"members": [[], [ann.id]]})),
        },
        {
            ("MEMBER", ann.id, repr({"roles": [both, [editor.id]]})),
            ("ROLE", admin.id, repr({"members": [[ann.id], []]})),
        },
    ]
    assert list(by_commit.values()) == expected
    assert {r.action for r in logged if r.entity_type == Kind.MEMBER} == {
        Action.MEMBER_ROLES_CHANGED
    }


def test_the_other_side_keeps_its_existing_links(setup, database) -> None:
    engine, factory = setup
    with factory() as session:
        ann, bo, admin = Member(name="Ann"), Member(name="Bo"), Role(title="admin")
        session.add_all([ann, bo, admin])
        session.commit()
        ann.roles.append(admin)
        session.commit()
    with factory() as session:  # a new session: admin.members is not loaded here
        bo = session.get(Member, bo.id)
        bo.roles.append(session.get(Role, admin.id))
        session.commit()
    role_rows = [r for r in rows(engine) if r.entity_type == Kind.ROLE][1:]
    assert [r.difference for r in role_rows] == [
        {"members": [[], [ann.id]]},
        {"members": [[ann.id], sorted([ann.id, bo.id])]},
    ]


def test_both_sides_when_both_collections_are_loaded(setup, database) -> None:
    engine, factory = setup
    with factory() as session:
        ann, admin = Member(name="Ann"), Role(title="admin")
        session.add_all([ann, admin])
        session.commit()
        assert ann.roles == [] and admin.members == []  # both loaded
        ann.roles.append(admin)
        session.commit()
    logged = rows(engine)[2:]
    assert sorted((Kind(r.entity_type).name, r.difference) for r in logged) == [
        ("MEMBER", {"roles": [[], [admin.id]]}),
        ("ROLE", {"members": [[], [ann.id]]}),
    ]


def test_links_made_with_a_new_record(setup, database) -> None:
    engine, factory = setup
    with factory() as session:
        role = Role(title="viewer")
        member = Member(name="Bo", roles=[role])
        session.add(member)
        session.commit()
    created = {Kind(r.entity_type).name: r for r in rows(engine)}
    assert created["MEMBER"].action == Action.MEMBER_CREATE
    assert created["MEMBER"].difference["roles"] == [[], [role.id]]
    assert created["ROLE"].difference["members"] == [[], [member.id]]


def test_a_change_of_columns_and_links_is_one_row(setup, database) -> None:
    engine, factory = setup
    with factory() as session:
        member, role = Member(name="Cy"), Role(title="ops")
        session.add_all([member, role])
        session.commit()
        assert member.roles == []  # loaded first: loading would autoflush the name alone
        member.name = "Cyd"
        member.roles.append(role)
        session.commit()
    member_rows = [r for r in rows(engine) if r.entity_type == Kind.MEMBER]
    assert member_rows[-1].difference == {"name": ["Cy", "Cyd"], "roles": [[], [role.id]]}


def test_direct_association_writes_are_logged_on_both_sides(setup, database) -> None:
    engine, factory = setup
    with factory() as session:
        session.add_all([Member(id=1, name="Di"), Role(id=1, title="a"), Role(id=2, title="b")])
        session.commit()
    with auditkeeper.acting_as(9, email="dba@example.com"), factory() as session:
        session.execute(text("INSERT INTO appointments VALUES (1, 1), (1, 2)"))
        session.commit()
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM appointments WHERE role_id = 1"))
    logged = [r for r in rows(engine) if r.action not in (Action.MEMBER_CREATE, Action.ROLE_CREATE)]
    member_rows = [r for r in logged if r.entity_type == Kind.MEMBER]
    role_rows = [r for r in logged if r.entity_type == Kind.ROLE]
    if database.dialect == "postgresql":  # at commit: the links then, less or plus this one
        added = [{"roles": [[2], [1, 2]]}, {"roles": [[1], [1, 2]]}]
    else:  # SQLite's triggers run at once: the links as they were
        added = [{"roles": [[], [1]]}, {"roles": [[1], [1, 2]]}]
    assert [r.difference for r in member_rows] == [*added, {"roles": [[1, 2], [2]]}]
    assert {r.action for r in member_rows} == {Action.MEMBER_ROLES_CHANGED}
    assert sorted((r.number_identifier, r.action, str(r.difference)) for r in role_rows) == [
        (1, Action.ROLE_UPDATE, str({"members": [[1], []]})),
        (1, Action.ROLE_UPDATE, str({"members": [[], [1]]})),
        (2, Action.ROLE_UPDATE, str({"members": [[], [1]]})),
    ]
    assert member_rows[0].current == {"id": 1, "name": "Di"}
    assert {r.user_email for r in logged[:4]} == {"dba@example.com"}
    assert {r.user_email for r in logged[4:]} == {None}
