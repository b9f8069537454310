"""A deterministic log of varied rows, written straight into the table, and an oracle.

Rows are inserted with Core (the triggers allow inserts) so that every column takes
chosen values: times (with ties inside a transaction), users, deleted users, system
rows, impersonation, tenants and differences. ``matches`` evaluates a ``LogFilter`` in
Python, so query results can be compared with it for any combination of filters.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from typing import Any

from sqlalchemy import Engine

from auditkeeper import LogFilter
from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import AuditLogEntityTypes as E
from auditkeeper.demo.crm import Crm
from auditkeeper.query import UNSET

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

ACTIONS = {
    E.BUSINESS: (A.BUSINESS_CREATE, A.BUSINESS_UPDATE, A.BUSINESS_DELETE),
    E.LEAD: (A.LEAD_CREATE, A.LEAD_UPDATE, A.LEAD_DELETE, A.LEAD_ASSIGN_TO_BUSINESS),
    E.COMMENT: (A.COMMENT_UPDATE, A.COMMENT_DELETE),
}
FIELDS = ("name", "status", "score", "odd.key", 'say "hi"')
VALUES: tuple[Any, ...] = ("a", "b", 1, 2, True, None, 2.5, "10.50")


def build_rows(users: list[Any], count: int = 90, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` rows (without ids), oldest first; ``created_at`` ties inside a
    transaction."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    moment = T0
    transaction = uuid.UUID(int=rng.getrandbits(128), version=4)
    for number in range(count):
        if number % 3 == 0:  # a new unit of work: a new time and transaction id
            moment += dt.timedelta(hours=rng.randint(1, 30), microseconds=rng.randint(0, 999))
            transaction = uuid.UUID(int=rng.getrandbits(128), version=4)
        entity_type = rng.choice(list(ACTIONS))
        action = rng.choice(ACTIONS[entity_type])
        who = rng.choice(["alice", "bob", "carol", "system", "deleted"])
        user_id = email = None
        if who in ("alice", "bob", "carol"):
            user = users[["alice", "bob", "carol"].index(who)]
            user_id, email = user.id, user.email
        elif who == "deleted":
            email = "dora@example.com"
        impersonated = who != "system" and rng.random() < 0.2
        difference = {
            name: [rng.choice(VALUES), rng.choice(VALUES)]
            for name in rng.sample(FIELDS, rng.randint(0, 3))
        }
        rows.append(
            {
                "action": int(action),
                "entity_type": int(entity_type),
                "number_identifier": rng.randint(1, 4),
                "entity_key": None,
                "changed_objects": {
                    "previous": {k: v[0] for k, v in difference.items()},
                    "current": {k: v[1] for k, v in difference.items()},
                    "difference": difference,
                },
                "user_id": user_id,
                "user_email": email,
                "is_impersonated": impersonated,
                "impersonator_user_id": users[1].id if impersonated else None,
                "impersonator_email": users[1].email if impersonated else None,
                "tenant_id": rng.choice(["t1", "t2", None]),
                "reason": None,
                "transaction_id": transaction,
                "context": None,
                "created_at": moment,
            }
        )
    return rows


def insert_rows(crm: Crm, engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``rows`` one by one (ids in order); return them with their ids."""
    table = crm.keeper.table
    stored = []
    with engine.begin() as connection:
        for row in rows:
            new_id = connection.execute(table.insert().values(row)).inserted_primary_key[0]
            stored.append({**row, "id": new_id})
    return stored


def matches(row: dict[str, Any], f: LogFilter) -> bool:
    """Whether ``row`` satisfies ``f`` (names and codes of the CRM's enums only)."""

    def codes(value: Any, enum: Any) -> set[int]:
        items = value if isinstance(value, tuple) else (value,)
        return {int(i) if not isinstance(i, str) else int(enum[i.upper()]) for i in items}

    checks = [
        f.entity_type is None or row["entity_type"] in codes(f.entity_type, E),
        f.record is None or row["number_identifier"] == int(f.record),
        f.action is None or row["action"] in codes(f.action, A),
        f.user_id is None or row["user_id"] == f.user_id,
        f.user_email is None or row["user_email"] == f.user_email,
        f.impersonated is None or row["is_impersonated"] == f.impersonated,
        f.impersonator_id is None or row["impersonator_user_id"] == f.impersonator_id,
        f.impersonator_email is None or row["impersonator_email"] == f.impersonator_email,
        f.tenant_id is None or row["tenant_id"] == f.tenant_id,
        f.transaction_id is None or row["transaction_id"] == f.transaction_id,
        f.since is None or row["created_at"] >= f.since,
        f.until is None or row["created_at"] < f.until,
        f.field is None or f.field in row["changed_objects"]["difference"],
        f.text is None or contains_text(row, f.text),
    ]
    if f.field is not None and f.changed_to is not UNSET and all(checks):
        new = row["changed_objects"]["difference"][f.field][1]
        checks.append(new == f.changed_to and type(new) is type(f.changed_to))
    return all(checks)


def contains_text(row: dict[str, Any], text: str) -> bool:
    """The text filter's rule: in the document as JSON (where a quote is ``\\"``), the
    e-mail or the reason, ignoring ASCII case (the test texts span no JSON syntax)."""
    needle = text.lower()
    document = json.dumps(row["changed_objects"], ensure_ascii=False).lower()
    return json.dumps(needle)[1:-1] in document or any(
        needle in (row[name] or "").lower() for name in ("user_email", "reason")
    )


def expected_ids(rows: list[dict[str, Any]], f: LogFilter) -> list[int]:
    """The ids ``f`` selects, in its order."""
    chosen = [r for r in rows if matches(r, f)]
    chosen.sort(key=lambda r: (r["created_at"], r["id"]), reverse=f.newest_first)
    return [r["id"] for r in chosen]
