"""PostgreSQL procedures for changes made directly in the database (the seed's
``Core_AddEntityHistoryEvents`` / ``Core_AddSingleEntityHistoryEvent``).

``audit_add_entity_history_events(change_time, reason, tenant_id, user_id, changes[])``
takes an array of the composite type ``audit_entity_history_item`` (change type 0
Created, 1 Updated, 2 Deleted; entity id; entity type full name; property name and type;
new and old value; description) and writes one ordinary audit row per item, exactly as
``Auditkeeper.add_entity_history_events`` does in Python. The audited classes are known
to SQL through the ``<log>_entities`` table, which ``Auditkeeper.create_all`` fills from
the declarations. Bad input raises a SQL error naming the item, and writes nothing.
"""

from __future__ import annotations

from sqlalchemy.engine import Dialect

from .ddl import transaction_id_function
from .tables import AuditTables

__all__ = ["entities_table_name", "procedure_statements"]


def entities_table_name(tables: AuditTables) -> str:
    return f"{tables.log.name}_entities"


def procedure_statements(tables: AuditTables, dialect: Dialect) -> list[str]:
    """DDL of the registry table, the composite type and the functions (PostgreSQL)."""
    preparer = dialect.identifier_preparer
    schema = f"{preparer.quote(tables.log.schema)}." if tables.log.schema else ""
    log = preparer.format_table(tables.log)
    entities = f"{schema}{preparer.quote(entities_table_name(tables))}"
    item_type = f"{schema}audit_entity_history_item"
    parse = f"{schema}{preparer.quote(tables.log.name + '_parse_value')}"
    many = f"{schema}audit_add_entity_history_events"
    single = f"{schema}audit_add_single_entity_history_event"
    transaction_id = transaction_id_function(tables, dialect)
    user_type = tables.log.c.user_id.type.compile(dialect=dialect)
    if user_type == "NULL":  # pragma: no cover - the FK's type is resolved by then
        user_type = "BIGINT"
    return [
        f"""CREATE TABLE IF NOT EXISTS {entities} (
    full_name TEXT PRIMARY KEY,
    class_name TEXT NOT NULL,
    entity_type INTEGER NOT NULL,
    create_action INTEGER,
    update_action INTEGER,
    delete_action INTEGER,
    integer_key BOOLEAN NOT NULL,
    properties JSONB NOT NULL,
    on_change JSONB NOT NULL
)""",
        f"""DO $auditkeeper$ BEGIN
    IF to_regtype('{item_type}') IS NULL THEN
        CREATE TYPE {item_type} AS (
            change_type SMALLINT,
            entity_id TEXT,
            entity_type_full_name TEXT,
            property_name TEXT,
            property_type_full_name TEXT,
            new_value TEXT,
            old_value TEXT,
            description TEXT
        );
    END IF;
END $auditkeeper$""",
        f"""CREATE OR REPLACE FUNCTION {parse}(value TEXT, kind TEXT) RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $auditkeeper$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN kind = 'bool' THEN to_jsonb(btrim(value)::boolean)
        WHEN kind = 'int' THEN to_jsonb(btrim(value)::bigint)
        WHEN kind = 'float' THEN to_jsonb(btrim(value)::float8)
        WHEN kind = 'decimal' THEN to_jsonb(btrim(value)::numeric::text)
        WHEN kind = 'redacted' THEN to_jsonb('[redacted]'::text)
        ELSE to_jsonb(value)
    END
$auditkeeper$""",
        f"""CREATE OR REPLACE FUNCTION {many}(
    change_time TIMESTAMPTZ,
    reason TEXT,
    tenant_id TEXT,
    user_id {user_type},
    changes {item_type}[]
) RETURNS INTEGER LANGUAGE plpgsql AS $auditkeeper$
DECLARE
    item {item_type};
    meta {entities}%ROWTYPE;
    number INTEGER := 0;
    verb TEXT;
    property JSONB;
    column_name TEXT;
    old_value JSONB;
    new_value JSONB;
    document JSONB;
    chosen INTEGER;
    key_number BIGINT;
    key_text TEXT;
    rows JSONB := '[]'::jsonb;
    call_id UUID := {transaction_id}();  -- the transaction's id, as on every row
BEGIN
    FOREACH item IN ARRAY coalesce(changes, ARRAY[]::{item_type}[]) LOOP
        number := number + 1;
        IF item.change_type IS NULL OR item.change_type NOT IN (0, 1, 2) THEN
            RAISE EXCEPTION 'auditkeeper: change %: change type % is not 0 (Created), 1 (Updated) or 2 (Deleted)',
                number, coalesce(item.change_type::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
        END IF;
        verb := (ARRAY['create', 'update', 'delete'])[item.change_type + 1];
        SELECT * INTO meta FROM {entities} e WHERE e.full_name = item.entity_type_full_name;
        IF NOT FOUND THEN
            SELECT * INTO meta FROM {entities} e WHERE e.class_name = item.entity_type_full_name
                AND (SELECT count(*) FROM {entities} o WHERE o.class_name = e.class_name) = 1;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'auditkeeper: change %: unknown entity type %', number,
                quote_nullable(item.entity_type_full_name) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF item.property_name IS NULL THEN
            document := jsonb_build_object('previous', NULL, 'current', NULL, 'difference', '{{}}'::jsonb,
                'event', jsonb_build_object('name', item.description, 'description', NULL));
            chosen := CASE verb WHEN 'create' THEN meta.create_action
                WHEN 'update' THEN meta.update_action ELSE meta.delete_action END;
        ELSE
            property := meta.properties -> item.property_name;
            IF property IS NULL THEN
                RAISE EXCEPTION 'auditkeeper: change %: % has no audited property %', number,
                    meta.class_name, quote_literal(item.property_name) USING ERRCODE = 'invalid_parameter_value';
            END IF;
            column_name := property ->> 'column';
            BEGIN
                old_value := CASE WHEN verb = 'create' THEN NULL
                    ELSE {parse}(item.old_value, property ->> 'kind') END;
                new_value := CASE WHEN verb = 'delete' THEN NULL
                    ELSE {parse}(item.new_value, property ->> 'kind') END;
            EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
                RAISE EXCEPTION 'auditkeeper: change %, %.%: % is not a valid % value', number,
                    meta.class_name, item.property_name, SQLERRM, property ->> 'kind'
                    USING ERRCODE = 'invalid_text_representation';
            END;
            document := jsonb_build_object('previous', NULL, 'current', NULL, 'difference',
                jsonb_build_object(column_name, jsonb_build_array(old_value, new_value)));
            IF item.description IS NOT NULL THEN
                document := document || jsonb_build_object('descriptions',
                    jsonb_build_object(column_name, item.description));
            END IF;
            chosen := CASE verb WHEN 'create' THEN meta.create_action
                WHEN 'delete' THEN meta.delete_action
                ELSE coalesce((SELECT (rule ->> 1)::int FROM jsonb_array_elements(meta.on_change)
                               WITH ORDINALITY AS r(rule, position)
                               WHERE (rule -> 0) ? column_name ORDER BY position LIMIT 1),
                              meta.update_action) END;
        END IF;
        IF chosen IS NULL THEN
            RAISE EXCEPTION 'auditkeeper: change %: % declares no % action to record', number,
                meta.class_name, verb USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF meta.integer_key THEN
            BEGIN
                key_number := btrim(item.entity_id)::bigint;
            EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
                RAISE EXCEPTION 'auditkeeper: change %: entity id % of % must be an integer', number,
                    quote_nullable(item.entity_id), meta.class_name USING ERRCODE = 'invalid_text_representation';
            END;
            key_text := NULL;
        ELSE
            key_number := NULL;
            key_text := item.entity_id;
        END IF;
        rows := rows || jsonb_build_array(jsonb_build_object('action', chosen,
            'entity_type', meta.entity_type, 'number_identifier', key_number,
            'entity_key', key_text, 'changed_objects', document));
    END LOOP;
    -- Everything was valid: write all the rows, as one unit of work.
    INSERT INTO {log} (action, entity_type, number_identifier, entity_key, changed_objects,
                       user_id, is_impersonated, tenant_id, reason, transaction_id, created_at)
    SELECT (r ->> 'action')::int, (r ->> 'entity_type')::int, (r ->> 'number_identifier')::bigint,
           r ->> 'entity_key', r -> 'changed_objects', user_id, FALSE, tenant_id, reason,
           call_id, coalesce(change_time, now())
    FROM jsonb_array_elements(rows) AS r;
    RETURN number;
END
$auditkeeper$""",
        f"""CREATE OR REPLACE FUNCTION {single}(
    change_time TIMESTAMPTZ, reason TEXT, tenant_id TEXT, user_id {user_type},
    change_type INTEGER, entity_id TEXT, entity_type_full_name TEXT,
    property_name TEXT, property_type_full_name TEXT, new_value TEXT, old_value TEXT,
    description TEXT
) RETURNS INTEGER LANGUAGE sql AS $auditkeeper$
    SELECT {many}(change_time, reason, tenant_id, user_id,
        ARRAY[ROW(change_type, entity_id, entity_type_full_name, property_name,
                  property_type_full_name, new_value, old_value, description)::{item_type}])
$auditkeeper$""",
        f"""CREATE OR REPLACE FUNCTION {single}(
    change_time TIMESTAMPTZ, reason TEXT, tenant_id TEXT, user_id {user_type},
    change_type INTEGER, entity_id BIGINT, entity_type_full_name TEXT,
    property_name TEXT, property_type_full_name TEXT, new_value TEXT, old_value TEXT,
    description TEXT
) RETURNS INTEGER LANGUAGE sql AS $auditkeeper$
    SELECT {single}(change_time, reason, tenant_id, user_id, change_type, entity_id::text,
        entity_type_full_name, property_name, property_type_full_name, new_value, old_value,
        description)
$auditkeeper$""",
    ]
