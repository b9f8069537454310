"""The actor context: who acts, that it lands in the log, and that hostile values do not.

Every storage-facing test runs on SQLite and PostgreSQL (the ``database`` fixture).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

import auditkeeper
from auditkeeper import (
    MAX_CONTEXT_BYTES,
    MAX_EMAIL_LENGTH,
    MAX_REASON_LENGTH,
    Actor,
    ActorError,
    acting_as,
    acting_as_system,
    current_actor,
    reset_actor,
    set_actor,
)
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import Crm, build_crm
from auditkeeper.model import values
from tests._support import entries

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = [
    "",
    " ",
    "'",
    '"',
    "''",
    "'; DROP TABLE audit_log; --",
    '"; DROP TABLE "audit_log"; --',
    "Robert'); DELETE FROM audit_log WHERE ('1'='1",
    "%",
    "%s",
    "%(user_id)s",
    "100%_done",
    "\\",
    "\\\\",
    "C:\\temp\\new",
    "\\x00",
    "\\u0000",
    "line\nbreak\r\n\ttab",
    "emoji 🦆👩‍👩‍👧‍👦🏳️‍🌈",
    "RTL \u202eevil\u202c",
    "zero\u200bwidth",
    "ǅ ß ﬁ İ ς",
    "日本語のテキスト",
    "null",
    "None",
    "<script>alert(1)</script>",
    "{{7*7}} ${jndi:ldap://x}",
    "$1 $$ @@ ?? :name",
    "\ufeffBOM",
    "\U0010ffff",
]
"""Awkward strings that must be stored and read back exactly."""

# Text that a database can hold: no NUL, no lone surrogates (both are refused).
_STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
storable_text = st.one_of(st.sampled_from(HOSTILE), st.text(_STORABLE, max_size=200))


def _add_business(factory: sessionmaker[Session], crm: Crm, name: str = "Acme") -> int:
    with factory() as session:
        business = crm.Business(name=name)
        session.add(business)
        session.commit()
        return int(business.id)


def _last(crm: Crm, engine: Engine) -> Any:
    with Session(engine) as session:
        entry = crm.keeper.Entry
        return session.scalars(select(entry).order_by(entry.id.desc()).limit(1)).one()


# -- what lands in the row ------------------------------------------------------------------


def _alice_as_bob(users: Any, context: dict[str, Any]) -> Any:
    """Every actor column set: Bob acting as Alice, in a tenant, with a reason."""
    alice, bob, _ = users
    return acting_as(
        alice.id,
        email=alice.email,
        impersonator_user_id=bob.id,
        impersonator_email=bob.email,
        tenant_id="tenant-a",
        reason="Support ticket #12345",
        context=context,
    )


def test_acting_as_fills_every_actor_column(crm: Crm, engine: Engine, audited_sessions, users):
    alice, bob, _ = users
    context = {"ip": "203.0.113.7", "request_id": "req-1", "nested": {"list": [1, "two", None]}}
    with _alice_as_bob(users, context) as actor:
        assert current_actor() is actor
        assert actor.is_impersonated is True
        assert actor.is_system is False
        _add_business(audited_sessions, crm)
    row = _last(crm, engine)
    assert row.action == A.BUSINESS_CREATE
    assert row.user_id == alice.id
    assert row.user_email == "alice@example.com"
    assert row.is_impersonated is True
    assert row.impersonator_user_id == bob.id
    assert row.impersonator_email == "bob@example.com"
    assert row.tenant_id == "tenant-a"
    assert row.reason == "Support ticket #12345"
    assert row.context == context
    assert isinstance(row.transaction_id, uuid.UUID)
    assert row.created_at.tzinfo is not None
    assert abs(row.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


WRITE_PATHS = {
    "flush creation": lambda s, crm, key: s.add(crm.Business(id=key + 1, name="New")),
    "flush update": lambda s, crm, key: setattr(s.get(crm.Business, key), "name", "Renamed"),
    "flush deletion": lambda s, crm, key: s.delete(s.get(crm.Business, key)),
    "raw INSERT": lambda s, crm, key: s.execute(
        text(f"INSERT INTO businesses (id, name, is_active) VALUES ({key + 1}, 'Raw', true)")
    ),
    "raw UPDATE": lambda s, crm, key: s.execute(text("UPDATE businesses SET name = 'Raw'")),
    "raw DELETE": lambda s, crm, key: s.execute(text("DELETE FROM businesses")),
    "bulk INSERT": lambda s, crm, key: s.execute(
        insert(crm.Business), [{"id": key + 1, "name": "Bulk", "is_active": True}]
    ),
    "bulk UPDATE": lambda s, crm, key: s.execute(update(crm.Business).values(name="Bulk")),
    "bulk DELETE": lambda s, crm, key: s.execute(delete(crm.Business)),
}


@pytest.mark.parametrize("write", list(WRITE_PATHS))
def test_every_write_path_records_every_actor_column(
    crm: Crm, engine: Engine, audited_sessions, users, write: str
):
    """Whoever writes the row (the flush, a capture trigger row by row, a statement
    trigger set-based), it names the whole actor; only a trigger's marks its context."""
    alice, bob, _ = users
    key = _add_business(audited_sessions, crm)
    context = {"ip": "203.0.113.7", "nested": {"list": [1, "two", None]}}
    with _alice_as_bob(users, context), audited_sessions() as session:
        WRITE_PATHS[write](session, crm, key)
        session.commit()
    row = _last(crm, engine)
    assert row.number_identifier in (key, key + 1)
    assert (row.user_id, row.user_email, row.is_impersonated) == (alice.id, alice.email, True)
    assert (row.impersonator_user_id, row.impersonator_email) == (bob.id, bob.email)
    assert (row.tenant_id, row.reason) == ("tenant-a", "Support ticket #12345")
    marks = {k: v for k, v in row.context.items() if k == "captured_by"}
    assert row.context == context | marks
    if write.startswith("raw"):
        assert marks  # a trigger's row says so
    assert isinstance(row.transaction_id, uuid.UUID)
    assert abs(row.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_plain_user_is_not_impersonated(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    with acting_as(alice.id, email=alice.email):
        _add_business(audited_sessions, crm)
    row = _last(crm, engine)
    assert (row.user_id, row.user_email, row.is_impersonated) == (alice.id, alice.email, False)
    assert row.impersonator_user_id is None and row.impersonator_email is None
    assert row.tenant_id is None and row.reason is None and row.context is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"is_impersonated": True}, (True, None, None)),
        ({"impersonator_email": "bob@example.com"}, (True, None, "bob@example.com")),
        ({"impersonator_user_id": "bob"}, (True, "bob", None)),
        ({}, (False, None, None)),
    ],
)
def test_any_impersonation_detail_marks_the_actor_impersonated(options, expected):
    actor = Actor(user_id=1, **options)
    assert (actor.is_impersonated, actor.impersonator_user_id, actor.impersonator_email) == expected


