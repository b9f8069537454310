"""Bulk UPDATE and DELETE on PostgreSQL are logged set-based by the table's statement
triggers, announced by the bulk path; every row is logged once, as the row trigger would
log it, and nothing else is taken from the row trigger."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, delete, event, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import auditkeeper
from auditkeeper.capture.triggers import FLUSHED, announcement
from tests._support import POSTGRES_ONLY, model_fixtures


class Action(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    RENAME = 4


class Kind(enum.IntEnum):
    NODE = 1
    LEAF = 2
    ODD = 3


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)


@auditkeeper.audited(
    entity_type=Kind.NODE,
    create=Action.CREATE,
    update=Action.UPDATE,
    delete=Action.DELETE,
    on_change=[auditkeeper.on_change("name", action=Action.RENAME)],
)
class Node(Base):
    """A tree: deleting a node deletes its subtree, in the same table."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    size: Mapped[int] = mapped_column(default=0)
    password: Mapped[str | None]  # secret by name: redacted
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))


@auditkeeper.audited(
    entity_type=Kind.LEAF, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Leaf(Base):
    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))


engine, sessions = model_fixtures(Base.metadata, keeper)


def changes(engine: Engine) -> list[Any]:
    """The log after the seed, in order."""
    with Session(engine) as session:
        rows = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id))
        return [r for r in rows if r.reason != "seed"]


def seed(sessions) -> None:
    """A tree 1 > 2 > 3, a lone node 4, and a leaf under 3."""
    with auditkeeper.acting_as_system(reason="seed"), sessions() as session:
        session.add(Node(id=1, name="root", password="pw"))
        session.flush()
        session.add(Node(id=2, name="branch", parent_id=1))
        session.add(Node(id=4, name="lone", size=4))
        session.flush()
        session.add(Node(id=3, name="twig", parent_id=2))
        session.flush()
        session.add(Leaf(id=1, node_id=3))
        session.commit()


def test_a_bulk_delete_and_its_cascades_in_the_same_table_are_logged_once(engine: Engine, sessions):
    seed(sessions)
    with auditkeeper.acting_as(7, email="ops@example.com"), sessions() as session:
        session.execute(delete(Node).where(Node.id.in_([1, 4])))
        session.commit()
    rows = changes(engine)
    assert sorted((r.entity_type, r.number_identifier, r.action) for r in rows) == [
        (Kind.NODE, 1, Action.DELETE),
        (Kind.NODE, 2, Action.DELETE),
        (Kind.NODE, 3, Action.DELETE),
        (Kind.NODE, 4, Action.DELETE),
        (Kind.LEAF, 1, Action.DELETE),
    ]
    assert {r.user_email for r in rows} == {"ops@example.com"}
    assert len({r.transaction_id for r in rows}) == 1
    root = next(r for r in rows if r.number_identifier == 1 and r.entity_type == Kind.NODE)
    assert root.previous == {
        "id": 1,
        "name": "root",
        "size": 0,
        "password": "[redacted]",
        "parent_id": None,
    }
    assert root.current is None
    assert root.difference == {
        "id": [1, None],
        "name": ["root", None],
        "size": [0, None],
        "password": ["[redacted]", None],
    }


