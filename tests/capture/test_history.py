"""The seed's "SQL Stored Procedures" examples, through the Python API (both dialects)."""

from __future__ import annotations

import datetime as dt
import enum

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import auditkeeper
from auditkeeper import EntityHistoryItem
from tests._support import POSTGRES_ONLY


class Action(enum.IntEnum):
    USER_CREATE = 1
    USER_UPDATE = 2
    USER_DELETE = 3
    USER_UNLOCK = 4


class EntityType(enum.IntEnum):
    USER = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=EntityType)


@auditkeeper.audited(
    entity_type=EntityType.USER,
    create=Action.USER_CREATE,
    update=Action.USER_UPDATE,
    delete=Action.USER_DELETE,
    full_name="Shesha.Authorization.Users.User",
)
class Person(Base):
    __tablename__ = "Core_Persons"
    id: Mapped[int] = mapped_column("Id", primary_key=True)
    name: Mapped[str] = mapped_column("Name")
    is_locked: Mapped[bool] = mapped_column("IsLocked", default=False)
    failed_logins: Mapped[int] = mapped_column("FailedLogins", default=0)


USER = "Shesha.Authorization.Users.User"


@pytest.fixture
def people(engine: Engine) -> list[int]:
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine)
    installation = keeper.install(factory)
    # Audited like any change (on PostgreSQL the capture triggers would log them anyway);
    # log() leaves these rows out.
    with auditkeeper.acting_as_system(reason=SETUP), factory() as session:
        rows = [Person(name=f"p{i}", is_locked=i % 2 == 0) for i in range(6)]
        session.add_all(rows)
        session.commit()
        ids = [p.id for p in rows]
    installation.uninstall()
    return ids


SETUP = "test set-up"


def log(engine: Engine) -> list:
    """The rows the test wrote (not those of the people fixture)."""
    with Session(engine) as session:
        rows = session.scalars(select(keeper.Entry).order_by(keeper.Entry.id))
        return [r for r in rows if r.reason != SETUP]


def test_unlock_all_users_with_property_data(engine: Engine, people: list[int]) -> None:
    with Session(engine) as session:
        locked = session.scalars(select(Person.id).where(Person.is_locked)).all()
        changes = [
            EntityHistoryItem(
                1, pid, USER, "IsLocked", "System.Boolean", "false", "true", "User unlocked"
            )
            for pid in locked
        ]
        written = keeper.add_entity_history_events(
            session, changes, reason="Support ticket #12345: Unlock all users", user_id=1
        )
        session.commit()
    assert written == len(locked) == 3
    rows = log(engine)
    assert [r.number_identifier for r in rows] == list(locked)
    for row in rows:
        assert row.action == Action.USER_UPDATE
        assert row.changed_objects == {
            "previous": None,
            "current": None,
            "difference": {"IsLocked": [True, False]},
            "descriptions": {"IsLocked": "User unlocked"},
        }
        assert row.reason == "Support ticket #12345: Unlock all users"
        assert row.user_id == 1 and row.tenant_id is None
    assert len({r.transaction_id for r in rows}) == 1
    assert all(abs(r.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1) for r in rows)


def test_unlock_all_users_without_property_data(engine: Engine, people: list[int]) -> None:
    changes = [
        EntityHistoryItem(1, pid, USER, None, None, None, None, "User unlocked")
        for pid in people[:2]
    ]
    with Session(engine) as session:
        keeper.add_entity_history_events(
            session, changes, reason="Support ticket #12345", user_id=1
        )
        session.commit()
    rows = log(engine)
    assert [r.changed_objects for r in rows] == [
        {
            "previous": None,
            "current": None,
            "difference": {},
            "event": {"name": "User unlocked", "description": None},
        }
    ] * 2


def test_single_event_with_and_without_property(engine: Engine, people: list[int]) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    with engine.begin() as connection:
        keeper.add_single_entity_history_event(
            connection,
            change_time=moment,
            reason="Support ticket #12345: Unlock all users",
            tenant_id=None,
            user_id=1,
            change_type=1,
            entity_id=123456,
            entity_type_full_name=USER,
            property_name="IsLocked",
            property_type_full_name="System.Boolean",
            new_value="false",
            old_value="true",
            description="User unlocked",
        )
        keeper.add_single_entity_history_event(
            connection,
            change_type=1,
            entity_id="123456",
            entity_type_full_name="Person",  # the class name works when unique
            description="User unlocked",
            tenant_id=7,
        )
    first, second = log(engine)
    assert first.created_at == moment and first.number_identifier == 123456
    assert first.difference == {"IsLocked": [True, False]}
    assert second.changed_objects["event"] == {"name": "User unlocked", "description": None}
    assert second.tenant_id == "7"


