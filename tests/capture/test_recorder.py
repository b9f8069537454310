"""The flush hooks: what each verb records, in one statement per flush."""

from __future__ import annotations

import decimal

from sqlalchemy import Engine

from auditkeeper.demo.crm import AuditLogActions as A
from auditkeeper.demo.crm import AuditLogEntityTypes as T
from auditkeeper.demo.crm import Crm
from tests._support import StatementCounter, entries


def test_create_update_delete_rows(crm: Crm, engine: Engine, audited_sessions, users) -> None:
    with audited_sessions() as session:
        business = crm.Business(name="Acme", annual_revenue=decimal.Decimal("10.50"))
        session.add(business)
        session.commit()
        business.name = "Acme Ltd"
        session.commit()
        session.delete(business)
        session.commit()
        business_id = business.id

    rows = entries(crm, engine)
    assert [(r.action, r.entity_type, r.number_identifier) for r in rows] == [
        (A.BUSINESS_CREATE, T.BUSINESS, business_id),
        (A.BUSINESS_UPDATE, T.BUSINESS, business_id),
        (A.BUSINESS_DELETE, T.BUSINESS, business_id),
    ]
    created, updated, deleted = rows
    assert created.previous is None
    assert created.current["name"] == "Acme"
    assert created.current["annual_revenue"] == "10.50"
    assert updated.difference == {"name": ["Acme", "Acme Ltd"]}
    assert updated.previous["name"] == "Acme" and updated.current["name"] == "Acme Ltd"
    assert set(updated.previous) == set(updated.current) == set(created.current)
    assert deleted.current is None
    assert deleted.previous == updated.current


def test_one_statement_per_flush(crm: Crm, engine: Engine, audited_sessions) -> None:
    with StatementCounter(engine, crm.keeper.table.name) as counter, audited_sessions() as session:
        session.add_all([crm.Business(name=f"b{i}") for i in range(250)])
        session.commit()
    assert len(counter.statements) == 1
    assert len(entries(crm, engine)) == 250
