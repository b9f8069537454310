"""Tables whose names leave no room for a suffix within PostgreSQL's 63 bytes.

PostgreSQL cuts longer identifiers, so the triggers and functions made for such a table
shared one name and replaced one another, and raw SQL on the table went unlogged.
Their names are now shortened with a hash (``model.identifiers``); SQLite keeps any
length, and its names are unchanged."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Engine, String, delete, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from tests._support import POSTGRES_ONLY, Action, log_rows, model_fixtures

# 55 bytes each, so that "<name>_audit_capture" is past 63 and the two differ only at
# the end; the third is shorter in characters than in bytes.
SHARED = "customer_relationship_management_subscription_renewal_"
RENEWALS = SHARED + "one"
REMINDERS = SHARED + "two"
NOTICES = "überprüfung_der_kündigungsfristen_für_verlängerungen_"


class Kind(enum.IntEnum):
    RENEWAL = 1
    REMINDER = 2
    NOTICE = 3


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)
VERBS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE}


@auditkeeper.audited(entity_type=Kind.RENEWAL, **VERBS)
class Renewal(Base):
    __tablename__ = RENEWALS
    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[str] = mapped_column(String, default="")


@auditkeeper.audited(entity_type=Kind.REMINDER, **VERBS)
class Reminder(Base):
    __tablename__ = REMINDERS
    id: Mapped[int] = mapped_column(primary_key=True)
    days: Mapped[int] = mapped_column(default=0)
    channel: Mapped[str] = mapped_column(String, default="")


@auditkeeper.audited(entity_type=Kind.NOTICE, **VERBS)
class Notice(Base):
    __tablename__ = NOTICES
    id: Mapped[int] = mapped_column(primary_key=True)
    text_: Mapped[str] = mapped_column("text", String, default="")


engine, sessions = model_fixtures(Base.metadata, keeper)


def _raw(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_raw_sql_on_each_table_is_logged_by_its_own_triggers(engine: Engine) -> None:
    assert keeper.check(engine) == []
    _raw(
        engine,
        f"INSERT INTO \"{RENEWALS}\" (id, plan) VALUES (1, 'gold')",
        f"INSERT INTO \"{REMINDERS}\" (id, days, channel) VALUES (1, 30, 'mail')",
        f"INSERT INTO \"{NOTICES}\" (id, text) VALUES (1, 'due')",
    )
    _raw(
        engine,
        f"UPDATE \"{RENEWALS}\" SET plan = 'silver'",
        f'DELETE FROM "{REMINDERS}"',
        f"UPDATE \"{NOTICES}\" SET text = 'overdue'",
    )
    logged = [
        (row.entity_type, row.action, row.previous, row.current, row.context)
        for row in log_rows(engine, keeper)
    ]
    mark = {"captured_by": "database trigger"}
    assert logged == [
        (Kind.RENEWAL, Action.CREATE, None, {"id": 1, "plan": "gold"}, mark),
        (Kind.REMINDER, Action.CREATE, None, {"id": 1, "days": 30, "channel": "mail"}, mark),
        (Kind.NOTICE, Action.CREATE, None, {"id": 1, "text": "due"}, mark),
        (Kind.RENEWAL, Action.UPDATE, {"id": 1, "plan": "gold"}, {"id": 1, "plan": "silver"}, mark),
        (Kind.REMINDER, Action.DELETE, {"id": 1, "days": 30, "channel": "mail"}, None, mark),
        (Kind.NOTICE, Action.UPDATE, {"id": 1, "text": "due"}, {"id": 1, "text": "overdue"}, mark),
    ]


def test_flushes_and_bulk_statements_are_logged_once(engine: Engine, sessions: Any) -> None:
    with auditkeeper.acting_as(1), sessions() as session:
        session.add_all([Renewal(id=1), Reminder(id=1), Notice(id=1)])
        session.commit()
        session.execute(update(Reminder).values(days=Reminder.days + 7))
        session.execute(delete(Renewal))
        session.commit()
    logged = [(row.entity_type, row.action, row.user_id) for row in log_rows(engine, keeper)]
    assert logged == [
        (Kind.RENEWAL, Action.CREATE, 1),
        (Kind.REMINDER, Action.CREATE, 1),
        (Kind.NOTICE, Action.CREATE, 1),
        (Kind.REMINDER, Action.UPDATE, 1),
        (Kind.RENEWAL, Action.DELETE, 1),
    ]


@POSTGRES_ONLY
def test_the_triggers_an_earlier_version_left_are_replaced(engine: Engine) -> None:
    """An earlier version's trigger got the cut name; making the triggers anew drops it,
    so that no change is logged twice."""
    cut = (RENEWALS + "_audit_capture").encode()[:63].decode()
    _raw(
        engine,
        f'CREATE CONSTRAINT TRIGGER "{cut}" AFTER INSERT ON "{RENEWALS}" '
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f'EXECUTE FUNCTION "{_function(engine, RENEWALS)}"()',
    )
    keeper.create_all(engine)
    with engine.connect() as connection:
        names = connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
            {"t": f'"{RENEWALS}"'},
        ).scalars()
        assert cut not in set(names)
    _raw(engine, f"INSERT INTO \"{RENEWALS}\" (id, plan) VALUES (2, 'bronze')")
    assert len(log_rows(engine, keeper)) == 1


def _function(engine: Engine, table: str) -> str:
    """The capture function its row trigger runs."""
    with engine.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT tgfoid::regproc::text FROM pg_trigger "
                    "WHERE tgrelid = to_regclass(:t) AND tgname LIKE '%\\_audit\\_capture'"
                ),
                {"t": f'"{table}"'},
            ).scalar_one()
        ).strip('"')
