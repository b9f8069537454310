"""Links between records whose keys are not integers: the association table's triggers
write the related keys as the flush does (a UUID dashed, though SQLite stores it as 32
hex digits; text that SQL must quote)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import Column, Engine, ForeignKey, String, Table, Uuid, delete, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import auditkeeper
from tests._support import log_rows, model_fixtures


class Action(enum.IntEnum):
    DEVICE_CREATE = 1
    DEVICE_UPDATE = 2
    GROUP_CREATE = 3
    GROUP_UPDATE = 4


class Kind(enum.IntEnum):
    DEVICE = 1
    GROUP = 2


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
memberships = Table(
    "memberships",
    Base.metadata,
    Column("device_id", ForeignKey("devices.id"), primary_key=True),
    Column("group_code", ForeignKey("device_groups.code"), primary_key=True),
)


@auditkeeper.audited(
    entity_type=Kind.DEVICE, create=Action.DEVICE_CREATE, update=Action.DEVICE_UPDATE
)
class Device(Base):
    __tablename__ = "devices"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    groups: Mapped[list[Group]] = relationship(secondary=memberships, back_populates="devices")


@auditkeeper.audited(entity_type=Kind.GROUP, create=Action.GROUP_CREATE, update=Action.GROUP_UPDATE)
class Group(Base):
    __tablename__ = "device_groups"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    devices: Mapped[list[Device]] = relationship(secondary=memberships, back_populates="groups")


engine, sessions = model_fixtures(Base.metadata, keeper)
PHONE = uuid.UUID("6f1c1e4e-0d9a-4b8e-9a61-2f4f3c0b7d10")


def _links(engine: Engine, kind: Kind) -> list[tuple[Any, Any]]:
    return [
        (row.entity_key, row.difference)
        for row in log_rows(engine, keeper)
        if row.entity_type == kind and row.action in (Action.DEVICE_UPDATE, Action.GROUP_UPDATE)
    ]


def test_links_written_by_sql_name_the_keys_as_the_flush_does(
    engine: Engine, sessions: Any
) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        phone = Device(id=PHONE)
        session.add_all([phone, Group(code="field team"), Group(code='o"neil')])
        session.commit()
        phone.groups.append(session.get_one(Group, "field team"))  # by the flush
        session.commit()
        session.execute(memberships.insert().values(device_id=PHONE, group_code='o"neil'))
        session.commit()
        session.execute(delete(memberships).where(memberships.c.group_code == "field team"))
        session.commit()
        session.execute(text("DELETE FROM memberships"))  # raw SQL
        session.commit()
    dashed = str(PHONE)
    assert _links(engine, Kind.GROUP) == [
        ("field team", {"devices": [[], [dashed]]}),
        ('o"neil', {"devices": [[], [dashed]]}),
        ("field team", {"devices": [[dashed], []]}),
        ('o"neil', {"devices": [[dashed], []]}),
    ]
    assert [difference for key, difference in _links(engine, Kind.DEVICE)] == [
        {"groups": [[], ["field team"]]},
        {"groups": [["field team"], ["field team", 'o"neil']]},
        {"groups": [["field team", 'o"neil'], ['o"neil']]},
        {"groups": [['o"neil'], []]},
    ]
    assert {key for key, _ in _links(engine, Kind.DEVICE)} == {dashed}
