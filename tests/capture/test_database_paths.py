"""Changes the database makes or that come from elsewhere: cascades, other clients,
upserts, Core code, and (PostgreSQL) attempts to switch capture off."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import os
import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest
from sqlalchemy import DateTime, Engine, ForeignKey, Numeric, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, model_fixtures


class Kind(enum.IntEnum):
    OWNER = 1
    PET = 2
    TAG = 3
    STAMP = 4


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}


@auditkeeper.audited(entity_type=Kind.OWNER, **VERBS)
class Owner(Base):
    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


@auditkeeper.audited(entity_type=Kind.PET, **VERBS)
class Pet(Base):
    __tablename__ = "pets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))


@auditkeeper.audited(entity_type=Kind.TAG, **VERBS)
class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="SET NULL"))


@auditkeeper.audited(entity_type=Kind.STAMP, **VERBS)
class Stamp(Base):
    __tablename__ = "stamps"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    amount: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))


engine, sessions = model_fixtures(Base.metadata, keeper)


def log(engine: Engine) -> list:
    with Session(engine) as session:
        return list(session.scalars(select(keeper.Entry).order_by(keeper.Entry.id)))


def seed(sessions) -> None:
    with auditkeeper.acting_as_system(reason="seed"), sessions() as session:
        session.add(Owner(id=1, name="Ann"))
        session.flush()
        session.add_all([Pet(id=1, name="Rex", owner_id=1), Pet(id=2, name="Tom", owner_id=1)])
        session.add(Tag(id=1, label="vip", owner_id=1))
        session.commit()


def test_a_cascade_of_an_orm_delete_is_logged_with_its_actor(engine: Engine, sessions):
    seed(sessions)
    with auditkeeper.acting_as(42, email="ops@example.com"), sessions() as session:
        session.execute(text("SELECT 1"))
        session.delete(session.get(Owner, 1))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.entity_type, r.number_identifier, r.action) for r in rows) == [
        (Kind.OWNER, 1, Action.DELETE),
        (Kind.PET, 1, Action.DELETE),
        (Kind.PET, 2, Action.DELETE),
        (Kind.TAG, 1, Action.UPDATE),
    ]
    assert {r.user_email for r in rows} == {"ops@example.com"}
    assert len({r.transaction_id for r in rows}) == 1
    tag = next(r for r in rows if r.entity_type == Kind.TAG)
    assert tag.difference == {"owner_id": [1, None]}
    pet = next(r for r in rows if r.number_identifier == 1 and r.entity_type == Kind.PET)
    assert pet.previous == {"id": 1, "name": "Rex", "owner_id": 1}
    assert pet.current is None


def other_process(database, sql: str) -> None:
    """Run ``sql`` from another program: psql, or Python's own sqlite3 module."""
    if database.dialect == "postgresql":
        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        url = make_url(database.url).set(drivername="postgresql")
        command = [psql, url.render_as_string(hide_password=False), "-v", "ON_ERROR_STOP=1"]
        environment = {**os.environ, "PGOPTIONS": database.connect_args["options"]}
        subprocess.run([*command, "-c", sql], check=True, env=environment, capture_output=True)
        return
    path = make_url(database.url).database
    script = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA foreign_keys = ON')\n"
        "c.executescript(sys.argv[2]); c.commit()"
    )
    subprocess.run([sys.executable, "-c", script, path, sql], check=True, capture_output=True)


def test_another_process_is_logged_as_a_system_action(engine: Engine, sessions, database):
    seed(sessions)
    other_process(database, "UPDATE pets SET name = 'Rexy' WHERE id = 1; DELETE FROM tags;")
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.entity_type, r.action, r.difference) for r in rows] == [
        (Kind.PET, Action.UPDATE, {"name": ["Rex", "Rexy"]}),
        (Kind.TAG, Action.DELETE, {"id": [1, None], "label": ["vip", None], "owner_id": [1, None]}),
    ]
    assert all(r.user_id is None and r.user_email is None for r in rows)


def test_upsert_logs_new_and_existing_keys(engine: Engine, sessions, database):
    seed(sessions)
    dialect = postgresql if database.dialect == "postgresql" else sqlite
    statement = dialect.insert(Pet).values(
        [{"id": 1, "name": "Rex II", "owner_id": 1}, {"id": 3, "name": "Kit", "owner_id": 1}]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"name": statement.excluded.name}
    )
    with auditkeeper.acting_as(7, email="a@example.com"), sessions() as session:
        session.execute(statement)
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.number_identifier, r.action, r.user_email) for r in rows) == [
        (1, Action.UPDATE, "a@example.com"),
        (3, Action.CREATE, "a@example.com"),
    ]
    updated = next(r for r in rows if r.number_identifier == 1)
    assert updated.difference == {"name": ["Rex", "Rex II"]}


