"""The flush hooks: what each verb records, in one statement per flush."""

from __future__ import annotations

import datetime as dt
import decimal
import enum

from sqlalchemy import Engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import auditkeeper
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
    """At most one audit INSERT per flush. On PostgreSQL, new rows of one table whose
    values read alike in SQL are logged by its statement trigger, inside the flush's own
    INSERT: then the flush sends none."""
    with StatementCounter(engine, crm.keeper.table.name) as counter, audited_sessions() as session:
        session.add_all([crm.Business(name=f"b{i}") for i in range(250)])
        session.commit()
    assert len(counter.statements) == (0 if engine.dialect.name == "postgresql" else 1)
    assert len(entries(crm, engine)) == 250
    with StatementCounter(engine, crm.keeper.table.name) as counter, audited_sessions() as session:
        for business in session.scalars(select(crm.Business)):
            business.name += "!"
        session.add_all([crm.Business(name=f"c{i}") for i in range(10)])
        session.commit()
    assert len(counter.statements) == 1
    assert len(entries(crm, engine)) == 510


def test_domain_action_assign_lead_to_business(crm: Crm, engine: Engine, audited_sessions) -> None:
    with audited_sessions() as session:
        business = crm.Business(name="Acme")
        lead = crm.Lead(name="Jane")
        session.add_all([business, lead])
        session.commit()
        lead.business_id = business.id
        session.commit()
        lead.score = 10
        session.commit()
    rows = [r for r in entries(crm, engine) if r.entity_type == T.LEAD]
    assert [r.action for r in rows] == [A.LEAD_CREATE, A.LEAD_ASSIGN_TO_BUSINESS, A.LEAD_UPDATE]
    assert rows[1].difference == {"business_id": [None, business.id]}


def test_relationship_assignment_through_fk_sync(crm: Crm, engine: Engine, audited_sessions):
    """The FK that SQLAlchemy sets during the flush (not the user) is captured too."""
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.commit()
        business = crm.Business(name="Acme")
        business.leads.append(lead)  # business has no id yet: set by the flush
        session.add(business)
        session.commit()
        business_id = business.id
    rows = [r for r in entries(crm, engine) if r.entity_type == T.LEAD]
    assert [r.action for r in rows] == [A.LEAD_CREATE, A.LEAD_ASSIGN_TO_BUSINESS]
    assert rows[1].difference == {"business_id": [None, business_id]}


def test_verb_not_audited_writes_nothing(crm: Crm, engine: Engine, audited_sessions, users):
    """The seed audits comment update and delete, not create."""
    with audited_sessions() as session:
        lead = crm.Lead(name="Jane")
        session.add(lead)
        session.flush()
        comment = crm.Comment(lead_id=lead.id, author_id=users[0].id, body="first")
        session.add(comment)
        session.commit()
        comment.body = "edited"
        session.commit()
        session.delete(comment)
        session.commit()
    rows = [r for r in entries(crm, engine) if r.entity_type == T.COMMENT]
    assert [r.action for r in rows] == [A.COMMENT_UPDATE, A.COMMENT_DELETE]
    assert rows[0].difference == {"body": ["first", "edited"]}
    assert rows[1].current is None and rows[1].previous["body"] == "edited"