def test_integer_tenant_is_stored_as_text(crm: Crm, engine: Engine, audited_sessions):
    with acting_as(tenant_id=42):
        _add_business(audited_sessions, crm)
    assert _last(crm, engine).tenant_id == "42"
    assert Actor(tenant_id=uuid.UUID(int=7)).tenant_id == str(uuid.UUID(int=7))  # type: ignore[arg-type]


def test_nesting_restores_the_outer_actor(crm: Crm, engine: Engine, audited_sessions, users):
    alice, bob, carol = users
    assert current_actor() is None
    with acting_as(alice.id, email=alice.email, reason="outer") as outer:
        _add_business(audited_sessions, crm, "1")
        with acting_as(bob.id, email=bob.email, reason="inner"):
            _add_business(audited_sessions, crm, "2")
            with acting_as_system(reason="cron"):
                _add_business(audited_sessions, crm, "3")
            _add_business(audited_sessions, crm, "4")
        assert current_actor() is outer
        _add_business(audited_sessions, crm, "5")
        with pytest.raises(RuntimeError), acting_as(carol.id, email=carol.email):
            raise RuntimeError("the block fails")
        assert current_actor() is outer  # restored after an exception too
        _add_business(audited_sessions, crm, "6")
    assert current_actor() is None
    _add_business(audited_sessions, crm, "7")
    rows = entries(crm, engine)
    assert [(r.current["name"], r.user_id, r.reason) for r in rows] == [
        ("1", alice.id, "outer"),
        ("2", bob.id, "inner"),
        ("3", None, "cron"),
        ("4", bob.id, "inner"),
        ("5", alice.id, "outer"),
        ("6", alice.id, "outer"),
        ("7", None, None),
    ]


