"""Every filter, alone and combined with every other, returns what an oracle in Python
says, in both orders and across pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from auditkeeper import InvalidFilterError, LogFilter, iter_entries, read_page
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import AuditLogEntityTypes as E
from auditkeeper.demo.crm import Crm, build_crm
from auditkeeper.query.filters import resolve
from tests.query._dataset import T0, build_rows, expected_ids, insert_rows


@pytest.fixture
def stored(crm: Crm, engine: Engine, users: list[Any]) -> list[dict[str, Any]]:
    return insert_rows(crm, engine, build_rows(users))


def filter_kinds(rows: list[dict[str, Any]], users: list[Any]) -> list[dict[str, Any]]:
    """One keyword set per kind of filter, chosen so that each selects some rows."""
    some_transaction = rows[30]["transaction_id"]
    return [
        {"entity_type": "lead"},
        {"entity_type": (E.BUSINESS, 3)},
        {"entity_type": E.LEAD, "record": 2},
        {"action": "LEAD_UPDATE"},
        {"action": (A.BUSINESS_CREATE, A.COMMENT_DELETE, A.LEAD_ASSIGN_TO_BUSINESS)},
        {"user_id": users[0].id},
        {"user_email": "dora@example.com"},
        {"impersonated": True},
        {"impersonated": False},
        {"impersonator_id": users[1].id},
        {"impersonator_email": users[1].email},
        {"tenant_id": "t1"},
        {"transaction_id": some_transaction},
        {"since": T0 + dt.timedelta(days=10)},
        {"until": T0 + dt.timedelta(days=30)},
        {"since": T0 + dt.timedelta(days=5), "until": T0 + dt.timedelta(days=25)},
        {"field": "status"},
        {"field": "odd.key"},
        {"field": 'say "hi"'},
        {"field": "score", "changed_to": 1},
        {"field": "name", "changed_to": None},
        {"field": "status", "changed_to": True},
        {"field": "name", "changed_to": "a"},
        {"field": "score", "changed_to": 2.5},
        {"text": "ALICE@"},
        {"text": 'say "h'},
        {"text": "odd.k"},
        {"text": "10.5"},
    ]


def compatible(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    if set(first) & set(second):
        return None
    combined = {**first, **second}
    if "record" in combined and isinstance(combined.get("entity_type"), tuple):
        return None
    if combined.get("impersonated") is False and (
        "impersonator_id" in combined or "impersonator_email" in combined
    ):
        return None
    if "changed_to" in combined and "field" not in combined:
        return None
    return combined


def walk(bind: Any, crm: Crm, log_filter: LogFilter, limit: int) -> list[int]:
    """Every id of the filter, page by page."""
    ids: list[int] = []
    cursor = None
    while True:
        page = read_page(bind, crm.keeper, log_filter, limit=limit, cursor=cursor)
        ids.extend(entry.id for entry in page)
        if page.next_cursor is None:
            return ids
        assert len(page) == limit
        cursor = page.next_cursor


def test_every_filter_alone_and_in_pairs_matches_the_oracle(
    crm: Crm, engine: Engine, users: list[Any], stored: list[dict[str, Any]]
) -> None:
    kinds = filter_kinds(stored, users)
    combos = list(kinds)
    for first, second in itertools.combinations(kinds, 2):
        combined = compatible(first, second)
        if combined is not None:
            combos.append(combined)
    assert len(combos) > 200
    wrong = []
    nonempty_singles = 0
    with Session(engine) as session:
        for number, keywords in enumerate(combos):
            for newest_first in (True, False):
                log_filter = LogFilter(**keywords, newest_first=newest_first)
                expected = expected_ids(stored, log_filter)
                limit = 7 if number % 2 else 1000
                got = walk(session, crm, log_filter, limit)
                if got != expected:
                    wrong.append((keywords, newest_first, got, expected))
                if number < len(kinds) and expected:
                    nonempty_singles += 1
    assert wrong == []
    assert nonempty_singles == 2 * len(kinds)  # every single filter selects some rows


def test_a_connection_works_as_well_as_a_session(
    crm: Crm, engine: Engine, stored: list[dict[str, Any]]
) -> None:
    log_filter = LogFilter(entity_type="LEAD", newest_first=False)
    with engine.connect() as connection:
        ids = [entry.id for entry in iter_entries(connection, crm.keeper, log_filter, batch_size=4)]
    assert ids == expected_ids(stored, log_filter)
    assert len(ids) > 8


def test_names_and_codes_resolve_alike() -> None:
    keeper = build_crm().keeper
    same = [
        LogFilter(entity_type="lead", action="lead_update"),
        LogFilter(entity_type=" LEAD ", action=5),
        LogFilter(entity_type=E.LEAD, action=A.LEAD_UPDATE),
        LogFilter(entity_type="2", action=["LEAD_UPDATE", 5]),
    ]
    resolved = [resolve(f, keeper) for f in same]
    assert {(r.entity_types, r.actions) for r in resolved} == {((2,), (5,))}
    assert len({r.fingerprint() for r in resolved}) == 1
    assert (
        resolve(LogFilter(), keeper).fingerprint()
        != resolve(LogFilter(newest_first=False), keeper).fingerprint()
    )


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"entity_type": "invoice"}, "unknown entity type 'invoice'; AuditLogEntityTypes has "),
        ({"entity_type": 9}, "unknown entity type code 9"),
        ({"action": "LEAD_ARCHIVE"}, "unknown action 'LEAD_ARCHIVE'; AuditLogActions has "),
        ({"action": E.LEAD}, "is not a member of AuditLogActions"),
        ({"action": []}, "an empty list of actions matches nothing"),
        ({"entity_type": "LEAD", "record": "x1"}, "integer keys; 'x1' is not an integer"),
        ({"entity_type": True}, "must be a name or a code, got True"),
    ],
)
def test_unknown_values_are_named(keywords: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFilterError) as error:
        resolve(LogFilter(**keywords), build_crm().keeper)
    assert message in str(error.value)
    if "unknown" in message:  # the error lists what is known
        assert "_CREATE (1)" in str(error.value) or "BUSINESS (1)" in str(error.value)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"since": dt.datetime(2026, 3, 1)}, "since=datetime.datetime(2026, 3, 1, 0, 0) has no"),
        ({"since": "2026-03-01"}, "since must be a datetime, got '2026-03-01'"),
        ({"since": T0, "until": T0}, "must be before until"),
        ({"record": 1}, "record=1 needs exactly one entity_type"),
        ({"record": 1, "entity_type": ["LEAD", "BUSINESS"]}, "needs exactly one entity_type"),
        ({"changed_to": "won"}, "changed_to needs field"),
        ({"field": ""}, "field must be a column name, got ''"),
        ({"transaction_id": "not-a-uuid"}, "transaction_id 'not-a-uuid' is not a UUID"),
        ({"impersonated": False, "impersonator_id": 2}, "impersonated=False contradicts"),
        ({"entity_type": 3.5}, "must be a name, a code or a list of them, got 3.5"),
    ],
)
def test_inconsistent_filters_are_refused_when_built(
    keywords: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidFilterError) as error:
        LogFilter(**keywords)
    assert message in str(error.value)


def test_a_transaction_id_may_be_given_as_text() -> None:
    value = uuid.uuid4()
    assert LogFilter(transaction_id=str(value)).transaction_id == value


def test_changed_to_compares_values_as_the_log_stores_them(
    crm: Crm, audited_sessions: Any, users: list[Any]
) -> None:
    """Decimal as its text, enums by value, a JSON null as null."""
    import decimal

    from auditkeeper.demo.crm import LeadStatus

    with audited_sessions() as session:
        acme = crm.Business(name="Acme", annual_revenue=decimal.Decimal("10.50"))
        lead = crm.Lead(name="Jane", email="jane@example.com")
        session.add_all([acme, lead])
        session.commit()
        lead.status = LeadStatus.WON
        lead.email = None
        session.commit()
        keeper = crm.keeper

        def ids(**keywords: Any) -> list[int]:
            return [e.id for e in read_page(session, keeper, LogFilter(**keywords))]

        assert len(ids(field="annual_revenue", changed_to=decimal.Decimal("10.50"))) == 1
        assert ids(field="annual_revenue", changed_to=10.5) == []
        assert len(ids(entity_type="LEAD", field="status", changed_to=LeadStatus.WON)) == 1
        assert len(ids(entity_type="LEAD", field="email", changed_to=None)) == 1
        assert len(ids(entity_type="LEAD", field="email")) == 2  # the creation, the update


def test_text_is_a_literal_substring_in_any_case(
    crm: Crm, engine: Engine, users: list[Any]
) -> None:
    """``%``, ``_`` and ``\\`` are characters, not wildcards; the text is found in values,
    field names, the e-mail and the reason, ignoring case."""
    base = build_rows(users, count=1)[0]
    texts = {
        "percent": {"name": "50% off"},
        "underscore": {"name": "snake_case"},
        "backslash": {"name": "C:\\temp"},
        "quoted": {"name": 'the "best" lead'},
        "plain": {"name": "Percentage offer"},
    }
    rows = []
    for label, current in texts.items():
        document = {"previous": None, "current": current, "difference": {}}
        rows.append({**base, "changed_objects": document, "reason": f"Ticket {label.upper()}"})
    stored = insert_rows(crm, engine, rows)
    ids = {label: row["id"] for label, row in zip(texts, stored, strict=True)}

    def found(text: str) -> set[str]:
        with Session(engine) as session:
            page = read_page(session, crm.keeper, LogFilter(text=text), limit=100)
        return {label for label, row_id in ids.items() if row_id in {e.id for e in page}}

    assert found("%") == {"percent"}
    assert found("_c") == {"underscore"}
    assert found("50_") == set()  # "_" is no single-character wildcard (50%)
    assert found("\\") == {"backslash"}
    assert found('"BEST"') == {"quoted"}
    assert found("ticket plain") == {"plain"}  # the reason, any case
    assert found("SNAKE") == {"underscore"}
    assert found("NAME") == set(texts)  # a field name
    assert found(base["user_email"].upper()) == set(texts)
    assert found("nowhere at all") == set()


def test_text_must_be_non_empty() -> None:
    with pytest.raises(InvalidFilterError, match="text must be a non-empty string"):
        LogFilter(text="")