def test_core_code_on_an_installed_engine_carries_the_actor(engine: Engine, sessions):
    seed(sessions)
    installation = keeper.install(engine)
    try:
        with auditkeeper.acting_as(5, email="core@example.com"), engine.begin() as connection:
            connection.execute(update(Pet.__table__).values(name="Core"))
        with auditkeeper.acting_as(6, email="other@example.com"), engine.begin() as connection:
            connection.execute(text("UPDATE owners SET name = 'Anna'"))
    finally:
        installation.uninstall()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.entity_type, r.user_id, r.user_email) for r in rows] == [
        (Kind.PET, 5, "core@example.com"),
        (Kind.PET, 5, "core@example.com"),
        (Kind.OWNER, 6, "other@example.com"),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "WITH chosen AS (SELECT 1 AS id) UPDATE pets SET name = 'Max' "
        "WHERE id IN (SELECT id FROM chosen)",
        "/* nightly job */ UPDATE pets SET name = 'Max' WHERE id = 1",
        "-- nightly job\n  /* and a second comment */\nUPDATE pets SET name = 'Max' WHERE id = 1",
        "  with chosen as (select 1 as id) update pets set name = 'Max' "
        "where id in (select id from chosen)",
    ],
)
def test_raw_sql_behind_a_cte_or_comments_carries_the_actor(
    engine: Engine, sessions, statement: str
):
    """The first statement of a transaction that changes data tells the triggers who
    acts; one that starts with WITH, or with comments, is such a statement too."""
    seed(sessions)
    with auditkeeper.acting_as(5, email="job@example.com"), sessions() as session:
        session.execute(text(statement))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.entity_type, r.number_identifier, r.user_id, r.user_email) for r in rows] == [
        (Kind.PET, 1, 5, "job@example.com")
    ]


@POSTGRES_ONLY
def test_a_data_modifying_cte_carries_the_actor(engine: Engine, sessions):
    seed(sessions)
    with auditkeeper.acting_as(5), sessions() as session:
        changed = session.execute(
            text(
                "WITH moved AS (UPDATE pets SET name = 'Max' WHERE id = 1 RETURNING id) "
                "SELECT id FROM moved"
            )
        )
        assert changed.scalars().all() == [1]
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.number_identifier, r.user_id) for r in rows] == [(1, 5)]


def test_core_code_carries_the_actor_when_the_log_is_created_after_install(database):
    """The engine is installed before its tables and log exist: the statements that
    create them must not teach it that the database has no capture triggers."""
    engine = database.engine()
    installation = keeper.install(engine)
    try:
        Base.metadata.create_all(engine)
        keeper.create_all(engine)
        with auditkeeper.acting_as(5, email="core@example.com"), engine.begin() as connection:
            connection.execute(text("INSERT INTO owners (id, name) VALUES (1, 'Ann')"))
    finally:
        installation.uninstall()
    rows = log(engine)
    engine.dispose()
    assert [(r.entity_type, r.number_identifier, r.user_id) for r in rows] == [(Kind.OWNER, 1, 5)]


def test_a_change_made_by_an_after_flush_hook_is_logged_with_the_actor(engine: Engine, sessions):
    """An ``after_flush`` hook of the application's, run after auditkeeper's, changes
    another record with raw SQL: the flush's rows are written by then, and that change
    is logged too, once (on SQLite its triggers had left it pending under the flush's
    mark, and nothing took it)."""
    seed(sessions)

    def rename_tom(session: Session, flush_context: object) -> None:
        session.execute(text("UPDATE pets SET name = 'Thomas' WHERE id = 2"))

    with auditkeeper.acting_as(5), sessions() as session:
        event.listen(session, "after_flush", rename_tom)
        session.get(Pet, 1).name = "Max"
        session.flush()
        event.remove(session, "after_flush", rename_tom)
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.number_identifier, r.user_id, r.difference["name"][1]) for r in rows) == [
        (1, 5, "Max"),
        (2, 5, "Thomas"),
    ]
    with Session(engine) as session:
        assert session.get(Pet, 2).name == "Thomas"