def test_a_bulk_update_picks_actions_redacts_and_skips_unchanged_rows(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        session.execute(update(Node).where(Node.id <= 2).values(password="new", size=Node.size))
        session.execute(update(Node).where(Node.id >= 3).values(name=Node.name + "!"))
        session.commit()
    rows = sorted(changes(engine), key=lambda r: r.number_identifier)
    assert [(r.number_identifier, r.action, r.difference) for r in rows] == [
        (1, Action.UPDATE, {"password": ["[redacted]", "[redacted]"]}),
        (2, Action.UPDATE, {"password": [None, "[redacted]"]}),
        (3, Action.RENAME, {"name": ["twig", "twig!"]}),
        (4, Action.RENAME, {"name": ["lone", "lone!"]}),
    ]
    assert rows[1].current["password"] == "[redacted]"
    assert rows[1].previous["password"] is None


def test_a_bulk_update_of_the_primary_key_keeps_old_and_new_rows_paired(engine: Engine, sessions):
    with auditkeeper.acting_as_system(reason="seed"), sessions() as session:
        session.add_all([Node(id=i, name=f"n{i}") for i in range(1, 51)])
        session.commit()
    with sessions() as session:
        session.execute(
            update(Node).values(id=Node.id + 100), execution_options={"synchronize_session": False}
        )
        session.commit()
    rows = changes(engine)
    assert len(rows) == 50
    for row in rows:
        old, new = row.difference["id"]
        assert new == old + 100 == row.number_identifier
        assert row.previous["name"] == row.current["name"] == f"n{old}"


@POSTGRES_ONLY
def test_the_statement_triggers_write_what_the_row_trigger_writes(engine: Engine, sessions):
    seed(sessions)
    statement = update(Node).values(name=Node.name + "?", password=None, size=Node.size + 1)
    undo = (
        "UPDATE nodes SET name = rtrim(name, '?'), size = size - 1, "
        "password = CASE id WHEN 1 THEN 'pw' END"
    )
    for reason in ("statement", "row"):
        with (
            auditkeeper.acting_as(3, email="a@example.com", reason=reason),
            sessions() as session,
        ):
            session.execute(statement)
            session.commit()
        with engine.begin() as connection:
            connection.execute(text(undo))
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE nodes DISABLE TRIGGER nodes_audit_updates"))
    rows = changes(engine)

    def logged(reason: str) -> list[tuple[Any, ...]]:
        return sorted(
            (r.number_identifier, r.action, r.user_id, r.user_email, r.changed_objects)
            for r in rows
            if r.reason == reason
        )

    assert len(logged("statement")) == 4
    assert logged("statement") == logged("row")
    marks = {r.reason: r.context["captured_by"] for r in rows if r.reason}
    assert marks == {"statement": "database statement trigger", "row": "database trigger"}


@POSTGRES_ONLY
def test_a_statement_that_fails_before_the_database_announces_nothing(engine: Engine, sessions):
    """The announcement is part of the statement: later changes keep their row trigger."""
    seed(sessions)

    def refuse_updates(conn, cursor, statement, parameters, context, executemany):
        if "UPDATE" in statement and " nodes SET" in statement:
            raise RuntimeError("refused by the application")

    event.listen(engine, "before_cursor_execute", refuse_updates)
    with sessions() as session:
        with pytest.raises(RuntimeError, match="refused"):
            session.execute(update(Node).values(size=9))
        event.remove(engine, "before_cursor_execute", refuse_updates)
        session.execute(text("INSERT INTO nodes (id, name, size) VALUES (5, 'raw', 0)"))
        session.execute(text("UPDATE nodes SET size = 5 WHERE id = 5"))
        session.commit()
    rows = changes(engine)
    assert [(r.number_identifier, r.action) for r in rows] == [
        (5, Action.CREATE),
        (5, Action.UPDATE),
    ]
    assert {r.context["captured_by"] for r in rows} == {"database trigger"}


@POSTGRES_ONLY
def test_a_statement_in_a_failed_savepoint_leaves_capture_as_it_was(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        with pytest.raises(Exception, match="violates"), session.begin_nested():
            session.execute(update(Node).where(Node.id == 2).values(parent_id=99))
        node = session.get(Node, 4)
        node.size = 40
        session.commit()
    rows = changes(engine)
    assert [(r.number_identifier, r.difference) for r in rows] == [(4, {"size": [4, 40]})]
    assert rows[0].context is None  # the flush's row, not doubled by a trigger


ANNOUNCE = announcement(Node.__table__, postgresql.dialect())
EARLIER_ANNOUNCEMENT = "set_config('auditkeeper.statement', 'nodes' || statement_timestamp(), true)"


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        # An announcement holds for the query that carries it, not the next one.
        (
            [f"{ANNOUNCE} SELECT 1", "INSERT INTO nodes (id, name, size) VALUES (10, 'x', 0)"],
            [(10, Action.CREATE, "database trigger")],
        ),
        (
            [f"{ANNOUNCE} INSERT INTO nodes (id, name, size) VALUES (10, 'x', 0)"],
            [(10, Action.CREATE, "database statement trigger")],
        ),
        (
            [
                "INSERT INTO nodes (id, name, size) VALUES (10, 'x', 0)",
                f"{ANNOUNCE} WITH u AS (UPDATE nodes SET size = 1 WHERE id = 4 RETURNING id), "
                "d AS (DELETE FROM nodes WHERE id = 10 RETURNING id) SELECT * FROM u, d",
            ],
            [
                (4, Action.UPDATE, "database statement trigger"),
                (10, Action.CREATE, "database trigger"),
                (10, Action.DELETE, "database statement trigger"),
            ],
        ),
        (
            [
                f"{ANNOUNCE} INSERT INTO nodes (id, name, size) "
                "SELECT * FROM (VALUES (4, 'four', 4), (10, 'x', 0)) v "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name"
            ],
            [
                (4, Action.RENAME, "database statement trigger"),
                (10, Action.CREATE, "database statement trigger"),
            ],
        ),
        (
            [
                f"{ANNOUNCE} MERGE INTO nodes USING (VALUES (4, 44), (10, 0)) v (id, size) "
                "ON nodes.id = v.id WHEN MATCHED THEN UPDATE SET size = v.size "
                "WHEN NOT MATCHED THEN INSERT (id, name, size) VALUES (v.id, 'x', v.size)"
            ],
            [
                (4, Action.UPDATE, "database statement trigger"),
                (10, Action.CREATE, "database statement trigger"),
            ],
        ),
        (  # statements that a DO block (or any function) runs share the client's query
            [f"{ANNOUNCE} DO $$ BEGIN UPDATE nodes SET size = 5 WHERE id = 4; END $$"],
            [(4, Action.UPDATE, "database statement trigger")],
        ),
        (  # anywhere but at the start, it announces nothing
            [f"UPDATE nodes SET name = '{ANNOUNCE}' WHERE id = 4 {ANNOUNCE}"],
            [(4, Action.RENAME, "database trigger")],
        ),
        (  # the setting by which earlier versions announced: it means nothing now, however
            # the query changes it (it once let such a query leave its rows to no trigger)
            [
                f"WITH u AS (UPDATE nodes SET size = 1 WHERE id = 4 AND {EARLIER_ANNOUNCEMENT} "
                "IS NOT NULL RETURNING id) "
                "SELECT set_config('auditkeeper.statement', 'x', true) FROM u"
            ],
            [(4, Action.UPDATE, "database trigger")],
        ),
    ],
)
def test_an_announcement_made_by_hand_moves_logging_but_never_silences_it(
    engine: Engine, sessions, statements: list[str], expected: list[tuple[Any, ...]]
):
    seed(sessions)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    rows = changes(engine)
    logged = [(r.number_identifier, r.action, r.context["captured_by"]) for r in rows]
    assert sorted(logged) == expected