def test_no_row_when_nothing_audited_changed(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        business = crm.Business(name="Acme", annual_revenue=decimal.Decimal("10.50"))
        session.add(business)
        session.commit()
        business.name = "Acme"  # same value
        session.commit()
        business.annual_revenue = "10.50"  # equal once the column coerces it
        session.commit()
        business.annual_revenue = 10.5  # float, same stored value
        session.commit()
        business.internal_rank = 7  # excluded column
        session.commit()
        business.name = "Other"
        business.name = "Acme"  # changed and changed back before the flush
        session.commit()
    assert [r.action for r in entries(crm, engine)] == [A.BUSINESS_CREATE]


def test_excluded_and_secret_columns_never_reach_the_log(
    crm: Crm, engine: Engine, audited_sessions
):
    with audited_sessions() as session:
        business = crm.Business(name="Acme", api_token="tok-123-secret", internal_rank=3)
        session.add(business)
        session.commit()
        business.api_token = "tok-456-secret"
        session.commit()
    created, updated = entries(crm, engine)
    for row in (created, updated):
        text = str(row.changed_objects)
        assert "tok-" not in text
        assert "internal_rank" not in text
    assert created.current["api_token"] == "[redacted]"
    assert updated.difference == {"api_token": ["[redacted]", "[redacted]"]}


def test_create_flush_update_flush_commit_is_consistent(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        business = crm.Business(name="v1")
        session.add(business)
        session.flush()
        business.name = "v2"
        session.flush()
        business.website = "https://example.com"
        session.commit()
    rows = entries(crm, engine)
    assert [r.action for r in rows] == [A.BUSINESS_CREATE, A.BUSINESS_UPDATE, A.BUSINESS_UPDATE]
    assert rows[0].current == rows[1].previous
    assert rows[1].current == rows[2].previous
    assert rows[2].current["name"] == "v2"
    assert rows[2].current["website"] == "https://example.com"
    assert len({r.transaction_id for r in rows}) == 1


def test_server_defaults_are_in_current(crm: Crm, engine: Engine, audited_sessions):
    with audited_sessions() as session:
        session.add(crm.Business(name="Acme"))
        session.commit()
    (row,) = entries(crm, engine)
    assert row.current["created_at"] is not None
    assert row.current["is_active"] is True


def test_unloaded_and_expired_attributes_are_read(crm: Crm, engine: Engine, audited_sessions):
    """Expired or never-loaded columns still give a full previous document."""
    from sqlalchemy.orm import defer

    with audited_sessions() as session:
        business = crm.Business(name="Acme", website="https://a.example")
        session.add(business)
        session.commit()
        business_id = business.id
    with audited_sessions() as session:
        business = session.get(crm.Business, business_id, options=[defer(crm.Business.website)])
        session.expire(business, ["name"])
        business.website = "https://b.example"  # set without loading the old value
        session.commit()
    with audited_sessions() as session:
        business = session.get(crm.Business, business_id, options=[defer(crm.Business.name)])
        session.delete(business)
        session.commit()
    created, updated, deleted = entries(crm, engine)
    assert updated.difference == {"website": ["https://a.example", "https://b.example"]}
    assert updated.previous == created.current
    assert deleted.previous == updated.current


def test_onupdate_column_keeps_its_old_value(database) -> None:
    class Act(enum.IntEnum):
        UPDATE = 1

    class Kind(enum.IntEnum):
        DOC = 1

    class Base(DeclarativeBase):
        pass

    keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Act, entity_types=Kind)
    ticks = iter(dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in range(1, 20))

    @auditkeeper.audited(entity_type=Kind.DOC, update=Act.UPDATE)
    class Doc(Base):
        __tablename__ = "docs"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        touched: Mapped[str] = mapped_column(
            default=lambda: next(ticks).isoformat(), onupdate=lambda: next(ticks).isoformat()
        )

    engine = database.engine()
    Base.metadata.create_all(engine)
    keeper.create_all(engine)
    factory = sessionmaker(engine)
    keeper.install(factory)
    with factory() as session:
        doc = Doc(title="a")
        session.add(doc)
        session.commit()
        doc.title = "b"
        session.commit()
    with factory() as session:
        (row,) = session.scalars(select(keeper.Entry)).all()
    assert row.difference == {
        "title": ["a", "b"],
        "touched": ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"],
    }


def test_rows_of_one_flush_follow_the_order_objects_were_added(
    crm: Crm, engine: Engine, audited_sessions
):
    with audited_sessions() as session:
        leads = [crm.Lead(name=name) for name in "ABCDEFGH"]
        session.add_all(leads)
        session.add(crm.Business(name="I"))
        session.commit()
    assert [r.current["name"] for r in entries(crm, engine)] == list("ABCDEFGHI")
