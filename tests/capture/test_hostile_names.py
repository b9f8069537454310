"""Any table and column name a database accepts: quotes, spaces, backslashes, percent
signs, other scripts, names past PostgreSQL's 63 bytes. Raw SQL, a flush (its updates
and deletions merged into one statement on PostgreSQL) and a bulk statement on such a
table are each logged once, the documents keyed by the column's name."""

from __future__ import annotations

import enum
import itertools
from typing import Any

from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update
from sqlalchemy.orm import Session, registry, sessionmaker

import auditkeeper
from auditkeeper.model.statements import as_sent
from tests._support import Action

_NAME_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc"),  # no surrogates, no NUL or other controls
    whitelist_characters="\t",
)
names = st.one_of(
    st.text(_NAME_CHARACTERS, min_size=1, max_size=24),
    # Past 63 bytes with a suffix (SQLAlchemy refuses a table name of more characters).
    st.text(_NAME_CHARACTERS, min_size=50, max_size=58),
    st.sampled_from(
        ['"', "'", "%s", "%(x)s", "\\", "a b", "Ünïcødé", "select", "NEW", "$1", "Token"]
    ),
).filter(lambda name: name.strip() != "")
_counter = itertools.count()


class Kind(enum.IntEnum):
    THING = 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table_name=names, column_name=names)
@example(table_name="t", column_name="__dict__")  # no attribute can have that name
@example(table_name="%(x)s", column_name="%s")
def test_every_path_logs_a_table_of_any_name(database: Any, table_name: str, column_name: str):
    if column_name == "id":
        column_name = "id2"
    # SQLAlchemy turns its binds into SQLite's "?" by a search that a "%(" in a name
    # throws off: its own Core UPDATE of such a column fails, without auditkeeper.
    assume(database.dialect != "sqlite" or "%(" not in table_name + column_name)
    run = next(_counter)
    table_name = f"{run}{table_name}"  # apart from the tables of the examples before
    note(f"table {table_name!r}, column {column_name!r}")
    metadata = MetaData()
    keeper = auditkeeper.Auditkeeper(
        metadata, actions=Action, entity_types=Kind, table_name=f"log_{run}"
    )
    table = Table(
        table_name,
        metadata,
        Column("id", Integer, primary_key=True),
        # Audited as it is, whatever the name: "Token" would be redacted by default.
        Column(column_name, Integer, nullable=True, info=auditkeeper.audit_column(redact=False)),
    )

    class Thing:
        pass

    # The ORM attribute has a name of its own: "__dict__" cannot be one.
    registry(metadata=metadata).map_imperatively(
        Thing, table, properties={"value": table.c[column_name]}
    )
    auditkeeper.audited(
        entity_type=Kind.THING, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
    )(Thing)
    engine = database.engine()
    try:
        metadata.create_all(engine)
        keeper.create_all(engine)
        assert keeper.check(engine) == []
        factory = sessionmaker(engine)
        installation = keeper.install(factory)
        quoted = engine.dialect.identifier_preparer
        column = quoted.quote(column_name)
        with auditkeeper.acting_as(1), factory() as session:
            session.execute(insert(table).values({"id": 1, column_name: 1}))  # bulk
            session.add(Thing(id=2, value=2))  # type: ignore[call-arg]
            session.commit()
            session.execute(update(table).values({column_name: table.c[column_name] + 10}))
            session.commit()
            for thing in session.scalars(select(Thing)).all():  # merged on PostgreSQL
                thing.value += 100  # type: ignore[attr-defined]
            session.commit()
            delete = f"DELETE FROM {quoted.format_table(table)} WHERE {column} = 112"
            raw = {"no_parameters": True}  # a ":" or "%" in a name is no parameter
            session.connection().exec_driver_sql(
                as_sent(delete, engine.dialect), execution_options=raw
            )
            session.commit()
            session.add_all([Thing(id=n, value=n) for n in (3, 4)])  # type: ignore[call-arg]
            session.commit()
            for thing in session.scalars(select(Thing)).all():  # merged on PostgreSQL
                session.delete(thing)
            session.commit()
        installation.uninstall()
        with Session(engine) as session:
            rows = list(session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)))
        changes = sorted(
            (row.action, row.number_identifier, (row.previous or row.current)[column_name])
            for row in rows
        )
        assert changes == [
            (Action.CREATE, 1, 1),
            (Action.CREATE, 2, 2),
            (Action.CREATE, 3, 3),
            (Action.CREATE, 4, 4),
            (Action.UPDATE, 1, 1),
            (Action.UPDATE, 1, 11),
            (Action.UPDATE, 2, 2),
            (Action.UPDATE, 2, 12),
            (Action.DELETE, 1, 111),
            (Action.DELETE, 2, 112),
            (Action.DELETE, 3, 3),
            (Action.DELETE, 4, 4),
        ]
    finally:
        metadata.drop_all(engine)
        engine.dispose()