class Odd(Base):
    """Names that SQL must quote, or that the triggers' own aliases use."""

    __tablename__ = 'odd "names" table'
    id: Mapped[int] = mapped_column(primary_key=True)
    select_: Mapped[str] = mapped_column("select")
    o: Mapped[int] = mapped_column(default=0)
    n: Mapped[int] = mapped_column(default=0)
    actor: Mapped[str | None] = mapped_column("actor")
    difference: Mapped[str | None] = mapped_column('dif"ference')
    spaced: Mapped[str | None] = mapped_column("a b")


auditkeeper.audited(
    entity_type=Kind.ODD, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)(Odd)


def test_names_sql_must_quote_survive_every_path(engine: Engine, sessions):
    assert keeper.check(engine) == []  # the check finds the triggers of such tables too
    with sessions() as session:
        session.add(Odd(id=1, select_="s", actor="x", difference="d", spaced="sp"))
        session.commit()
    with sessions() as session:
        session.execute(update(Odd).values(select_="t", o=Odd.o + 1, n=Odd.n + 2, spaced=None))
        session.commit()
    with sessions() as session:
        session.execute(delete(Odd))
        session.commit()
    rows = [r for r in changes(engine) if r.entity_type == Kind.ODD]
    assert [r.action for r in rows] == [Action.CREATE, Action.UPDATE, Action.DELETE]
    created, updated, deleted = rows
    # Documents name the columns, as the database does.
    assert created.current == {
        "id": 1,
        "select": "s",
        "o": 0,
        "n": 0,
        "actor": "x",
        'dif"ference': "d",
        "a b": "sp",
    }
    assert updated.difference == {
        "select": ["s", "t"],
        "o": [0, 1],
        "n": [0, 2],
        "a b": ["sp", None],
    }
    assert deleted.previous == {**created.current, **updated.current}
    assert deleted.current is None
    if engine.dialect.name == "postgresql":
        marks = {r.context["captured_by"] for r in (updated, deleted)}
        assert marks == {"database statement trigger"}


