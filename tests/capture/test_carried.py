"""A flush that changes one audited record: on PostgreSQL its row rides on the record's
own UPDATE or DELETE (capture/carried.py), and is the row the flush would write after
it; every case where it could differ is left to the flush. The rows are checked on both
dialects, the statements on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Numeric,
    String,
    event,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    deferred,
    mapped_column,
    relationship,
    undefer,
)
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

import auditkeeper
from auditkeeper.capture.carried import CTE_NAME
from auditkeeper.capture.document import build_row
from auditkeeper.capture.triggers.common import FLUSHED
from tests._support import POSTGRES_ONLY, Action, log_rows, model_fixtures, sent_statements


class Kind(enum.IntEnum):
    TEAM = 1
    PLAYER = 2
    STAMPED = 3
    VERSIONED = 4
    SEAT = 5
    GADGET = 6
    ODD = 7
    NOTEBOOK = 8


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}
CHANGED_AT = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@auditkeeper.audited(entity_type=Kind.TEAM, **VERBS)
class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    motto: Mapped[str | None] = deferred(mapped_column(String))


@auditkeeper.audited(entity_type=Kind.PLAYER, **VERBS)
class Player(Base):
    __tablename__ = "players"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    score: Mapped[int] = mapped_column(default=0)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    team: Mapped[Team | None] = relationship()
    mentees: Mapped[list[Player]] = relationship()


@auditkeeper.audited(entity_type=Kind.STAMPED, **VERBS)
class Stamped(Base):
    __tablename__ = "stamped"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    changed_at: Mapped[dt.datetime | None] = mapped_column(onupdate=lambda: CHANGED_AT)


@auditkeeper.audited(entity_type=Kind.VERSIONED, **VERBS)
class Versioned(Base):
    __tablename__ = "versioned"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    version: Mapped[int] = mapped_column(nullable=False)
    __mapper_args__ = {"version_id_col": version}


@auditkeeper.audited(entity_type=Kind.SEAT, **VERBS)
class Seat(Base):
    """A composite key of a text and a number."""

    __tablename__ = "seats"
    row: Mapped[str] = mapped_column(String(8), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str | None]


@auditkeeper.audited(entity_type=Kind.GADGET, **VERBS)
class Gadget(Base):
    __tablename__ = "gadgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str]
    amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(12, 2))
    moment: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)


@auditkeeper.audited(entity_type=Kind.ODD, **VERBS)
class Odd(Base):
    """A column named as the carried INSERT names its parameters."""

    __tablename__ = "odds"
    id: Mapped[int] = mapped_column(primary_key=True)
    auditkeeper_rows: Mapped[str | None]


@auditkeeper.audited(entity_type=Kind.NOTEBOOK, **VERBS)
class Notebook(Base):
    """JSON changed in place: tracked by ``MutableDict``, or flagged by hand."""

    __tablename__ = "notebooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracked: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON))
    flagged: Mapped[Any] = mapped_column(JSON, nullable=True)


engine, sessions = model_fixtures(Base.metadata, keeper)


@pytest.fixture
def sent(engine: Engine) -> Iterator[list[str]]:
    yield from sent_statements(engine)


def carried(sent: list[str]) -> list[str]:
    """The verbs of the statements that carried an audit row ("UPDATE", "DELETE")."""
    start = f"{FLUSHED} WITH {CTE_NAME} AS (INSERT INTO audit_log "
    return [_verb(s) for s in sent if s.startswith(start)]


def _verb(statement: str) -> str:
    """The application's statement behind the carried INSERT."""
    for verb in ("UPDATE", "DELETE"):
        if f") {verb} " in statement:
            return verb
    raise AssertionError(f"no UPDATE or DELETE after the carried INSERT: {statement}")


def own_writes(sent: list[str]) -> int:
    """The flush's own audit INSERTs: statements of their own."""
    return sum(1 for s in sent if s.startswith("INSERT INTO audit_log"))


def rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def seed(sessions: Any, *objects: Any) -> None:
    with auditkeeper.acting_as_system(reason="set-up"), sessions() as s:
        s.add_all(objects)
        s.commit()


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def test_a_one_record_update_carries_the_row_the_flush_would_write(
    engine: Engine, sessions, sent: list[str]
):
    seed(sessions, Team(id=1, name="Reds", motto="Onwards"))
    sent.clear()
    context = {"request_id": "r-7"}
    actor = auditkeeper.acting_as(
        5, email="ann@example.com", context=context, tenant_id="t-9", reason="Ticket #12"
    )
    with actor, sessions() as s:
        team = s.get(Team, 1, options=[undefer(Team.motto)])
        team.name = "Blues"
        s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE"] and own_writes(sent) == 0
    row = rows(engine)[-1]
    assert (row.action, row.entity_type, row.number_identifier) == (Action.UPDATE, Kind.TEAM, 1)
    assert row.changed_objects == {
        "previous": {"id": 1, "name": "Reds", "motto": "Onwards"},
        "current": {"id": 1, "name": "Blues", "motto": "Onwards"},
        "difference": {"name": ["Reds", "Blues"]},
    }
    assert (row.user_id, row.user_email, row.tenant_id, row.reason, row.context) == (
        5,
        "ann@example.com",
        "t-9",
        "Ticket #12",
        context,
    )
    assert row.created_at is not None and row.transaction_id is not None


def test_a_one_record_deletion_carries_its_row(engine: Engine, sessions, sent: list[str]):
    seed(sessions, Player(id=1, name="Ann", score=3))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        s.delete(s.get(Player, 1))
        s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["DELETE"] and own_writes(sent) == 0
    row = rows(engine)[-1]
    assert (row.action, row.number_identifier, row.user_id) == (Action.DELETE, 1, 5)
    assert row.changed_objects == {
        "previous": {"id": 1, "name": "Ann", "score": 3, "team_id": None, "mentor_id": None},
        "current": None,
        "difference": {
            "id": [1, None],
            "name": ["Ann", None],
            "score": [3, None],
        },
    }


def test_rows_carried_in_one_transaction_share_its_id_with_the_flushs(
    engine: Engine, sessions, sent: list[str]
):
    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"), Player(id=3, name="Cy"))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        ann, bob, cy = (s.get(Player, n) for n in (1, 2, 3))
        ann.score = 1
        s.flush()  # carried
        bob.score = 2
        cy.score = 3
        s.flush()  # two records: one merged UPDATE, which the statement trigger logs
        s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE"] and own_writes(sent) == 0
        assert sum("auditkeeper:flush-rows */ UPDATE" in statement for statement in sent) == 1
    logged = rows(engine)[3:]
    assert [r.number_identifier for r in logged] == [1, 2, 3]
    assert len({r.transaction_id for r in logged}) == 1


def test_a_foreign_key_the_flush_sets_is_in_the_carried_row(
    engine: Engine, sessions, sent: list[str]
):
    """The flush copies a related record's key into the column only as it writes: the
    carried row is built after that, as the statement leaves."""
    seed(sessions, Team(id=1, name="Reds"), Team(id=2, name="Blues"), Player(id=1, name="Ann"))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        s.get(Player, 1).team = s.get(Team, 2)
        s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE"]
    row = rows(engine)[-1]
    assert (row.entity_type, row.number_identifier) == (Kind.PLAYER, 1)
    assert row.changed_objects["difference"] == {"team_id": [None, 2]}
    assert row.changed_objects["current"]["team_id"] == 2


def test_composite_and_changed_keys_are_carried_with_the_row(
    engine: Engine, sessions, sent: list[str]
):
    """The statement is found by every column of its key, as the row stood before the
    flush; the row names the record by its key after it."""
    seed(sessions, Seat(row="B", number=7), Seat(row="B", number=8), Player(id=1, name="Ann"))
    sent.clear()
    with auditkeeper.acting_as(5):
        with sessions() as s:
            s.get(Seat, ("B", 8)).holder = "Ann"
            s.commit()
        with sessions() as s:
            s.get(Player, 1).id = 10
            s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE", "UPDATE"] and own_writes(sent) == 0
    seat, player = rows(engine)[-2:]
    assert (seat.entity_key, seat.changed_objects["difference"]) == (
        '["B",8]',
        {"holder": [None, "Ann"]},
    )
    assert (player.number_identifier, player.changed_objects["difference"]) == (10, {"id": [1, 10]})