def test_created_and_deleted_with_values(engine: Engine, people: list[int]) -> None:
    with engine.begin() as connection:
        keeper.add_entity_history_events(
            connection,
            [
                EntityHistoryItem(0, 900, USER, "FailedLogins", "System.Int32", "3", None),
                EntityHistoryItem(2, 901, USER, "Name", "System.String", None, "gone"),
            ],
        )
    created, deleted = log(engine)
    assert (created.action, created.difference) == (Action.USER_CREATE, {"FailedLogins": [None, 3]})
    assert (deleted.action, deleted.difference) == (Action.USER_DELETE, {"Name": ["gone", None]})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (EntityHistoryItem(3, 1, USER), "change type 3"),
        (EntityHistoryItem(1, 1, "Nope.Thing"), "unknown entity type 'Nope.Thing'"),
        (EntityHistoryItem(1, 1, USER, "Missing", None, "1", "0"), "no audited property 'Missing'"),
        (
            EntityHistoryItem(1, 1, USER, "IsLocked", None, "maybe", "true"),
            "'maybe' is not a valid bool",
        ),
        (EntityHistoryItem(1, 1, USER, "FailedLogins", None, "x", "1"), "'x' is not a valid int"),
        (EntityHistoryItem(1, "abc", USER, None, None, None, None, "d"), "must be an integer"),
    ],
)
def test_bad_input_writes_nothing(engine: Engine, people: list[int], item, message: str) -> None:
    good = EntityHistoryItem(1, people[0], USER, None, None, None, None, "fine")
    with Session(engine) as session:
        with pytest.raises(auditkeeper.CaptureError, match=message):
            keeper.add_entity_history_events(session, [good, item])
        session.commit()
    assert log(engine) == []


def test_orm_rows_match_procedure_rows(engine: Engine, people: list[int]) -> None:
    """Mixed-case column names, as in the seed's tables, in both kinds of rows."""
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(engine)
    installation = keeper.install(factory)
    try:
        with factory() as session:
            person = session.get(Person, people[0])
            person.is_locked = False
            session.commit()
            keeper.add_single_entity_history_event(
                session,
                change_type=1,
                entity_id=people[0],
                entity_type_full_name=USER,
                property_name="is_locked",
                new_value="false",
                old_value="true",
            )
            session.commit()
    finally:
        installation.uninstall()
    orm_row, procedure_row = log(engine)
    assert orm_row.difference == procedure_row.difference == {"IsLocked": [True, False]}
    assert orm_row.action == procedure_row.action == Action.USER_UPDATE


# -- the same, in SQL (PostgreSQL) --------------------------------------------------

UNLOCK_ALL_WITH_PROPERTY = """
SELECT audit_add_entity_history_events(
    NULL, 'Support ticket #12345: Unlock all users', NULL, 1,
    ARRAY(SELECT ROW(1, "Id", 'Shesha.Authorization.Users.User', 'IsLocked', 'System.Boolean',
                     'false', 'true', 'User unlocked')::audit_entity_history_item
          FROM "Core_Persons" WHERE "IsLocked" ORDER BY "Id"))
"""

UNLOCK_ALL_WITHOUT_PROPERTY = """
SELECT audit_add_entity_history_events(
    NULL, 'Support ticket #12345: Unlock all users', NULL, 1,
    ARRAY(SELECT ROW(1, "Id", 'Shesha.Authorization.Users.User', NULL, NULL, NULL, NULL,
                     'User unlocked')::audit_entity_history_item
          FROM "Core_Persons" WHERE "IsLocked" ORDER BY "Id"))
"""

UNLOCK_ONE_WITH_PROPERTY = """
SELECT audit_add_single_entity_history_event(NULL, 'Support ticket #12345: Unlock all users',
    NULL, 1, 1, 123456, 'Shesha.Authorization.Users.User', 'IsLocked', 'System.Boolean',
    'false', 'true', 'User unlocked')
"""

