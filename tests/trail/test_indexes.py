"""The optional expression indexes for "related before" lookups: created for every
related option, and used by the lookup's query on both dialects."""

from __future__ import annotations

from sqlalchemy import text

import auditkeeper
from auditkeeper.trail.indexes import create_trail_indexes, lookups, trail_index_statements
from auditkeeper.trail.log import former_statement
from auditkeeper.trail.options import specs_for
from tests.trail._seed import Kind, Seed


def test_one_lookup_per_related_option(seed: Seed) -> None:
    assert [(lookup.entity_type, lookup.column) for lookup in lookups(seed.keeper)] == [
        (Kind.SHA_ROLE_APPOINTED_PERSON, "person_id"),
        (Kind.SHA_ROLE_APPOINTED_PERSON, "role_id"),
        (Kind.COMMENT, "owner_id"),
        (Kind.DEPARTMENT_USER, "school_id"),
    ]
    statements = trail_index_statements(seed.keeper, "postgresql")
    assert len(statements) == 8
    assert statements[4] == (
        'CREATE INDEX IF NOT EXISTS "ix_audit_log_trail_8_prev_'
        + statements[4].split("_prev_")[1].split('"')[0]
        + "\" ON \"audit_log\" (((changed_objects -> 'previous') ->> 'owner_id')) "
        "WHERE entity_type = 8"
    )


def test_the_lookup_uses_the_index(seed: Seed) -> None:
    created = create_trail_indexes(seed.keeper, seed.engine)
    assert create_trail_indexes(seed.keeper, seed.engine) == created  # idempotent
    with seed.Session() as session:
        for number in range(30):
            session.add(
                seed.Comment(owner_id=str(number), owner_type="SchoolApplication", text="c")
            )
        session.commit()
    spec = specs_for(seed.keeper, seed.SchoolApplication).related[1]
    dialect = seed.engine.dialect.name
    statement = former_statement(seed.keeper.table, dialect, spec.child, spec.owner_id, "7")
    compiled = statement.compile(
        dialect=seed.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    with seed.engine.connect() as connection:
        if dialect == "postgresql":
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.execute(text(f"EXPLAIN {compiled}")).scalars().all()
        else:
            plan = [row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("ix_audit_log_trail_8_prev" in line for line in plan), plan
    assert any("ix_audit_log_trail_8_diff" in line for line in plan), plan


def test_trail_reads_the_same_with_the_indexes(seed: Seed) -> None:
    with seed.Session() as session:
        first, second = seed.School(name="A"), seed.School(name="B")
        member = seed.DepartmentUser(full_name="Dana", school=first)
        session.add_all([first, second, member])
        session.commit()
        member.school = second
        session.commit()
    before = seed.trail(seed.School, first.id)
    create_trail_indexes(seed.keeper, seed.engine)
    assert (
        seed.trail(seed.School, first.id)
        == before
        == [
            ("Created", ""),
            ('"School user" added', "Dana"),
            ('"School user" removed', "Dana"),
        ]
    )
    assert auditkeeper.trail  # the public entry point is unchanged