def test_a_parameter_named_like_the_inserts_leaves_the_row_to_the_flush(
    engine: Engine, sessions, sent: list[str]
):
    seed(sessions, Odd(id=1))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        s.get(Odd, 1).auditkeeper_rows = "mine"
        s.flush()
        # Raw SQL after it, logged by the capture triggers in the name the flush set.
        s.connection().execute(text("UPDATE odds SET auditkeeper_rows = 'raw' WHERE id = 1"))
        s.commit()
    assert carried(sent) == []
    flushed, raw = rows(engine)[-2:]
    assert (flushed.user_id, flushed.changed_objects["difference"]) == (
        5,
        {"auditkeeper_rows": [None, "mine"]},
    )
    assert (raw.user_id, raw.changed_objects["difference"]) == (
        5,
        {"auditkeeper_rows": ["mine", "raw"]},
    )


def test_json_changed_in_place_is_logged_against_its_stored_value(
    engine: Engine, sessions, sent: list[str]
):
    """SQLAlchemy keeps no old value of JSON changed in place (``MutableDict``,
    ``flag_modified``): the old one is read from the database before the flush."""
    seed(sessions, Notebook(id=1, tracked={"k": 1}, flagged={"p": [1]}))
    sent.clear()
    with auditkeeper.acting_as(5):
        with sessions() as s:
            notebook = s.get(Notebook, 1)  # held: the session holds it weakly
            notebook.tracked["k"] = 2
            s.commit()
        with sessions() as s:
            notebook = s.get(Notebook, 1)
            notebook.flagged["p"].append(2)
            flag_modified(notebook, "flagged")
            s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE", "UPDATE"]
    tracked, flagged = rows(engine)[-2:]
    assert tracked.changed_objects["difference"] == {"tracked": [{"k": 1}, {"k": 2}]}
    assert flagged.changed_objects["difference"] == {"flagged": [{"p": [1]}, {"p": [1, 2]}]}
    assert flagged.changed_objects["previous"]["tracked"] == {"k": 2}


def test_values_computed_as_the_statement_runs_leave_the_row_to_the_flush(
    engine: Engine, sessions, sent: list[str]
):
    """An ``onupdate`` value, an SQL expression and a version counter are known only
    after the statement: the flush writes those rows itself, with the stored values
    (and, for the SQL expression and the counter, the old values kept before the
    flush: the flush expires the one and overwrites the other)."""
    seed(
        sessions,
        Stamped(id=1, name="a"),
        Player(id=1, name="Ann", score=10),
        Versioned(id=1, name="v"),
    )
    sent.clear()
    with auditkeeper.acting_as(5):
        with sessions() as s:
            s.get(Stamped, 1).name = "b"
            s.commit()
        with sessions() as s:
            s.get(Player, 1).score = Player.score + 5
            s.commit()
        with sessions() as s:
            s.get(Versioned, 1).name = "w"
            s.commit()
    assert carried(sent) == []
    if is_postgresql(engine):
        assert own_writes(sent) == 3, "\n".join(s[:90] for s in sent)
    stamped, player, versioned = rows(engine)[-3:]
    assert stamped.changed_objects["difference"]["changed_at"][1].startswith("2030-01-02T03:04:05")
    assert player.changed_objects["difference"] == {"score": [10, 15]}
    assert versioned.changed_objects["difference"] == {"name": ["v", "w"], "version": [1, 2]}
    assert versioned.changed_objects["previous"]["version"] == 1
    # The flush's own rows: in the actor's name, not the capture triggers' at commit.
    assert {(r.user_id, r.context) for r in (stamped, player, versioned)} == {(5, None)}


