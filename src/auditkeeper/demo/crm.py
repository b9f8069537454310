"""The CRM of the seed document: users, businesses, leads and comments.

Businesses and leads are audited on create, update and delete, and assigning a lead to a
business is its own action; comments are audited on update and delete only, as the
seed says. ``build_crm()`` returns fresh classes on a fresh ``MetaData`` each time, so
tests and demos never share mappings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Numeric, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .. import audit_column, audited, on_change
from ..capture.keeper import Auditkeeper

__all__ = ["AuditLogActions", "AuditLogEntityTypes", "Crm", "LeadStatus", "build_crm"]


class AuditLogActions(enum.IntEnum):
    """The seed's actions. Append new members with max + 1; never renumber."""

    BUSINESS_CREATE = 1
    BUSINESS_UPDATE = 2
    BUSINESS_DELETE = 3
    LEAD_CREATE = 4
    LEAD_UPDATE = 5
    LEAD_DELETE = 6
    LEAD_ASSIGN_TO_BUSINESS = 7
    COMMENT_UPDATE = 8
    COMMENT_DELETE = 9


class AuditLogEntityTypes(enum.IntEnum):
    """The seed's entity types."""

    BUSINESS = 1
    LEAD = 2
    COMMENT = 3


class LeadStatus(enum.Enum):
    NEW = "new"
    CONTACTED = "contacted"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class Crm:
    """The mapped classes and the audit log of one CRM schema."""

    Base: type[DeclarativeBase]
    User: type[Any]
    Business: type[Any]
    Lead: type[Any]
    Comment: type[Any]
    keeper: Auditkeeper


def build_crm(**keeper_options: Any) -> Crm:
    """Fresh CRM classes and their ``Auditkeeper`` (options go to ``Auditkeeper``)."""

    class Base(DeclarativeBase):
        pass

    class User(Base):
        """``auth-users``: not audited itself; the log references it."""

        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(320), unique=True)
        full_name: Mapped[str]
        password_hash: Mapped[str | None]

    keeper = Auditkeeper(
        Base.metadata,
        actions=AuditLogActions,
        entity_types=AuditLogEntityTypes,
        users="users.id",
        **keeper_options,
    )

    @audited(
        entity_type=AuditLogEntityTypes.BUSINESS,
        create=AuditLogActions.BUSINESS_CREATE,
        update=AuditLogActions.BUSINESS_UPDATE,
        delete=AuditLogActions.BUSINESS_DELETE,
    )
    class Business(Base):
        __tablename__ = "businesses"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        website: Mapped[str | None]
        annual_revenue: Mapped[decimal.Decimal | None] = mapped_column(Numeric(30, 2))
        is_active: Mapped[bool] = mapped_column(default=True)
        founded_on: Mapped[dt.date | None]
        settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
        api_token: Mapped[str | None]
        internal_rank: Mapped[int | None] = mapped_column(info=audit_column(exclude=True))
        created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
        leads: Mapped[list[Lead]] = relationship(back_populates="business")

    @audited(
        entity_type=AuditLogEntityTypes.LEAD,
        create=AuditLogActions.LEAD_CREATE,
        update=AuditLogActions.LEAD_UPDATE,
        delete=AuditLogActions.LEAD_DELETE,
        on_change=[on_change("business_id", action=AuditLogActions.LEAD_ASSIGN_TO_BUSINESS)],
    )
    class Lead(Base):
        __tablename__ = "leads"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        email: Mapped[str | None]
        status: Mapped[LeadStatus] = mapped_column(
            Enum(LeadStatus, values_callable=lambda e: [m.value for m in e]),
            default=LeadStatus.NEW,
        )
        score: Mapped[int] = mapped_column(default=0)
        external_id: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4)
        business_id: Mapped[int | None] = mapped_column(
            ForeignKey("businesses.id", ondelete="SET NULL")
        )
        business: Mapped[Business | None] = relationship(back_populates="leads")
        comments: Mapped[list[Comment]] = relationship(
            back_populates="lead", cascade="all, delete-orphan", passive_deletes=True
        )

    @audited(
        entity_type=AuditLogEntityTypes.COMMENT,
        update=AuditLogActions.COMMENT_UPDATE,
        delete=AuditLogActions.COMMENT_DELETE,
    )
    class Comment(Base):
        __tablename__ = "comments"
        id: Mapped[int] = mapped_column(primary_key=True)
        lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
        author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
        body: Mapped[str] = mapped_column(Text)
        lead: Mapped[Lead] = relationship(back_populates="comments")

    return Crm(Base=Base, User=User, Business=Business, Lead=Lead, Comment=Comment, keeper=keeper)