def test_the_actor_is_read_when_the_session_flushes(
    crm: Crm, engine: Engine, audited_sessions, users
):
    """A change made inside the block but flushed after it is a system action, and the
    other way round: what counts is who is acting at flush time."""
    alice = users[0]
    with audited_sessions() as session:
        with acting_as(alice.id, email=alice.email):
            session.add(crm.Business(name="added inside, flushed outside"))
        session.commit()
        session.add(crm.Business(name="added outside, flushed inside"))
        with acting_as(alice.id, email=alice.email):
            session.commit()
    outside, inside = entries(crm, engine)
    assert (outside.user_id, outside.user_email, outside.is_impersonated) == (None, None, False)
    assert (inside.user_id, inside.user_email) == (alice.id, alice.email)


def test_nothing_is_attributed_after_the_block(crm: Crm, engine: Engine, audited_sessions, users):
    alice = users[0]
    with acting_as(alice.id, email=alice.email, tenant_id="t", reason="r", context={"a": 1}):
        _add_business(audited_sessions, crm)
    _add_business(audited_sessions, crm)
    row = _last(crm, engine)
    assert row.user_id is None
    assert row.user_email is None
    assert row.is_impersonated is False
    assert row.impersonator_user_id is None and row.impersonator_email is None
    assert row.tenant_id is None and row.reason is None and row.context is None


def test_set_actor_and_reset_actor_tokens(crm: Crm, engine: Engine, audited_sessions, users):
    alice, bob, _ = users
    first = set_actor(Actor(user_id=alice.id, email=alice.email))
    try:
        _add_business(audited_sessions, crm, "alice")
        second = set_actor(Actor(user_id=bob.id, email=bob.email))
        _add_business(audited_sessions, crm, "bob")
        cleared = set_actor(None)  # explicitly no actor: a system action
        _add_business(audited_sessions, crm, "none")
        reset_actor(cleared)
        assert current_actor() == Actor(user_id=bob.id, email=bob.email)
        reset_actor(second)
        assert current_actor() == Actor(user_id=alice.id, email=alice.email)
        with pytest.raises(RuntimeError):  # a token is used once
            reset_actor(second)
    finally:
        reset_actor(first)
    assert current_actor() is None
    assert [(r.current["name"], r.user_id) for r in entries(crm, engine)] == [
        ("alice", alice.id),
        ("bob", bob.id),
        ("none", None),
    ]


@pytest.mark.parametrize("wrong", [1, "alice", {"user_id": 1}, object()])
def test_set_actor_refuses_anything_but_an_actor(wrong):
    with pytest.raises(ActorError, match="Actor or None"):
        set_actor(wrong)
    assert current_actor() is None


def test_acting_as_system(crm: Crm, engine: Engine, audited_sessions):
    with acting_as_system(reason="nightly import", tenant_id=7, context={"job": "import"}) as a:
        assert a.is_system and not a.is_impersonated
        assert current_actor() is a
        _add_business(audited_sessions, crm)
    assert current_actor() is None
    row = _last(crm, engine)
    assert (row.user_id, row.user_email, row.is_impersonated) == (None, None, False)
    assert (row.reason, row.tenant_id, row.context) == ("nightly import", "7", {"job": "import"})


def test_is_system_means_no_user():
    assert Actor().is_system
    assert Actor(reason="x").is_system
    assert not Actor(user_id=0).is_system  # id 0 is a user, not "no user"
    assert not Actor(email="someone@example.com").is_system


# -- strict mode ----------------------------------------------------------------------------


@pytest.fixture
def strict(database) -> Iterator[tuple[Crm, Engine, sessionmaker[Session]]]:
    crm = build_crm(require_actor=True)
    engine = database.engine()
    crm.Base.metadata.create_all(engine)
    crm.keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    installation = crm.keeper.install(factory)
    yield crm, engine, factory
    installation.uninstall()


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)))


def test_strict_mode_refuses_changes_without_an_actor(strict):
    crm, engine, factory = strict
    assert crm.keeper.require_actor is True
    with factory() as session:
        session.add(crm.Business(name="nobody did this"))
        with pytest.raises(ActorError, match=r"no actor is set for changes to Business"):
            session.commit()
        session.rollback()
        # the session is usable again, and nothing was kept
        assert session.scalars(select(crm.Business)).all() == []
    assert _count(engine, crm.Business.__table__) == 0
    assert _count(engine, crm.keeper.table) == 0