def test_an_sql_expression_of_an_expired_record_is_logged_with_its_old_value(
    engine: Engine, sessions
):
    seed(sessions, Player(id=1, name="Ann", score=10))
    with auditkeeper.acting_as(5), sessions() as s:
        player = s.get(Player, 1)
        s.expire(player)
        player.score = Player.score * 3
        s.commit()
    row = rows(engine)[-1]
    assert (row.user_id, row.context) == (5, None)
    assert row.changed_objects["difference"] == {"score": [10, 30]}


def test_an_unloaded_column_is_read_by_the_flush(engine: Engine, sessions, sent: list[str]):
    seed(sessions, Team(id=1, name="Reds", motto="Onwards"))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        team = s.scalars(select(Team)).one()  # ``motto`` is deferred: not loaded
        team.name = "Blues"
        s.commit()
    assert carried(sent) == []
    assert rows(engine)[-1].changed_objects["current"] == {
        "id": 1,
        "name": "Blues",
        "motto": "Onwards",
    }


def test_a_flush_that_also_creates_or_changes_two_records_is_not_carried(
    engine: Engine, sessions, sent: list[str]
):
    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        s.get(Player, 1).score = 1
        s.add(Player(id=3, name="Cy"))
        s.commit()
    with auditkeeper.acting_as(5), sessions() as s:
        ann, bob = s.get(Player, 1), s.get(Player, 2)
        ann.score = 2
        s.delete(bob)
        s.commit()
    assert carried(sent) == []
    logged = rows(engine)[2:]
    assert [(r.number_identifier, r.action) for r in logged] == [
        (3, Action.CREATE),
        (1, Action.UPDATE),
        (1, Action.UPDATE),
        (2, Action.DELETE),
    ]


def test_a_database_cascade_of_a_carried_deletion_is_logged_in_the_actors_name(
    engine: Engine, sessions, sent: list[str]
):
    seed(sessions, Team(id=1, name="Reds"), Player(id=1, name="Ann", team_id=1))
    sent.clear()
    with auditkeeper.acting_as(5, email="ann@example.com"), sessions() as s:
        s.delete(s.get(Team, 1))  # the database removes the player
        s.commit()
    if is_postgresql(engine):
        assert carried(sent) == ["DELETE"]
    logged = {(r.entity_type, r.action): r for r in rows(engine)[2:]}
    assert set(logged) == {(Kind.TEAM, Action.DELETE), (Kind.PLAYER, Action.DELETE)}
    assert {(r.user_id, r.user_email) for r in logged.values()} == {(5, "ann@example.com")}
    assert len({r.transaction_id for r in logged.values()}) == 1


def test_a_carried_row_goes_with_a_rolled_back_savepoint(engine: Engine, sessions):
    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"))
    with auditkeeper.acting_as(5), sessions() as s:
        nested = s.begin_nested()
        s.get(Player, 1).score = 1
        s.flush()
        nested.rollback()
        s.get(Player, 2).score = 2
        s.commit()
    logged = rows(engine)[2:]
    assert [(r.number_identifier, r.changed_objects["difference"]) for r in logged] == [
        (2, {"score": [0, 2]})
    ]
    with Session(engine) as s:
        assert s.scalars(select(Player.score).order_by(Player.id)).all() == [0, 2]


