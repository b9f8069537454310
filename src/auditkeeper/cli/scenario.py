"""The seed document's story, played on the demo CRM through an audited session.

Each step is a small unit of work under the actor who does it, so the log shows what a
real application would write: who acted (or the system), impersonation, a reason, the
domain action "assign lead to business", a comment whose creation is deliberately not
logged, and a user whose deletion keeps her e-mail in the log.
"""

from __future__ import annotations

import contextlib
import decimal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .. import acting_as, acting_as_system
from ..demo.crm import Crm, LeadStatus

__all__ = ["SUPPORT_TICKET", "NIGHTLY_IMPORT", "Person", "Scenario"]

SUPPORT_TICKET = "Support ticket #12345"
NIGHTLY_IMPORT = "Nightly import"


@dataclass(frozen=True)
class Person:
    """A demo user as the steps need it: the id to act as and the e-mail to log."""

    id: int
    email: str


class Scenario:
    """The steps of the seed's story, in order, sharing the ids of what they created."""

    def __init__(self, crm: Crm, sessions: sessionmaker[Session]) -> None:
        self.crm = crm
        self.sessions = sessions
        self.people: dict[str, Person] = {}
        self.ids: dict[str, int] = {}

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        """``(what happens, do it)`` for each step of the story."""
        return [
            (
                "Alice (admin), Bob (support) and Carol get accounts. Users are not audited "
                "themselves: the log refers to them.",
                self.open_accounts,
            ),
            (
                "Alice creates the businesses Acme Corp (with an API token, which the log "
                "redacts) and Globex.",
                self.create_businesses,
            ),
            ("Alice creates the leads Jane Doe, John Roe and Max Mustermann.", self.create_leads),
            ("Alice edits Acme Corp: its website and annual revenue.", self.edit_business),
            (
                f"Bob, impersonating Carol, marks Jane Doe as contacted ({SUPPORT_TICKET}).",
                self.edit_lead_as_carol,
            ),
            ("Carol assigns Jane Doe to Acme Corp.", self.assign_lead),
            (
                "Alice comments on Jane Doe: not logged, the seed audits comment updates "
                "and deletes only.",
                self.create_comment,
            ),
            ("Alice rewords her comment, then deletes it.", self.edit_and_delete_comment),
            ("Alice deletes the lead John Roe and the business Globex.", self.delete_records),
            (
                f"The system ({NIGHTLY_IMPORT}) updates Max Mustermann's score.",
                self.nightly_import,
            ),
            (
                "Carol's account is deleted: her log rows keep her e-mail, their user_id "
                "becomes null.",
                self.delete_carol,
            ),
        ]

    # -- the steps ------------------------------------------------------------------

    def open_accounts(self) -> None:
        """Find or create the three users (they exist already on a ``--keep`` run)."""
        with self.sessions() as session:
            for name, full_name in (
                ("alice", "Alice Adams"),
                ("bob", "Bob Brown"),
                ("carol", "Carol Chen"),
            ):
                email = f"{name}@example.com"
                user = session.scalar(select(self.crm.User).filter_by(email=email))
                if user is None:
                    user = self.crm.User(email=email, full_name=full_name)
                    session.add(user)
                    session.flush()
                self.people[name] = Person(user.id, email)
            session.commit()

    def create_businesses(self) -> None:
        self._save_as(
            "alice",
            acme=self.crm.Business(name="Acme Corp", api_token="sk-live-4f9a", internal_rank=1),
            globex=self.crm.Business(name="Globex", website="https://globex.example"),
        )

    def create_leads(self) -> None:
        self._save_as(
            "alice",
            jane=self.crm.Lead(name="Jane Doe", email="jane@example.com"),
            john=self.crm.Lead(name="John Roe"),
            max=self.crm.Lead(name="Max Mustermann", score=10),
        )

    def edit_business(self) -> None:
        with self._acting("alice") as session:
            acme = session.get_one(self.crm.Business, self.ids["acme"])
            acme.website = "https://acme.example"
            acme.annual_revenue = decimal.Decimal("1250000.00")
            session.commit()

    def edit_lead_as_carol(self) -> None:
        bob, carol = self.people["bob"], self.people["carol"]
        with (
            acting_as(
                carol.id,
                email=carol.email,
                impersonator_user_id=bob.id,
                impersonator_email=bob.email,
                reason=SUPPORT_TICKET,
            ),
            self.sessions() as session,
        ):
            jane = session.get_one(self.crm.Lead, self.ids["jane"])
            jane.status = LeadStatus.CONTACTED
            jane.score = 40
            session.commit()

    def assign_lead(self) -> None:
        with self._acting("carol") as session:
            session.get_one(self.crm.Lead, self.ids["jane"]).business_id = self.ids["acme"]
            session.commit()

    def create_comment(self) -> None:
        comment = self.crm.Comment(
            lead_id=self.ids["jane"],
            author_id=self.people["alice"].id,
            body="Called her, she wants a demo.",
        )
        self._save_as("alice", comment=comment)

    def edit_and_delete_comment(self) -> None:
        with self._acting("alice") as session:
            comment = session.get_one(self.crm.Comment, self.ids["comment"])
            comment.body = "Called her, she wants a demo next Tuesday."
            session.commit()
            session.delete(comment)
            session.commit()

    def delete_records(self) -> None:
        with self._acting("alice") as session:
            session.delete(session.get_one(self.crm.Lead, self.ids["john"]))
            session.commit()
            session.delete(session.get_one(self.crm.Business, self.ids["globex"]))
            session.commit()

    def nightly_import(self) -> None:
        with acting_as_system(reason=NIGHTLY_IMPORT), self.sessions() as session:
            session.get_one(self.crm.Lead, self.ids["max"]).score = 75
            session.commit()

    def delete_carol(self) -> None:
        with self.sessions() as session:
            session.delete(session.get_one(self.crm.User, self.people["carol"].id))
            session.commit()

    # -- helpers --------------------------------------------------------------------

    @contextlib.contextmanager
    def _acting(self, name: str) -> Iterator[Session]:
        """A session whose flushes are attributed to the user ``name``."""
        person = self.people[name]
        with acting_as(person.id, email=person.email), self.sessions() as session:
            yield session

    def _save_as(self, name: str, **records: Any) -> None:
        """Add ``records`` in one unit of work by ``name``; remember their ids by key."""
        with self._acting(name) as session:
            session.add_all(records.values())
            session.commit()
            self.ids.update({key: record.id for key, record in records.items()})