@pytest.mark.parametrize("synchronize", ["evaluate", "auto", "fetch", False])
def test_every_synchronize_session_strategy_works_and_is_logged(
    engine: Engine, sessions, synchronize
):
    """SQLAlchemy evaluates the criteria in Python for "evaluate" (and tries to for
    "auto"): the announcement must not stop it."""
    seed(sessions)
    options = {"synchronize_session": synchronize}
    with sessions() as session:
        lone = session.get(Node, 4)
        session.execute(update(Node).where(Node.id == 4).values(size=7), execution_options=options)
        if synchronize in ("evaluate", "auto", "fetch"):
            assert lone.size == 7  # the object in the session followed
        session.execute(delete(Node).where(Node.id == 4), execution_options=options)
        session.commit()
    rows = changes(engine)
    assert [(r.number_identifier, r.action) for r in rows] == [
        (4, Action.UPDATE),
        (4, Action.DELETE),
    ]
    assert rows[0].difference == {"size": [4, 7]}


@POSTGRES_ONLY
def test_rows_an_application_trigger_changes_in_the_same_table_are_logged_once(
    engine: Engine, sessions
):
    """A statement run by a trigger of the application has its own transition tables and
    statement trigger call, under the bulk statement's announcement."""
    seed(sessions)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION grow_parent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "UPDATE nodes SET size = size + 1 WHERE id = NEW.parent_id; RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER grow_parent AFTER UPDATE OF name ON nodes "
                "FOR EACH ROW EXECUTE FUNCTION grow_parent()"
            )
        )
    with sessions() as session:
        session.execute(update(Node).where(Node.id.in_([2, 3])).values(name=Node.name + "!"))
        session.commit()
    # The application trigger's statement ends, and is logged, before the bulk statement.
    logged = sorted((r.number_identifier, sorted(r.difference.items())) for r in changes(engine))
    assert logged == [
        (1, [("size", [0, 1])]),
        (2, [("name", ["branch", "branch!"])]),
        (2, [("size", [0, 1])]),
        (3, [("name", ["twig", "twig!"])]),
    ]
    rows = changes(engine)
    assert {r.context["captured_by"] for r in rows} == {"database statement trigger"}