def test_bulk_statements_are_logged_once(engine: Engine, sessions):
    with sessions() as session:
        session.add(Owner(id=1, name="Ann"))
        session.add_all([Pet(id=i, name=f"pet {i}", owner_id=1) for i in range(1, 1001)])
        session.commit()
    with sessions() as session:
        session.execute(update(Pet).values(name=Pet.name + "!"))
        session.commit()
    with sessions() as session:
        session.execute(Pet.__table__.delete())
        session.commit()
    rows = log(engine)
    pets = [r for r in rows if r.entity_type == Kind.PET]
    assert len(pets) == 3000
    assert sorted(r.number_identifier for r in pets if r.action == Action.UPDATE) == list(
        range(1, 1001)
    )
    assert len([r for r in pets if r.action == Action.DELETE]) == 1000
    # Bulk UPDATE and DELETE are left to the capture triggers: on PostgreSQL to the
    # table's statement triggers, which take the rows from its row trigger; on SQLite to
    # its row triggers, which log each row as it changes.
    by_trigger = {(r.context or {}).get("captured_by") for r in pets if r.action != Action.CREATE}
    postgresql = engine.dialect.name == "postgresql"
    assert by_trigger == {"database statement trigger" if postgresql else "database trigger"}


@pytest.fixture
def app_role(engine: Engine, database):
    """A login role with the rights an application has: DML on its tables, INSERT on the
    log; it owns nothing, as a production application role should not."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    schema = database.connect_args["options"].split("=", 1)[1]
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD 'app'"))
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {name}'))
        connection.execute(
            text(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {name}'
            )
        )
        connection.execute(text(f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "{schema}" TO {name}'))
    url = make_url(database.url).set(username=name, password="app", drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    yield lambda: psycopg.connect(conninfo, options=database.connect_args["options"])
    with engine.begin() as connection:
        connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {name}'))
        connection.execute(text(f'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA "{schema}" FROM {name}'))
        connection.execute(text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {name}'))
        connection.execute(text(f"DROP ROLE {name}"))


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "attempt",
    [
        "SET session_replication_role = replica",
        "ALTER TABLE pets DISABLE TRIGGER pets_audit_capture",
        "ALTER TABLE pets DISABLE TRIGGER ALL",
        "DROP TRIGGER pets_audit_capture ON pets",
        "DROP FUNCTION pets_audit_capture() CASCADE",
        "CREATE OR REPLACE FUNCTION pets_audit_capture() RETURNS trigger"
        " LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
    ],
)
def test_the_application_role_cannot_switch_capture_off(
    engine: Engine, sessions, app_role, attempt
):
    seed(sessions)
    with app_role() as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute(attempt)
    with app_role() as connection:
        connection.execute("UPDATE pets SET name = 'still logged' WHERE id = 1")
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.number_identifier, r.difference) for r in rows] == [
        (1, {"name": ["Rex", "still logged"]})
    ]


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "setting",
    [
        "SET auditkeeper.capture = 'off'",
        "SET LOCAL auditkeeper.actor = ''",
        "SET CONSTRAINTS ALL IMMEDIATE",
        "SET LOCAL auditkeeper.actor = '{}'",
        "RESET ALL",
    ],
)
def test_no_setting_silences_the_log(engine: Engine, sessions, app_role, setting):
    seed(sessions)
    with app_role() as connection, connection.transaction():
        connection.execute(setting)
        connection.execute("DELETE FROM tags")
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.entity_type, r.action) for r in rows] == [(Kind.TAG, Action.DELETE)]


@POSTGRES_ONLY
def test_a_malformed_actor_setting_refuses_the_change(engine: Engine, sessions, app_role):
    seed(sessions)
    refused = pytest.raises(psycopg.errors.InvalidTextRepresentation)
    with app_role() as connection, refused, connection.transaction():
        connection.execute("SET LOCAL auditkeeper.actor = 'not json'")
        connection.execute("DELETE FROM tags")
    with Session(engine) as session:
        assert session.scalar(select(Tag.label)) == "vip"
    assert [r for r in log(engine) if r.reason != "seed"] == []


def test_legacy_bulk_mappings_are_logged_by_the_triggers(engine: Engine, sessions):
    seed(sessions)
    with auditkeeper.acting_as(3, email="legacy@example.com"), sessions() as session:
        session.bulk_insert_mappings(Pet, [{"id": 5, "name": "Bo", "owner_id": 1}])
        session.bulk_update_mappings(Pet, [{"id": 1, "name": "Rex the 2nd"}])
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.number_identifier, r.action, r.difference, r.user_email) for r in rows] == [
        (
            5,
            Action.CREATE,
            {"id": [None, 5], "name": [None, "Bo"], "owner_id": [None, 1]},
            "legacy@example.com",
        ),
        (1, Action.UPDATE, {"name": ["Rex", "Rex the 2nd"]}, "legacy@example.com"),
    ]


def test_the_actor_does_not_outlive_its_transaction(engine: Engine, sessions, database):
    """After Ann's raw SQL commits, another program's change is nobody's (SQLite keeps the
    actor in a table row: it must be cleared before the commit)."""
    seed(sessions)
    with auditkeeper.acting_as(1, email="ann@example.com"), sessions() as session:
        session.execute(text("UPDATE pets SET name = 'Ann was here' WHERE id = 1"))
        session.commit()
    other_process(database, "UPDATE pets SET name = 'Nobody' WHERE id = 2;")
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.number_identifier, r.user_email) for r in rows] == [
        (1, "ann@example.com"),
        (2, None),
    ]


def test_a_failed_flush_leaves_capture_working(engine: Engine, sessions, database):
    """A flush that fails mid-way (SQLite: after marking the connection) rolls back its
    mark and its pending rows; the next raw change is logged at once, not kept pending."""
    seed(sessions)
    with sessions() as session:
        session.add(Pet(id=9, name="Orphan", owner_id=1))
        session.add(Pet(id=1, name="Duplicate key", owner_id=1))
        with pytest.raises(IntegrityError):
            session.commit()
    other_process(database, "UPDATE pets SET name = 'After' WHERE id = 2;")
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [(r.number_identifier, r.difference) for r in rows] == [(2, {"name": ["Tom", "After"]})]
    if database.dialect == "sqlite":  # no flush mark, no rows left pending
        with engine.connect() as connection:
            assert (
                connection.exec_driver_sql(
                    "SELECT count(*) FROM auditkeeper_capture_pending"
                ).scalar()
                == 0
            )


def test_raw_sql_after_a_flush_of_the_same_record_is_logged_too(engine: Engine, sessions):
    """The flush's row covers the flush's change only: a later raw change of the same
    field in the same transaction is a change of its own."""
    seed(sessions)
    with auditkeeper.acting_as(7), sessions() as session:
        session.get(Pet, 1).name = "Rexy"
        session.flush()
        session.execute(text("UPDATE pets SET name = 'Rex II' WHERE id = 1"))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert [r.difference for r in rows] == [
        {"name": ["Rex", "Rexy"]},
        {"name": ["Rexy", "Rex II"]},
    ]
    assert {r.user_id for r in rows} == {7}


def test_a_record_deleted_and_created_again_by_raw_sql_after_a_flush(engine: Engine, sessions):
    """Each insert and delete of one key in one transaction is its own change."""
    with auditkeeper.acting_as(7), sessions() as session:
        session.add(Owner(id=5, name="Eve"))
        session.flush()
        session.execute(text("DELETE FROM owners WHERE id = 5"))
        session.execute(text("INSERT INTO owners (id, name) VALUES (5, 'Eve II')"))
        session.commit()
    assert [(r.action, r.previous, r.current) for r in log(engine)] == [
        (Action.CREATE, None, {"id": 5, "name": "Eve"}),
        (Action.DELETE, {"id": 5, "name": "Eve"}, None),
        (Action.CREATE, None, {"id": 5, "name": "Eve II"}),
    ]


def test_the_cascades_of_each_flush_keep_that_flush_actor(engine: Engine, sessions):
    """Two flushes of two actors in one transaction: the database's cascades of the
    second are the second actor's, not those of the transaction's first rows."""
    seed(sessions)
    with sessions() as session:
        with auditkeeper.acting_as(1, email="first@example.com"):
            session.get(Owner, 1).name = "Anne"
            session.flush()
        with auditkeeper.acting_as(2, email="second@example.com"):
            session.delete(session.get(Owner, 1))
            session.flush()  # the database deletes the pets (ON DELETE CASCADE)
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.entity_type, r.number_identifier, r.action, r.user_email) for r in rows) == [
        (Kind.OWNER, 1, Action.UPDATE, "first@example.com"),
        (Kind.OWNER, 1, Action.DELETE, "second@example.com"),
        (Kind.PET, 1, Action.DELETE, "second@example.com"),
        (Kind.PET, 2, Action.DELETE, "second@example.com"),
        (Kind.TAG, 1, Action.UPDATE, "second@example.com"),
    ]


def test_raw_sql_without_an_actor_after_a_flush_is_a_system_action(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        with auditkeeper.acting_as(1, email="first@example.com"):
            session.get(Owner, 1).name = "Anne"
            session.flush()
        session.execute(text("UPDATE pets SET name = name || '!'"))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.entity_type, r.number_identifier, r.user_email) for r in rows) == [
        (Kind.OWNER, 1, "first@example.com"),
        (Kind.PET, 1, None),
        (Kind.PET, 2, None),
    ]
    assert all(r.user_id is None for r in rows if r.entity_type == Kind.PET)


@POSTGRES_ONLY
def test_changes_before_the_actor_changes_keep_their_actor(engine: Engine, sessions):
    """PostgreSQL's triggers run at commit: changes logged by them (a bulk statement,
    raw SQL) are logged before the next actor's statements, in the name of their own."""
    seed(sessions)
    with sessions() as session:
        with auditkeeper.acting_as(1, email="first@example.com"):
            session.execute(update(Pet).where(Pet.id == 1).values(name="Rexy"))
            session.execute(text("UPDATE tags SET label = 'gold' WHERE id = 1"))
        with auditkeeper.acting_as(2, email="second@example.com"):
            session.execute(update(Pet).where(Pet.id == 2).values(name="Tommy"))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.entity_type, r.number_identifier, r.user_email) for r in rows) == [
        (Kind.PET, 1, "first@example.com"),
        (Kind.PET, 2, "second@example.com"),
        (Kind.TAG, 1, "first@example.com"),
    ]


