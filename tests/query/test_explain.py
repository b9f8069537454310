"""On PostgreSQL every query of the query layer is answered through an index.

The log gets 150,000 rows shaped like the demo's (three entity types, 200 users, a
tenant on half of them, a few impersonated rows, three rows per transaction), written
by one ``INSERT ... SELECT generate_series`` and analysed, so that the planner has
every reason to prefer a sequential scan where no index fits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import Connection

from auditkeeper import LogFilter
from auditkeeper.demo.crm import Crm
from auditkeeper.query.cursor import Position
from auditkeeper.query.filters import resolve
from auditkeeper.query.pagination import ordered_select
from tests._support import POSTGRES_ONLY

ROWS = 150_000
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

FILL = f"""
INSERT INTO users (email, full_name)
SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 200) AS g;

INSERT INTO audit_log (action, entity_type, number_identifier, changed_objects, user_id,
    user_email, is_impersonated, impersonator_user_id, impersonator_email, tenant_id,
    transaction_id, created_at)
SELECT
    CASE WHEN i % 3 = 1 AND i % 20 = 1 THEN 7 ELSE (i % 3) * 3 + 1 + (i / 3) % 2 END,
    i % 3 + 1,
    (i / 3) % 5000 + 1,
    jsonb_build_object(
        'previous', jsonb_build_object('name', 'n' || i, 'status', 'new', 'score', i % 100),
        'current', jsonb_build_object('name', 'n' || i, 'status', 'won', 'score', i % 100),
        'difference', CASE i % 4
            WHEN 0 THEN jsonb_build_object('status', jsonb_build_array('new', 'won'))
            WHEN 1 THEN jsonb_build_object('score', jsonb_build_array(i % 100, i % 100 + 1))
            WHEN 2 THEN jsonb_build_object('name', jsonb_build_array('a', 'b'))
            ELSE jsonb_build_object('score', jsonb_build_array(1, 2),
                                    'status', jsonb_build_array('new', 'lost'))
        END),
    CASE WHEN i % 50 = 7 THEN NULL ELSE (i * 7) % 200 + 1 END,
    CASE WHEN i % 50 = 7 THEN NULL ELSE 'user' || ((i * 7) % 200 + 1) || '@example.com' END,
    i % 97 = 0,
    CASE WHEN i % 97 = 0 THEN i % 5 + 1 END,
    CASE WHEN i % 97 = 0 THEN 'user' || (i % 5 + 1) || '@example.com' END,
    CASE WHEN i % 2 = 0 THEN 'tenant-' || (i % 40) END,
    md5((i / 3)::text)::uuid,
    TIMESTAMPTZ '{START.isoformat()}' + i * INTERVAL '2 minutes'
FROM generate_series(1, {ROWS}) AS i;

ANALYZE users;
ANALYZE audit_log;
"""


def cases() -> dict[str, LogFilter]:
    month = {"since": START + dt.timedelta(days=60), "until": START + dt.timedelta(days=90)}
    return {
        "everything": LogFilter(),
        "oldest first": LogFilter(newest_first=False),
        "entity type": LogFilter(entity_type="LEAD"),
        "one record": LogFilter(entity_type="LEAD", record=1234, newest_first=False),
        "action": LogFilter(action="LEAD_ASSIGN_TO_BUSINESS"),
        "user": LogFilter(user_id=17),
        "user in a window": LogFilter(user_id=17, **month),
        "e-mail": LogFilter(user_email="user42@example.com"),
        "impersonated": LogFilter(impersonated=True),
        "not impersonated": LogFilter(impersonated=False),
        "impersonator": LogFilter(impersonator_id=3),
        "impersonator e-mail": LogFilter(impersonator_email="user3@example.com"),
        "tenant": LogFilter(tenant_id="tenant-12"),
        "transaction": LogFilter(transaction_id=_md5_uuid(4321)),
        "time window": LogFilter(**month),
        "field changed in a window": LogFilter(field="status", **month),
        "field changed to a value": LogFilter(
            entity_type="BUSINESS", field="status", changed_to="lost", **month
        ),
        "entity type and action and user": LogFilter(
            entity_type="LEAD", action=["LEAD_UPDATE", "LEAD_CREATE"], user_id=8
        ),
        "tenant and user and window": LogFilter(tenant_id="tenant-4", user_id=9, **month),
    }


def _md5_uuid(number: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(str(number).encode()).hexdigest())


def seq_scans(plan: Any) -> list[str]:
    """Sequential scans of the log anywhere in a JSON plan."""
    found = []
    if isinstance(plan, dict):
        if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") == "audit_log":
            found.append(str(plan.get("Filter", "")))
        for value in plan.values():
            found.extend(seq_scans(value))
    elif isinstance(plan, list):
        for value in plan:
            found.extend(seq_scans(value))
    return found


def explain(connection: Connection, statement: Any) -> Any:
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    sql = f"EXPLAIN (FORMAT JSON) {compiled}"
    return connection.exec_driver_sql(sql, compiled.params).scalar()


@POSTGRES_ONLY
def test_no_query_scans_the_whole_log(crm: Crm, engine: Engine) -> None:
    keeper = crm.keeper
    table = keeper.table
    with engine.begin() as connection:
        connection.execute(text(FILL))
    middle = Position(START + dt.timedelta(days=100), ROWS // 2)
    offenders = {}
    with engine.connect() as connection:
        for name, log_filter in cases().items():
            resolved = resolve(log_filter, keeper)
            base = ordered_select(select(keeper.Entry), keeper, resolved, "postgresql")
            deep = ordered_select(select(keeper.Entry), keeper, resolved, "postgresql", middle)
            for label, statement in (("page 1", base), ("deep page", deep)):
                plan = explain(connection, statement.limit(51))
                if seq_scans(plan):
                    offenders[f"{name}, {label}"] = plan
        # as_of: the record's newest rows up to an instant, and a transaction's last row.
        record = resolve(LogFilter(entity_type="LEAD", record=1234), keeper)
        with_bound = ordered_select(select(keeper.Entry), keeper, record, "postgresql").where(
            table.c.created_at <= START + dt.timedelta(days=50)
        )
        last_of_transaction = (
            select(table.c.created_at, table.c.id)
            .where(table.c.transaction_id == _md5_uuid(99))
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(1)
        )
        for name, statement in (
            ("as of an instant", with_bound.limit(16)),
            ("a transaction's last row", last_of_transaction),
            ("one row by id", select(keeper.Entry).where(table.c.id == 777)),
        ):
            plan = explain(connection, statement)
            if seq_scans(plan):
                offenders[name] = plan
    assert offenders == {}
