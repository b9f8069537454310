"""Enum codes keep their meaning forever: the catalogue refuses renumbering."""

from __future__ import annotations

import enum

import pytest
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper


def make_log(actions: type[enum.IntEnum], kinds: type[enum.IntEnum]):
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=actions, entity_types=kinds)

    @auditkeeper.audited(entity_type=next(iter(kinds)), create=next(iter(actions)))
    class Thing(Base):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    return Base, keeper, Thing


class Kind(enum.IntEnum):
    THING = 1


class V1(enum.IntEnum):
    CREATE = 1
    UPDATE = 2


def catalogue(engine, keeper) -> set[tuple[str, int, str]]:
    table = keeper.tables.catalogue
    with engine.connect() as connection:
        return {
            tuple(r) for r in connection.execute(select(table.c.kind, table.c.code, table.c.name))
        }


def test_codes_are_recorded(database) -> None:
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)
    assert catalogue(engine, keeper) == {
        ("action", 1, "CREATE"),
        ("action", 2, "UPDATE"),
        ("entity_type", 1, "THING"),
    }


def test_appending_a_member_with_max_plus_one_works(database) -> None:
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)

    class V2(enum.IntEnum):
        CREATE = 1
        UPDATE = 2
        ARCHIVE = 3

    _, keeper2, _ = make_log(V2, Kind)
    keeper2.create_all(engine)
    assert ("action", 3, "ARCHIVE") in catalogue(engine, keeper2)


def test_a_code_that_changed_meaning_is_refused(database) -> None:
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)

    class Swapped(enum.IntEnum):
        CREATE = 1
        DELETE = 2  # code 2 meant UPDATE

    _, keeper2, _ = make_log(Swapped, Kind)
    with pytest.raises(auditkeeper.CatalogueConflictError, match="code 2") as caught:
        keeper2.create_all(engine)
    assert "UPDATE" in str(caught.value) and "DELETE" in str(caught.value)
    assert caught.value.code == 2


def test_a_renumbered_member_is_refused(database) -> None:
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)

    class Renumbered(enum.IntEnum):
        CREATE = 1
        UPDATE = 5

    _, keeper2, _ = make_log(Renumbered, Kind)
    with pytest.raises(auditkeeper.CatalogueConflictError, match="UPDATE"):
        keeper2.check_catalogue(engine)


def test_the_first_flush_refuses_to_start_with_a_conflict(database) -> None:
    """Even without create_all at start-up, no row is written under a wrong code."""
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)

    class Kind2(enum.IntEnum):
        OTHER = 1

    _, keeper2, thing = make_log(V1, Kind2)
    factory = sessionmaker(engine)
    keeper2.install(factory)
    with factory() as session:
        session.add(thing(name="x"))
        with pytest.raises(auditkeeper.CatalogueConflictError, match="entity_type code 1"):
            session.commit()
        session.rollback()
    with engine.connect() as connection:
        assert connection.execute(select(keeper.table)).all() == []


def test_removed_members_stay_in_the_catalogue(database) -> None:
    engine = database.engine()
    base, keeper, _ = make_log(V1, Kind)
    base.metadata.create_all(engine)
    keeper.create_all(engine)

    class Fewer(enum.IntEnum):
        CREATE = 1

    _, keeper2, _ = make_log(Fewer, Kind)
    keeper2.create_all(engine)
    assert ("action", 2, "UPDATE") in catalogue(engine, keeper2)


def test_enum_aliases_are_refused() -> None:
    class Aliased(enum.IntEnum):
        CREATE = 1
        MAKE = 1

    with pytest.raises(auditkeeper.ConfigurationError, match="two names"):
        make_log(Aliased, Kind)