@POSTGRES_ONLY
def test_a_carried_row_refused_inside_a_savepoint_leaves_the_rest_whole(
    engine: Engine, sessions, sent: list[str]
):
    """The carried statement fails inside a savepoint: the savepoint goes, the actor is
    told again to the flushes after it, and the transaction's other rows stay."""
    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"), Player(id=3, name="Cy"))
    with engine.begin() as connection:  # the log refuses rows of record 2
        connection.exec_driver_sql(
            "ALTER TABLE audit_log ADD CONSTRAINT no_two CHECK (number_identifier <> 2) NOT VALID"
        )
    sent.clear()
    with auditkeeper.acting_as(5, email="ann@example.com"), sessions() as s:
        ann, bob, cy = (s.get(Player, n) for n in (1, 2, 3))
        ann.score = 1
        s.flush()
        nested = s.begin_nested()
        bob.score = 2
        with pytest.raises(DBAPIError, match="no_two"):
            s.flush()
        nested.rollback()
        cy.score = 3
        s.commit()
    assert carried(sent) == ["UPDATE", "UPDATE", "UPDATE"]
    logged = rows(engine)[3:]
    assert [(r.number_identifier, r.changed_objects["difference"]) for r in logged] == [
        (1, {"score": [0, 1]}),
        (3, {"score": [0, 3]}),
    ]
    assert {(r.user_id, r.user_email) for r in logged} == {(5, "ann@example.com")}
    with Session(engine) as s:
        assert s.scalars(select(Player.score).order_by(Player.id)).all() == [1, 0, 3]


def test_a_stale_record_keeps_no_row(engine: Engine, sessions):
    """The UPDATE finds no row (another transaction deleted it): the flush fails and
    the row the statement carried is rolled back with it."""
    seed(sessions, Player(id=1, name="Ann"))
    with sessions() as s:
        player = s.get(Player, 1)
        s.commit()
        with engine.begin() as other:
            other.execute(text("DELETE FROM players WHERE id = 1"))
        player.score = 9
        with auditkeeper.acting_as(5), pytest.raises(StaleDataError):
            s.commit()
        s.rollback()
    assert all(r.action != Action.UPDATE for r in rows(engine))


@POSTGRES_ONLY
def test_a_carried_row_that_cannot_be_written_fails_the_change(
    engine: Engine, sessions, sent: list[str]
):
    """Fail closed: the audit INSERT and the change are one statement."""
    seed(sessions, Player(id=1, name="Ann"))
    with engine.begin() as connection:  # every further audit row is refused
        connection.exec_driver_sql(
            "ALTER TABLE audit_log ADD CONSTRAINT full_disk CHECK (action < 0) NOT VALID"
        )
    with auditkeeper.acting_as(5), sessions() as s:
        s.get(Player, 1).score = 9
        with pytest.raises(DBAPIError, match="full_disk") as failure:
            s.commit()
        s.rollback()
    assert "UPDATE players SET score" in str(failure.value.statement)
    with Session(engine) as s:
        assert s.get(Player, 1).score == 0
    assert len(rows(engine)) == 1


def test_another_records_statement_in_the_flush_carries_nothing(
    engine: Engine, sessions, sent: list[str]
):
    """The flush changes one record (Ann: her score, and a collection), yet it sends two
    UPDATEs of the same table: Ann's, and Bob's (his key to her, set as the flush
    writes). Only Ann's statement carries her row; Bob's row is the flush's own."""
    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"))
    sent.clear()
    with auditkeeper.acting_as(5), sessions() as s:
        ann, bob = s.get(Player, 1), s.get(Player, 2)
        ann.score = 7
        ann.mentees.append(bob)
        s.commit()
    updates = [s for s in sent if " UPDATE players SET " in f" {s}"]
    assert len(updates) == 2
    (ann_statement,) = [s for s in updates if "SET score=" in s]
    (bob_statement,) = [s for s in updates if "SET mentor_id=" in s]
    if is_postgresql(engine):
        assert carried([ann_statement]) == ["UPDATE"] and carried([bob_statement]) == []
    logged = {r.number_identifier: r.changed_objects["difference"] for r in rows(engine)[2:]}
    assert logged == {1: {"score": [0, 7]}, 2: {"mentor_id": [None, 1]}}


