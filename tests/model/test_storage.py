"""Storage options of the log table: lz4 compression of ``changed_objects`` on PostgreSQL."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import Engine, MetaData, create_engine, text

import auditkeeper
from auditkeeper.demo.crm import Crm
from auditkeeper.model.tables import storage_statements
from tests.conftest import Database


class Action(enum.IntEnum):
    CREATE = 1


class Kind(enum.IntEnum):
    THING = 1


def _compression(engine: Engine, table: str = "audit_log") -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT attcompression FROM pg_attribute "
                    "WHERE attrelid = to_regclass(:t) AND attname = 'changed_objects'"
                ),
                {"t": table},
            ).scalar_one()
        )


def test_create_all_compresses_documents_with_lz4(
    database: Database, crm: Crm, engine: Engine, audited_sessions, users
) -> None:
    if database.dialect != "postgresql":
        assert storage_statements(crm.keeper.table, database.dialect) == []
        return
    assert _compression(engine) == "l"
    with audited_sessions() as session, auditkeeper.acting_as(users[0].id):
        session.add(crm.Business(name="x" * 5000))  # past the TOAST threshold
        session.commit()
    with engine.connect() as connection:
        methods = connection.execute(
            text("SELECT DISTINCT pg_column_compression(changed_objects) FROM audit_log")
        ).scalars()
        assert "lz4" in set(methods)


def test_storage_statements_run_again_and_quote_names(pg_server_url: str) -> None:
    schema = f"Audit {uuid.uuid4().hex[:8]}"
    engine = create_engine(pg_server_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        keeper = auditkeeper.Auditkeeper(
            MetaData(), actions=Action, entity_types=Kind, table_name="Log", schema=schema
        )
        keeper.create_all(engine)
        table = f'"{schema}"."Log"'
        assert _compression(engine, table) == "l"
        with engine.begin() as connection:
            for statement in storage_statements(keeper.table, "postgresql"):
                connection.exec_driver_sql(statement)
        assert _compression(engine, table) == "l"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
