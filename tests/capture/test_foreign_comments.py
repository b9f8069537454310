"""Statements whose text another tool changes on the way to the database.

Tracers put comments in the statements an application sends: Datadog's database
monitoring puts one *before* the text, at the driver; an application's own
``before_cursor_execute`` listener may too, after auditkeeper's has run. On PostgreSQL
the capture triggers read auditkeeper's marks at the start of the query's text
(docs/raw-sql.md); with ``leading_comments=True`` they look past leading block comments,
and every change is still logged exactly once, by the same path as without the comment.
(``check`` reports a database that needs it: tests/capture/test_health.py.)
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, event, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import auditkeeper
from auditkeeper.capture.trigger_state import watch_engine
from auditkeeper.capture.triggers.common import FLUSHED, query_starts_with
from tests._support import POSTGRES_ONLY, Action, log_rows, model_fixtures


class Kind(enum.IntEnum):
    NOTE = 1


class Base(DeclarativeBase):
    pass


keeper = auditkeeper.Auditkeeper(
    Base.metadata, actions=Action, entity_types=Kind, leading_comments=True
)


@auditkeeper.audited(
    entity_type=Kind.NOTE, create=Action.CREATE, update=Action.UPDATE, delete=Action.DELETE
)
class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]
    pinned: Mapped[bool] = mapped_column(default=False)


engine, sessions = model_fixtures(Base.metadata, keeper)

# What tracers put first: Datadog's comment (sqlcommenter's form, a space after it), a
# W3C trace context, several comments with stars and line breaks between them, and one
# that looks like auditkeeper's own.
COMMENTS = {
    "datadog": "/*dddbs='notes-db',dde='prod',ddps='api',ddpv='1.2'*/ ",
    "traceparent": "/* traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' */",
    "several": "/* one ** */\n/**/\t/* three * four */ ",
    "lookalike": "/* auditkeeper-ish: flushed */ ",
}


@pytest.fixture(params=sorted(COMMENTS))
def prepended(engine: Engine, request: pytest.FixtureRequest) -> Iterator[str]:
    """A listener that puts a comment before every statement, registered after
    auditkeeper's own, so that the comment ends up first, as a driver-level tracer's
    does."""
    comment = COMMENTS[request.param]
    watch_engine(engine)  # auditkeeper's listeners first, as in an application's later use

    def prepend(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        return comment + statement, parameters

    event.listen(engine, "before_cursor_execute", prepend, retval=True)
    yield comment
    event.remove(engine, "before_cursor_execute", prepend)


def test_check_finds_nothing_to_report(engine: Engine, prepended: str) -> None:
    assert keeper.check(engine) == []


@POSTGRES_ONLY
def test_a_trigger_that_compares_the_prefix_alone_is_stale(engine: Engine) -> None:
    # What the triggers are without leading_comments: behind a tracer's comment, every
    # flushed change would be logged a second time.
    when = query_starts_with(FLUSHED)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER notes_audit_flushed ON notes")
        connection.exec_driver_sql(
            "CREATE CONSTRAINT TRIGGER notes_audit_flushed AFTER INSERT OR UPDATE OR DELETE "
            f"ON notes DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({when}) "
            "EXECUTE FUNCTION notes_audit_capture()"
        )
    assert [problem.kind for problem in keeper.check(engine)] == ["stale-trigger"]
    keeper.create_all(engine)
    assert keeper.check(engine) == []


def test_leading_comments_is_a_choice() -> None:
    with pytest.raises(auditkeeper.ConfigurationError, match="leading_comments must be"):
        auditkeeper.Auditkeeper(
            MetaData(),
            actions=Action,
            entity_types=Kind,
            leading_comments="yes",  # type: ignore[arg-type]
        )


def _rows(engine: Engine) -> list[Any]:
    return log_rows(engine, keeper)


def _kinds(engine: Engine) -> list[tuple[int, int, str | None]]:
    """Each row's action, record and ``captured_by``."""
    return [
        (row.action, row.number_identifier, (row.context or {}).get("captured_by"))
        for row in _rows(engine)
    ]


def test_flushed_changes_are_logged_once(engine: Engine, sessions: Any, prepended: str) -> None:
    with auditkeeper.acting_as(7), sessions() as session:
        session.add_all([Note(id=1, body="first"), Note(id=2, body="second")])
        session.commit()
        first, second = session.get_one(Note, 1), session.get_one(Note, 2)
        first.body, second.pinned = "first, edited", True  # two records: one statement
        session.commit()
        first.pinned = True  # one record: its row rides on its own statement
        session.commit()
        session.delete(first)
        session.delete(second)
        session.commit()
    created = [(Action.CREATE, 1), (Action.CREATE, 2)]
    logged = [(action, key) for action, key, _ in _kinds(engine)]
    assert logged[:2] == created or sorted(logged[:2]) == created
    assert logged[2:] == [
        (Action.UPDATE, 1),
        (Action.UPDATE, 2),
        (Action.UPDATE, 1),
        (Action.DELETE, 1),
        (Action.DELETE, 2),
    ]
    rows = _rows(engine)
    assert all(row.user_id == 7 for row in rows)
    # The flush's own rows (a creation's possibly written for it by the statement
    # trigger, unmarked), none by the triggers that log raw SQL.
    assert {(row.context or {}).get("captured_by") for row in rows} == {None}
    assert rows[-1].previous == {"id": 2, "body": "second", "pinned": True}