@POSTGRES_ONLY
def test_a_cascade_keeps_its_flush_actor_when_raw_sql_of_another_follows(engine: Engine, sessions):
    seed(sessions)
    with sessions() as session:
        with auditkeeper.acting_as(1, email="first@example.com"):
            session.delete(session.get(Owner, 1))
            session.flush()  # the database deletes the pets (ON DELETE CASCADE)
        with auditkeeper.acting_as(2, email="second@example.com"):
            session.execute(text("INSERT INTO owners (id, name) VALUES (9, 'Zed')"))
        session.commit()
    rows = [r for r in log(engine) if r.reason != "seed"]
    assert sorted((r.entity_type, r.number_identifier, r.user_email) for r in rows) == [
        (Kind.OWNER, 1, "first@example.com"),
        (Kind.OWNER, 9, "second@example.com"),
        (Kind.PET, 1, "first@example.com"),
        (Kind.PET, 2, "first@example.com"),
        (Kind.TAG, 1, "first@example.com"),
    ]


@POSTGRES_ONLY
def test_a_value_the_database_rewrote_is_logged_as_both_saw_it(engine: Engine, sessions):
    """The flush's row holds what it assigned; the trigger's, what was stored."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER shout BEFORE INSERT ON owners FOR EACH ROW EXECUTE FUNCTION shout()"
            )
        )
    with auditkeeper.acting_as(7), sessions() as session:
        session.add(Owner(id=3, name="ann"))
        session.commit()
    rows = log(engine)
    assert [(r.current, (r.context or {}).get("captured_by")) for r in rows] == [
        ({"id": 3, "name": "ann"}, None),
        ({"id": 3, "name": "ANN"}, "database trigger"),
    ]


def test_a_timestamp_or_number_changed_again_by_raw_sql_is_logged(engine: Engine, sessions):
    """Compared as instants and numbers: the flush's text and the database's differ in
    form (offsets, trailing zeros), not in value."""
    naive = dt.datetime(2026, 1, 1, 10, 0)  # a naive value in an aware column
    with auditkeeper.acting_as(7), sessions() as session:
        session.add(Stamp(id=1, at=naive, amount=decimal.Decimal("1.5")))
        session.commit()
    with auditkeeper.acting_as(7), sessions() as session:
        stamp = session.get(Stamp, 1)
        stamp.at = naive.replace(hour=11)
        stamp.amount = decimal.Decimal("2")
        session.flush()
        session.execute(text("UPDATE stamps SET amount = 3 WHERE id = 1"))
        later = (
            "at + interval '1 hour'"
            if engine.dialect.name == "postgresql"
            else "'2026-01-01 12:00:00.000000'"  # as SQLAlchemy stores it in SQLite
        )
        session.execute(text(f"UPDATE stamps SET at = {later} WHERE id = 1"))
        session.commit()
    rows = [r for r in log(engine) if r.entity_type == Kind.STAMP]
    assert [(r.action, sorted(r.difference)) for r in rows] == [
        (Action.CREATE, ["amount", "at", "id"]),
        (Action.UPDATE, ["amount", "at"]),
        (Action.UPDATE, ["amount"]),
        (Action.UPDATE, ["at"]),
    ]
    assert rows[1].difference["amount"] == ["1.50", "2.00"]
    assert rows[2].difference["amount"] == ["2.00", "3.00"]
    assert [(r.context or {}).get("captured_by") for r in rows] == [
        None,
        None,
        "database trigger",
        "database trigger",
    ]