def test_strict_mode_refuses_bulk_statements_without_an_actor(strict):
    crm, engine, factory = strict
    with factory() as session, acting_as_system():
        session.add(crm.Business(name="first"))
        session.commit()
    for statement in (
        update(crm.Business).values(name="renamed"),
        delete(crm.Business),
    ):
        refused = pytest.raises(ActorError, match=r"no actor is set for changes to Business")
        with factory() as session, refused:
            session.execute(statement)
    with factory() as session:
        assert session.scalars(select(crm.Business.name)).all() == ["first"]
    assert _count(engine, crm.keeper.table) == 1


def test_strict_mode_refusal_keeps_nothing_of_the_whole_transaction(strict):
    """An earlier flush of the same transaction, made with an actor, is rolled back too."""
    crm, engine, factory = strict
    with factory() as session:
        with acting_as_system():
            session.add(crm.Business(name="with an actor"))
            session.flush()
        session.add(crm.Business(name="without"))
        with pytest.raises(ActorError):
            session.commit()
    assert _count(engine, crm.Business.__table__) == 0
    assert _count(engine, crm.keeper.table) == 0


def test_strict_mode_accepts_users_and_the_system(strict):
    crm, engine, factory = strict
    with factory() as session:
        alice = crm.User(email="alice@example.com", full_name="Alice")  # not audited
        session.add(alice)
        session.commit()
        alice_id = alice.id
        with acting_as(alice.id, email=alice.email):
            session.add(crm.Business(name="by alice"))
            session.commit()
        with acting_as_system(reason="migration"):
            session.add(crm.Business(name="by the system"))
            session.commit()
        # a class whose verb is not audited (comment create) needs no actor
        with acting_as_system():
            lead = crm.Lead(name="Jane")
            session.add(lead)
            session.commit()
        session.add(crm.Comment(lead_id=lead.id, author_id=alice.id, body="hi"))
        session.commit()
        # after the block, the refusal is back
        session.add(crm.Business(name="late"))
        with pytest.raises(ActorError):
            session.commit()
        session.rollback()
    rows = entries(crm, engine)
    assert [(r.current["name"], r.user_id, r.reason) for r in rows] == [
        ("by alice", alice_id, None),
        ("by the system", None, "migration"),
        ("Jane", None, None),
    ]
    assert _count(engine, crm.Business.__table__) == 2
    assert _count(engine, crm.Comment.__table__) == 1


def test_strict_mode_set_actor_none_is_no_actor(strict):
    crm, engine, factory = strict
    token = set_actor(None)
    try:
        with factory() as session:
            session.add(crm.Business(name="x"))
            with pytest.raises(ActorError):
                session.commit()
    finally:
        reset_actor(token)
    assert _count(engine, crm.keeper.table) == 0


# -- deleted users ----------------------------------------------------------------------------


def test_deleting_users_keeps_their_log_rows(crm: Crm, engine: Engine, audited_sessions, users):
    alice, bob, carol = users
    with acting_as(
        alice.id,
        email=alice.email,
        impersonator_user_id=bob.id,
        impersonator_email=bob.email,
    ):
        business_id = _add_business(audited_sessions, crm, "by alice as bob")
    with acting_as(bob.id, email=bob.email):
        _add_business(audited_sessions, crm, "by bob")
    with (
        acting_as(carol.id, email=carol.email, impersonator_user_id=alice.id),
        audited_sessions() as session,
    ):
        session.get(crm.Business, business_id).name = "by carol as alice"
        session.commit()
    before = entries(crm, engine)

    with Session(engine) as session:
        session.delete(session.get(crm.User, alice.id))
        session.delete(session.get(crm.User, bob.id))
        session.commit()

    after = entries(crm, engine)
    assert [r.id for r in after] == [r.id for r in before]
    assert [r.changed_objects for r in after] == [r.changed_objects for r in before]
    summary = [
        (r.user_id, r.user_email, r.is_impersonated, r.impersonator_user_id, r.impersonator_email)
        for r in after
    ]
    assert summary == [
        (None, "alice@example.com", True, None, "bob@example.com"),
        (None, "bob@example.com", False, None, None),
        (carol.id, "carol@example.com", True, None, None),
    ]
    assert [r.created_at for r in after] == [r.created_at for r in before]
    assert [r.transaction_id for r in after] == [r.transaction_id for r in before]