def test_a_statement_of_the_same_table_sent_first_does_not_take_the_row(
    engine: Engine, sessions, sent: list[str]
):
    """An application's ``before_update`` hook updates another row of the table with
    Core, inside the flush and before the record's own UPDATE: same table, same verb,
    another key. The record's row rides on its own statement; the hook's change is
    logged by the capture triggers."""

    def touch_bob(mapper, connection, target) -> None:
        table = Player.__table__
        connection.execute(update(table).where(table.c.id == 2).values(score=5))

    seed(sessions, Player(id=1, name="Ann"), Player(id=2, name="Bob"))
    sent.clear()
    event.listen(Player, "before_update", touch_bob)
    try:
        with auditkeeper.acting_as(5), sessions() as s:
            s.get(Player, 1).score = 7
            s.commit()
    finally:
        event.remove(Player, "before_update", touch_bob)
    hook, ann = [s for s in sent if " UPDATE players SET score=" in f" {s}"]
    assert "WHERE players.id = " in hook and "players_id" not in hook  # Core's bind name
    if is_postgresql(engine):
        assert carried([hook]) == [] and carried([ann]) == ["UPDATE"]
    logged = {r.number_identifier: r.changed_objects["difference"] for r in rows(engine)[2:]}
    assert logged == {1: {"score": [0, 7]}, 2: {"score": [0, 5]}}


def test_a_nul_in_json_is_refused_by_name_on_postgresql(engine: Engine, sessions):
    """PostgreSQL's jsonb cannot hold U+0000 (the application's JSON column can): the
    flush, carried or not, names the field and saves nothing. SQLite keeps it."""
    seed(sessions, Gadget(id=1, label="plain"))
    postgresql = is_postgresql(engine)
    for change in (
        lambda s: s.add(Gadget(id=2, label="new", doc={"k": ["a\x00b"]})),
        lambda s: setattr(s.get(Gadget, 1), "doc", {"k\x00": 1}),  # carried
    ):
        with auditkeeper.acting_as(5), sessions() as s:
            change(s)
            if postgresql:
                with pytest.raises(auditkeeper.StoreError, match="U\\+0000"):
                    s.commit()
                s.rollback()
            else:
                s.commit()
    with Session(engine) as s:
        stored = {g.id: g.doc for g in s.scalars(select(Gadget))}
    if postgresql:
        assert stored == {1: None}
        assert len(rows(engine)) == 1
    else:
        assert stored == {1: {"k\x00": 1}, 2: {"k": ["a\x00b"]}}
        assert rows(engine)[-1].changed_objects["difference"] == {"doc": [None, {"k\x00": 1}]}


STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
"""What both dialects' logs hold (PostgreSQL's jsonb and text refuse U+0000: above)."""
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(STORABLE, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(STORABLE, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    label=st.text(STORABLE, max_size=200),
    amount=st.none() | st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    moment=st.none()
    | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
        lambda d: d.replace(tzinfo=dt.UTC)
    ),
    doc=JSON_VALUES,
)
def test_any_values_are_carried_as_the_flush_would_log_them(
    engine: Engine, sessions, sent: list[str], label: str, amount: Any, moment: Any, doc: Any
):
    """Hostile text, decimals, datetimes and nested JSON: the carried row is the one the
    flush computes from the same values."""
    with sessions() as s:  # the starting state, whatever an earlier example left
        gadget = s.get(Gadget, 1) or Gadget(id=1, label="start")
        gadget.label, gadget.amount, gadget.moment, gadget.doc = "start", None, None, None
        s.add(gadget)
        s.commit()
    logged = len(rows(engine))
    sent.clear()
    new = {"id": 1, "label": label, "amount": amount, "moment": moment, "doc": doc}
    with auditkeeper.acting_as(5), sessions() as s:
        gadget = s.get(Gadget, 1)
        gadget.label, gadget.amount, gadget.moment, gadget.doc = label, amount, moment, doc
        s.commit()
    plan = keeper._recorder.plan_for(Gadget.__mapper__)
    assert plan is not None
    old = {"id": 1, "label": "start", "amount": None, "moment": None, "doc": None}
    expected = build_row(plan, "update", old, new, (1,), dialect=engine.dialect.name)
    if expected is None:  # nothing changed: no row, nothing carried
        assert len(rows(engine)) == logged and carried(sent) == []
        return
    (row,) = rows(engine)[logged:]
    assert row.changed_objects == expected["changed_objects"]
    if is_postgresql(engine):
        assert carried(sent) == ["UPDATE"] and own_writes(sent) == 0
