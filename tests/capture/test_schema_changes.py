"""Logs outlive the schema: migrations install the triggers, and old rows still load
after columns are renamed, dropped or retyped."""

from __future__ import annotations

import enum

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Integer, Text, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import auditkeeper
from auditkeeper.migrations import install


class Action(enum.IntEnum):
    DOC_CREATE = 1
    DOC_UPDATE = 2


class Kind(enum.IntEnum):
    DOC = 1


def version_one():
    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.DOC, create=Action.DOC_CREATE, update=Action.DOC_UPDATE)
    class Doc(Base):
        __tablename__ = "docs"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        pages: Mapped[int] = mapped_column(Integer)
        draft: Mapped[str | None]

    return Base, keeper, Doc


def version_two():
    """``name`` renamed to ``title``, ``pages`` now text, ``draft`` dropped."""

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)

    @auditkeeper.audited(entity_type=Kind.DOC, create=Action.DOC_CREATE, update=Action.DOC_UPDATE)
    class Doc(Base):
        __tablename__ = "docs"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        pages: Mapped[str] = mapped_column(Text)

    return Base, keeper, Doc


def migrate(engine, work) -> None:
    with engine.begin() as connection:
        work(Operations(MigrationContext.configure(connection)))


def test_a_migration_installs_everything(database) -> None:
    base, keeper, doc = version_one()
    engine = database.engine()

    def upgrade(op: Operations) -> None:
        base.metadata.create_all(op.get_bind())  # what autogenerate's create_table ops do
        install(op, keeper)
        install(op, keeper)  # idempotent: a later migration may refresh them

    migrate(engine, upgrade)
    assert keeper.check(engine) == []
    factory = sessionmaker(engine)
    keeper.install(factory)
    with factory() as session:
        session.add(doc(name="a", pages=1))
        session.commit()
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            connection.exec_driver_sql("DELETE FROM audit_log")
        connection.rollback()


def test_old_rows_load_after_rename_drop_and_type_change(database) -> None:
    base, keeper, doc = version_one()
    engine = database.engine()
    base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    keeper.install(factory)
    with factory() as session:
        old = doc(name="v1", pages=3, draft="x")
        session.add(old)
        session.commit()
        old.pages = 4
        session.commit()

    def upgrade(op: Operations) -> None:
        op.alter_column("docs", "name", new_column_name="title")
        with op.batch_alter_table("docs") as batch:  # SQLite rebuilds the table
            batch.drop_column("draft")
            batch.alter_column("pages", type_=Text, existing_type=Integer)

    migrate(engine, upgrade)
    _, keeper2, doc2 = version_two()
    if database.dialect == "postgresql":  # the capture trigger still names the old columns
        assert "stale-trigger" in [p.kind for p in keeper2.check(engine)]
    keeper2.create_all(engine)
    assert keeper2.check(engine) == []
    factory2 = sessionmaker(engine)
    keeper2.install(factory2)
    with factory2() as session:
        current = session.scalars(select(doc2)).one()
        current.title = "v2"
        session.commit()
    with Session(engine) as session:
        rows = session.scalars(select(keeper2.Entry).order_by(keeper2.Entry.id)).all()
    assert [r.action for r in rows] == [Action.DOC_CREATE, Action.DOC_UPDATE, Action.DOC_UPDATE]
    assert rows[0].current == {"id": 1, "name": "v1", "pages": 3, "draft": "x"}
    assert rows[1].difference == {"pages": [3, 4]}
    assert rows[2].previous == {"id": 1, "title": "v1", "pages": "4"}
    assert rows[2].difference == {"title": ["v1", "v2"]}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_re_installing_after_a_migration_captures_the_new_columns(database) -> None:
    base, keeper, _ = version_one()
    engine = database.engine()
    migrate(engine, lambda op: (base.metadata.create_all(op.get_bind()), install(op, keeper)))
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO docs (id, name, pages) VALUES (1, 'a', 1)")

    def upgrade(op: Operations) -> None:
        op.alter_column("docs", "name", new_column_name="title")
        op.drop_column("docs", "draft")
        op.alter_column("docs", "pages", type_=Text, existing_type=Integer)
        install(op, version_two()[1])  # re-sync the triggers in the same migration

    migrate(engine, upgrade)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE docs SET title = 'b', pages = '2 pages'")
    with Session(engine) as session:
        rows = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)).all()
    assert [r.difference for r in rows] == [
        {"id": [None, 1], "name": [None, "a"], "pages": [None, 1]},
        {"title": ["a", "b"], "pages": ["1", "2 pages"]},
    ]