def test_a_bulk_statement_is_logged_once(
    engine: Engine, sessions: Any, prepended: str, database: Any
) -> None:
    with auditkeeper.acting_as(7), sessions() as session:
        session.add_all([Note(id=n, body=f"note {n}") for n in range(1, 4)])
        session.commit()
        session.execute(update(Note).where(Note.id > 1).values(pinned=True))
        session.commit()
    updates = [row for row in _rows(engine) if row.action == Action.UPDATE]
    assert sorted(row.number_identifier for row in updates) == [2, 3]
    assert all(row.user_id == 7 and row.difference == {"pinned": [False, True]} for row in updates)
    # PostgreSQL's statement trigger logs it set-based, as without the comment.
    by = "database statement trigger" if database.dialect == "postgresql" else "database trigger"
    assert {row.context["captured_by"] for row in updates} == {by}


def test_raw_sql_after_a_comment_is_still_logged_once(
    engine: Engine, sessions: Any, prepended: str
) -> None:
    with auditkeeper.acting_as(7), sessions() as session:
        session.add(Note(id=1, body="first"))
        session.commit()
        session.execute(text("UPDATE notes SET body = 'by hand' WHERE id = 1"))
        session.commit()
    assert _kinds(engine)[1:] == [(Action.UPDATE, 1, "database trigger")]


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "leading",
    [
        "/* unterminated /* nested */ */ ",  # PostgreSQL nests comments: not looked past
        "-- a line comment\n",
        "  ",
        "/* a */ SELECT 1; ",
    ],
)
def test_a_forged_mark_behind_other_text_is_still_checked(
    engine: Engine, sessions: Any, leading: str
) -> None:
    """Raw SQL claiming the flush's mark behind text the triggers do not look past, or
    behind a comment they do, has its change logged all the same: the mark is a claim
    the check at commit tests, never a way to skip the log."""
    with auditkeeper.acting_as(7), sessions() as session:
        session.add(Note(id=1, body="first"))
        session.commit()
        forged = "/* auditkeeper:flushed */ UPDATE notes SET body = 'forged' WHERE id = 1"
        session.connection().exec_driver_sql(leading + forged)
        session.commit()
    assert _kinds(engine)[1:] == [(Action.UPDATE, 1, "database trigger")]
    assert _rows(engine)[-1].current["body"] == "forged"


# The condition the triggers test, with the query given rather than the session's own.
def _finds(engine: Engine, marks: tuple[str, ...], query: str) -> bool:
    condition = query_starts_with(*marks, behind_comments=True).replace(
        "current_query()", "CAST(%(query)s AS text)"
    )
    with engine.connect() as connection:
        return bool(connection.exec_driver_sql(f"SELECT {condition}", {"query": query}).scalar())


# What a tracer writes: comments whose text holds neither ``*/`` (which ends one) nor
# ``/*`` (which PostgreSQL would nest, as it would a text ending in ``/``), each followed
# by any white space. None starts as auditkeeper's own marks do.
_COMMENT_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00")).filter(
    lambda body: (
        "*/" not in body
        and "/*" not in body
        and not body.endswith("/")
        and not body.startswith(" auditkeeper:")
    )
)
_TRACERS = st.lists(
    st.tuples(_COMMENT_TEXT, st.sampled_from(["", " ", "\n", " \t\r\n"])), max_size=3
)


@POSTGRES_ONLY
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(comments=_TRACERS, rest=st.text(st.characters(codec="utf-8", exclude_characters="\x00")))
def test_a_mark_is_found_behind_any_comments_and_nowhere_else(
    engine: Engine, comments: list[tuple[str, str]], rest: str
) -> None:
    leading = "".join(f"/*{body}*/{space}" for body, space in comments)
    announcement = "/* auditkeeper:statement-capture:0123abcdef */"
    # One mark looked for, then either of two (the capture trigger's WHEN).
    for marks in ((FLUSHED,), (announcement,), (announcement, FLUSHED)):
        for mark in marks:
            assert _finds(engine, marks, leading + mark + rest)
            # Text that is not a comment before the mark hides it.
            assert not _finds(engine, marks, leading + "SELECT 1; " + mark + rest)
        if not any(mark in rest for mark in marks):
            assert not _finds(engine, marks, leading + rest)