# -- hostile values ---------------------------------------------------------------------------


@HYPOTHESIS
@given(reason=storable_text, email=storable_text, tenant=storable_text, note=storable_text)
def test_hostile_strings_are_stored_verbatim(
    crm: Crm, engine: Engine, audited_sessions, reason, email, tenant, note
):
    tenant = tenant[:255]
    with acting_as(
        email=email,
        impersonator_email=email,
        tenant_id=tenant,
        reason=reason,
        context={note: note, "note": [note, {"n": note}]},
    ):
        _add_business(audited_sessions, crm, note)
    row = _last(crm, engine)
    assert row.user_email == email
    assert row.impersonator_email == email
    assert row.tenant_id == tenant
    assert row.reason == reason
    assert row.context == {note: note, "note": [note, {"n": note}]}
    assert row.current["name"] == note


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    storable_text,
)
json_documents = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
    max_leaves=12,
)


@HYPOTHESIS
@given(context=st.dictionaries(storable_text, json_documents, max_size=6))
def test_hostile_contexts_are_stored_verbatim(crm: Crm, engine: Engine, audited_sessions, context):
    with acting_as_system(context=context):
        _add_business(audited_sessions, crm)
    assert _last(crm, engine).context == context


def test_the_longest_values_are_stored_whole(crm: Crm, engine: Engine, audited_sessions):
    unit = "'; DROP TABLE audit_log; -- 100% \\ 🦆 "
    reason = (unit * (MAX_REASON_LENGTH // len(unit) + 1))[:MAX_REASON_LENGTH]
    local = "o'brien%" * 8  # 64 characters
    email = f"{local}@{'d' * 251}.com"[:MAX_EMAIL_LENGTH]
    assert len(reason) == MAX_REASON_LENGTH and len(email) == MAX_EMAIL_LENGTH
    filler = "x" * (MAX_CONTEXT_BYTES - len(values.dumps({"k": ""})))
    context = {"k": filler}
    assert len(values.dumps(context).encode()) == MAX_CONTEXT_BYTES
    with acting_as(email=email, reason=reason, context=context):
        _add_business(audited_sessions, crm)
    row = _last(crm, engine)
    assert row.reason == reason
    assert row.user_email == email
    assert row.context == context
    # and the log table is still there and still holds everything
    assert len(entries(crm, engine)) == 1


def test_context_limit_counts_utf8_bytes_not_characters():
    prefix = len(values.dumps({"k": ""}))
    fits = {"k": "é" * ((MAX_CONTEXT_BYTES - prefix) // 2)}  # 2 bytes each
    Actor(context=fits)
    too_big = {"k": "é" * ((MAX_CONTEXT_BYTES - prefix) // 2 + 1)}
    with pytest.raises(ActorError, match="context"):
        Actor(context=too_big)


REFUSED = [
    pytest.param({"reason": "r" * (MAX_REASON_LENGTH + 1)}, "reason", id="reason-too-long"),
    pytest.param({"email": "e" * (MAX_EMAIL_LENGTH + 1)}, "email", id="email-too-long"),
    pytest.param(
        {"impersonator_email": "e" * (MAX_EMAIL_LENGTH + 1)},
        "impersonator_email",
        id="impersonator-email-too-long",
    ),
    pytest.param({"reason": "a\x00b"}, "reason", id="reason-nul"),
    pytest.param({"email": "a@b\x00.com"}, "email", id="email-nul"),
    pytest.param({"impersonator_email": "\x00"}, "impersonator_email", id="imp-email-nul"),
    pytest.param({"tenant_id": "t\x00"}, "tenant_id", id="tenant-nul"),
    pytest.param({"user_id": "u\x00"}, "user_id", id="user-id-nul"),
    pytest.param({"impersonator_user_id": "\x00"}, "impersonator_user_id", id="imp-id-nul"),
    pytest.param({"reason": "half \ud800 pair"}, "reason", id="reason-surrogate"),
    pytest.param({"email": "\udfff@example.com"}, "email", id="email-surrogate"),
    pytest.param({"tenant_id": "\ud83d"}, "tenant_id", id="tenant-surrogate"),
    pytest.param({"reason": b"bytes"}, "reason", id="reason-bytes"),
    pytest.param({"email": 42}, "email", id="email-not-text"),
    pytest.param({"user_id": True}, "user_id", id="user-id-bool"),
    pytest.param({"user_id": float("nan")}, "user_id", id="user-id-nan"),
    pytest.param({"tenant_id": "t" * 256}, "tenant_id", id="tenant-too-long"),
    pytest.param(
        {"context": {"k": "x" * MAX_CONTEXT_BYTES}}, "context", id="context-too-many-bytes"
    ),
    pytest.param(
        {"context": {f"k{i}": "v" * 100 for i in range(1000)}}, "context", id="context-many-keys"
    ),
    pytest.param({"context": ["ip", "1.2.3.4"]}, "context", id="context-list"),
    pytest.param({"context": "ip=1.2.3.4"}, "context", id="context-str"),
    pytest.param({"context": (("ip", "1.2.3.4"),)}, "context", id="context-pairs"),
    pytest.param({"context": 5}, "context", id="context-int"),
]


@pytest.mark.parametrize(("options", "field"), REFUSED)
def test_invalid_actor_values_are_refused_naming_the_field(options, field):
    with pytest.raises(ActorError, match=rf"\b{field}\b"):
        Actor(**options)
    with pytest.raises(ActorError, match=rf"\b{field}\b"), acting_as(**options):
        pytest.fail("the block must not run")  # pragma: no cover
    assert current_actor() is None


@pytest.mark.parametrize(
    "context",
    [
        pytest.param({"note": "a\x00b"}, id="nul-in-value"),
        pytest.param({"no\x00te": "x"}, id="nul-in-key"),
        pytest.param({"deep": [{"x": "\x00"}]}, id="nul-nested"),
        pytest.param({"note": "half \ud800 pair"}, id="surrogate-in-value"),
        pytest.param({"\udc80": "x"}, id="surrogate-in-key"),
        pytest.param({"thing": object()}, id="unsupported-object"),
    ],
)
def test_invalid_context_contents_are_refused_naming_the_field(context):
    with pytest.raises(ActorError, match=r"\bcontext\b"):
        Actor(context=context)


def test_nul_in_context_is_refused_before_anything_is_written(
    crm: Crm, engine: Engine, audited_sessions
):
    with pytest.raises(ActorError, match="context"), acting_as_system(context={"n": "\x00"}):
        _add_business(audited_sessions, crm)
    assert _count(engine, crm.Business.__table__) == 0


def test_the_context_is_a_snapshot_taken_when_the_actor_is_set(
    crm: Crm, engine: Engine, audited_sessions
):
    context: dict[str, Any] = {"step": 1}
    with acting_as_system(context=context) as actor:
        context["step"] = 2
        context["blob"] = "x" * (MAX_CONTEXT_BYTES + 1)  # never checked
        assert actor.context == {"step": 1}
        _add_business(audited_sessions, crm)
    assert _last(crm, engine).context == {"step": 1}


@settings(max_examples=30, deadline=None)
@given(
    text=st.text(_STORABLE, max_size=50),
    at=st.integers(min_value=0, max_value=50),
    bad=st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
    field=st.sampled_from(["reason", "email", "impersonator_email", "tenant_id"]),
)
def test_any_nul_or_lone_surrogate_is_refused(text, at, bad, field):
    value = text[:at] + bad + text[at:]
    with pytest.raises(ActorError, match=field):
        Actor(**{field: value})


@settings(max_examples=30, deadline=None)
@given(reason=st.text(_STORABLE, max_size=MAX_REASON_LENGTH))
def test_reasons_up_to_the_limit_are_accepted_unchanged(reason):
    assert Actor(reason=reason).reason == reason


def test_the_actor_is_immutable():
    actor = Actor(user_id=1, email="a@example.com")
    with pytest.raises(AttributeError):
        actor.user_id = 2  # type: ignore[misc]


def test_public_names():
    for name in ("acting_as", "acting_as_system", "set_actor", "reset_actor", "current_actor"):
        assert callable(getattr(auditkeeper, name))