UNLOCK_ONE_WITHOUT_PROPERTY = """
SELECT audit_add_single_entity_history_event(NULL, 'Support ticket #12345: Unlock all users',
    NULL, 1, 1, 123456, 'Shesha.Authorization.Users.User', NULL, NULL, NULL, NULL, 'User unlocked')
"""


def sql_rows(engine: Engine, sql: str) -> list:
    with engine.begin() as connection:
        connection.exec_driver_sql(sql)
    return log(engine)


def python_rows(engine: Engine, items: list[EntityHistoryItem], **options) -> list:
    with engine.begin() as connection:
        keeper.add_entity_history_events(connection, items, **options)
    return log(engine)


@POSTGRES_ONLY
@pytest.mark.parametrize("with_property", [True, False])
def test_sql_unlock_all_matches_the_python_api(database, engine, people, with_property) -> None:
    sql_rows(engine, UNLOCK_ALL_WITH_PROPERTY if with_property else UNLOCK_ALL_WITHOUT_PROPERTY)
    with Session(engine) as session:
        locked = session.scalars(
            select(Person.id).where(Person.is_locked).order_by(Person.id)
        ).all()
    items = [
        EntityHistoryItem(
            1,
            pid,
            USER,
            *(("IsLocked", "System.Boolean", "false", "true") if with_property else (None,) * 4),
            "User unlocked",
        )
        for pid in locked
    ]
    all_rows = python_rows(
        engine, items, reason="Support ticket #12345: Unlock all users", user_id=1
    )
    from_sql, from_python = all_rows[: len(locked)], all_rows[len(locked) :]
    assert len(from_sql) == len(from_python) == 3
    for a, b in zip(from_sql, from_python, strict=True):
        for column in (
            "action",
            "entity_type",
            "number_identifier",
            "entity_key",
            "changed_objects",
            "user_id",
            "reason",
            "tenant_id",
            "is_impersonated",
        ):
            assert getattr(a, column) == getattr(b, column), column
    assert len({r.transaction_id for r in from_sql}) == 1


@POSTGRES_ONLY
@pytest.mark.parametrize("sql", [UNLOCK_ONE_WITH_PROPERTY, UNLOCK_ONE_WITHOUT_PROPERTY])
def test_sql_unlock_one(database, engine, people, sql) -> None:
    (row,) = sql_rows(engine, sql)
    assert row.number_identifier == 123456 and row.user_id == 1
    if "IsLocked" in sql:
        assert row.difference == {"IsLocked": [True, False]}
        assert row.changed_objects["descriptions"] == {"IsLocked": "User unlocked"}
    else:
        assert row.changed_objects["event"] == {"name": "User unlocked", "description": None}


@POSTGRES_ONLY
def test_sql_change_time_and_tenant(database, engine, people) -> None:
    (row,) = sql_rows(
        engine,
        "SELECT audit_add_single_entity_history_event('2024-05-01T12:00:00+00', 'r', '7', NULL, "
        "0, '5', 'Person', 'FailedLogins', 'System.Int32', '3', NULL, NULL)",
    )
    assert row.created_at == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert row.tenant_id == "7" and row.user_id is None
    assert row.action == Action.USER_CREATE and row.difference == {"FailedLogins": [None, 3]}


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("3, '1', 'Person', NULL, NULL, NULL, NULL, 'x'", "change type 3 is not"),
        ("1, '1', 'Nope.Thing', NULL, NULL, NULL, NULL, 'x'", "unknown entity type 'Nope.Thing'"),
        ("1, '1', 'Person', 'Missing', NULL, '1', '0', NULL", "has no audited property 'Missing'"),
        ("1, '1', 'Person', 'IsLocked', NULL, 'maybe', 'true', NULL", "is not a valid bool value"),
        ("1, 'abc', 'Person', NULL, NULL, NULL, NULL, 'x'", "must be an integer"),
    ],
)
def test_sql_bad_input_writes_nothing(database, engine, people, arguments, message) -> None:
    from sqlalchemy.exc import DBAPIError

    sql = f"SELECT audit_add_single_entity_history_event(NULL, NULL, NULL, NULL, {arguments})"
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match=message):
            connection.exec_driver_sql(sql)
        connection.rollback()
    assert log(engine) == []
