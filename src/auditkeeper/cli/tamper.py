"""Attempts to rewrite history, each of which auditkeeper must refuse."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..demo.crm import Crm
from ..errors import ReadOnlyLogError
from ..model.tables import AuditEntry
from .render import one_line

__all__ = ["MALLORY", "Refusal", "count_forged_rows", "try_to_edit_the_log"]

MALLORY = "mallory@example.com"
"""The e-mail every attempt tries to write into the log."""


@dataclass(frozen=True)
class Refusal:
    """One attempt and the error that stopped it."""

    attempt: str
    error: str


def try_to_edit_the_log(crm: Crm, engine: Engine) -> list[Refusal]:
    """Try raw SQL, an ORM attribute change and an ORM delete on the log.

    Each must fail: a success would mean the log is not protected, so it raises
    ``RuntimeError`` instead of being shown as if nothing happened.
    """
    return [_raw_update(crm, engine), _orm_change(crm, engine), _orm_delete(crm, engine)]


def count_forged_rows(crm: Crm, engine: Engine) -> int:
    """Log rows that name ``MALLORY``: zero when every attempt was refused."""
    log = crm.keeper.table
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).where(log.c.user_email == MALLORY)) or 0


def _raw_update(crm: Crm, engine: Engine) -> Refusal:
    statement = f"UPDATE {crm.keeper.table.name} SET user_email = '{MALLORY}'"
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as error:
        return Refusal(f"raw SQL: {statement}", one_line(error))
    raise RuntimeError(f"the database accepted {statement!r}: the audit log is not protected")


def _orm_change(crm: Crm, engine: Engine) -> Refusal:
    with Session(engine) as session:
        entry = _latest(crm, session)
        try:
            entry.user_email = MALLORY
        except ReadOnlyLogError as error:
            return Refusal(f"ORM: entry.user_email = '{MALLORY}'", str(error))
    raise RuntimeError("an audit entry accepted a new user_email: entries are not read-only")


def _orm_delete(crm: Crm, engine: Engine) -> Refusal:
    with Session(engine) as session:
        session.delete(_latest(crm, session))
        try:
            session.flush()
        except ReadOnlyLogError as error:
            return Refusal("ORM: session.delete(entry); session.flush()", str(error))
    raise RuntimeError("the session deleted an audit entry: entries are not read-only")


def _latest(crm: Crm, session: Session) -> AuditEntry:
    newest_first = crm.keeper.table.c.id.desc()
    return session.scalars(select(crm.keeper.Entry).order_by(newest_first).limit(1)).one()