@POSTGRES_ONLY
def test_a_raw_change_that_repeats_a_bulk_statement_change_is_logged(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        session.execute(update(Node).where(Node.id == 4).values(size=1))
        session.execute(text("UPDATE nodes SET size = 4 WHERE id = 4"))
        session.execute(text("UPDATE nodes SET size = 1 WHERE id = 4"))
        session.commit()
    rows = changes(engine)
    assert [r.difference for r in rows] == [
        {"size": [4, 1]},
        {"size": [1, 4]},
        {"size": [4, 1]},
    ]


@POSTGRES_ONLY
@pytest.mark.parametrize("back", ["bulk", "raw"])
def test_a_raw_change_that_repeats_a_flush_change_after_a_change_back_is_logged(
    engine: Engine, sessions, back: str
):
    """A flush's row covers the flush's own change only: a raw change that repeats it,
    value for value, after the record was changed back, is a change of its own."""
    seed(sessions)
    with sessions() as session:
        session.get(Node, 4).size = 1
        session.flush()
        if back == "bulk":
            session.execute(update(Node).where(Node.id == 4).values(size=4))
        else:
            session.execute(text("UPDATE nodes SET size = 4 WHERE id = 4"))
        session.execute(text("UPDATE nodes SET size = 1 WHERE id = 4"))
        session.commit()
    rows = changes(engine)
    assert [r.difference for r in rows] == [{"size": [4, 1]}, {"size": [1, 4]}, {"size": [4, 1]}]
    assert rows[0].context is None  # the flush's row, not doubled


@POSTGRES_ONLY
def test_a_flush_after_raw_sql_on_the_same_record_is_logged_once(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        node = session.get(Node, 4)
        session.execute(text("UPDATE nodes SET size = 2 WHERE id = 4"))
        session.refresh(node)
        node.size = 1
        session.flush()
        session.execute(text("UPDATE nodes SET name = 'four' WHERE id = 4"))
        session.commit()
    rows = changes(engine)
    logged = [(r.difference, (r.context or {}).get("captured_by")) for r in rows]
    assert sorted(logged, key=str) == sorted(
        [
            ({"size": [4, 2]}, "database trigger"),
            ({"size": [2, 1]}, None),
            ({"name": ["lone", "four"]}, "database trigger"),
        ],
        key=str,
    )


@POSTGRES_ONLY
def test_a_forged_flush_mark_cannot_silence_a_change_no_row_covers(engine: Engine, sessions):
    """The flushed mark only lets a change be matched against rows already written: a
    raw statement that starts with it, with nothing that covers it, is logged (by the
    flushed trigger), and so are its cascades."""
    seed(sessions)
    with engine.begin() as connection:
        connection.execute(text(f"{FLUSHED} UPDATE nodes SET size = 7 WHERE id = 4"))
        connection.execute(text(f"{FLUSHED} INSERT INTO nodes (id, name, size) VALUES (9, 'x', 0)"))
        connection.execute(text(f"{FLUSHED} DELETE FROM nodes WHERE id = 2"))  # cascades to 3
    logged = [(r.number_identifier, r.action, r.context["captured_by"]) for r in changes(engine)]
    assert sorted(logged) == [
        (1, Action.DELETE, "database trigger"),  # the leaf under node 3
        (2, Action.DELETE, "database trigger"),
        (3, Action.DELETE, "database trigger"),
        (4, Action.UPDATE, "database trigger"),
        (9, Action.CREATE, "database trigger"),
    ]


@POSTGRES_ONLY
def test_a_previous_versions_unmarked_flush_is_logged_twice_and_nothing_is_lost(
    engine: Engine, sessions
):
    """docs/database.md, rolling deploys: a process of the version before the flushed
    mark writes with this version's triggers installed. Its flushes' statements carry no
    mark, so the row trigger logs them as raw changes, besides the flush's own rows."""
    from auditkeeper.capture.trigger_state import _mark_flushed

    seed(sessions)
    with auditkeeper.acting_as(7, email="ops@example.com"), sessions() as session:
        session.connection()  # the session's first transaction watches the engine
        event.remove(engine, "before_cursor_execute", _mark_flushed)  # as before the mark
        session.get(Node, 4).size = 5
        session.add(Node(id=9, name="new"))
        session.delete(session.get(Leaf, 1))
        session.commit()
    logged = sorted(
        (r.entity_type, r.number_identifier, r.action, (r.context or {}).get("captured_by", ""))
        for r in changes(engine)
        if r.user_id == 7
    )
    assert logged == [
        (Kind.NODE, 4, Action.UPDATE, ""),
        (Kind.NODE, 4, Action.UPDATE, "database trigger"),
        (Kind.NODE, 9, Action.CREATE, ""),
        (Kind.NODE, 9, Action.CREATE, "database trigger"),
        (Kind.LEAF, 1, Action.DELETE, ""),
        (Kind.LEAF, 1, Action.DELETE, "database trigger"),
    ]
    assert len(changes(engine)) == len(logged)  # every row names the actor
