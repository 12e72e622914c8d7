"""A seeded, realistic data set: agencies with users, campaigns, agents, batches and contacts.

Used by the dev runner (``scripts/dev.py``) and by the tests, which check the view and the store
against counts computed here, independently of SQL.
"""

from __future__ import annotations

import random
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from scripts.localdb import copy_rows

Row = dict[str, Any]

DEFAULT_ANCHOR = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
BATCH_STATUSES: tuple[str, ...] = ("draft", "scheduled", "processing", "paused", "completed")
DONE_STATUSES = frozenset({"completed", "failed", "skipped"})

_FIRST_NAMES = ("John", "Maria", "Wei", "Aisha", "Lucas", "Olga", "Kenji", "Fatima", "Noah", "Zoë")
_LAST_NAMES = ("Doe", "García", "Chen", "Khan", "Silva", "Ivanova", "Sato", "Haddad", "Smith")
_COMPANIES = ("ACME", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", None)
_TITLES = ("Manager", "Director", "Owner", "VP Sales", "Office Admin", None)
_TIMEZONES = ("EST", "CST", "MST", "PST", None)
_TAGS = ("vip", "renewal", "new", "enterprise", "smb")
_SOURCES = ("csv_upload", "crm_sync", "web_form")
_CAMPAIGNS = ("Q1 Outreach", "Renewal Reminders", "Webinar Follow-up", "Win-back")
_AGENTS = ("Sales Agent", "Support Agent", "Appointment Setter")

# Per batch status: how its contacts' statuses are spread (weights), a picture of a live system.
_CONTACT_MIX: dict[str, dict[str, int]] = {
    "draft": {"pending": 1},
    "scheduled": {"pending": 1},
    "processing": {
        "pending": 20,
        "queued": 25,
        "in_progress": 3,
        "completed": 40,
        "failed": 7,
        "skipped": 5,
    },
    "paused": {"pending": 30, "queued": 20, "completed": 35, "failed": 10, "skipped": 5},
    "completed": {"completed": 80, "failed": 14, "skipped": 6},
}
# Outcomes by final status, with weights; a completed call reached someone or their machine.
_OUTCOMES: dict[str, dict[str, int]] = {
    "completed": {"answered": 60, "voicemail": 30, "callback_requested": 10},
    "failed": {"no_answer": 50, "busy": 30, "invalid_number": 20},
}


@dataclass
class DemoData:
    agencies: list[Row] = field(default_factory=list)
    users: list[Row] = field(default_factory=list)
    campaigns: list[Row] = field(default_factory=list)
    agent_mappings: list[Row] = field(default_factory=list)
    batches: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)

    def users_of(self, agency_id: UUID | None) -> list[Row]:
        return [u for u in self.users if u["agency_id"] == agency_id]

    def batches_of(self, agency_id: UUID) -> list[Row]:
        return [b for b in self.batches if b["agency_id"] == agency_id]

    def contacts_of(self, batch_id: UUID) -> list[Row]:
        return [c for c in self.contacts if c["batch_id"] == batch_id]


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _Generator:
    def __init__(self, seed: int, anchor: datetime) -> None:
        self.rng = random.Random(seed)
        self.anchor = anchor
        self.data = DemoData()

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def phone(self) -> str:
        return "+1555" + "".join(self.rng.choices(string.digits, k=7))

    def agency(self, index: int, users: int, batches: int, contacts: tuple[int, int]) -> None:
        agency_id = self.uuid()
        self.data.agencies.append({"id": agency_id, "name": f"Demo Agency {index}"})
        for n in range(users):
            self.data.users.append(
                {
                    "id": self.uuid(),
                    "agency_id": agency_id,
                    "email": f"user{n + 1}@agency{index}.example",
                    "full_name": f"{self.rng.choice(_FIRST_NAMES)} {self.rng.choice(_LAST_NAMES)}",
                }
            )
        campaigns = [self._named("campaigns", agency_id, name) for name in _CAMPAIGNS[:2]]
        agents = [self._named("agent_mappings", agency_id, name) for name in _AGENTS[:2]]
        for n in range(batches):
            # Every state shows up in turn; the first batch of an agency is a busy one.
            status = BATCH_STATUSES[(n + 2) % len(BATCH_STATUSES)]
            # Half the agencies keep an empty draft: a batch with no contacts must still show.
            empty = status == "draft" and index % 2 == 0
            size = 0 if empty else self.rng.randint(*contacts)
            self.batch(agency_id, status, size, self.rng.choice(campaigns), self.rng.choice(agents))

    def _named(self, table: str, agency_id: UUID, name: str) -> UUID:
        row_id = self.uuid()
        rows: list[Row] = getattr(self.data, table)
        rows.append({"id": row_id, "agency_id": agency_id, "name": name})
        return row_id

    def batch(
        self, agency_id: UUID, status: str, size: int, campaign_id: UUID, agent_id: UUID
    ) -> None:
        age = timedelta(days=self.rng.randint(1, 20), minutes=self.rng.randint(0, 600))
        created = self.anchor - age
        started = created + timedelta(minutes=self.rng.randint(1, 90))
        batch: Row = {
            "id": self.uuid(),
            "agency_id": agency_id,
            # Some batches lost their campaign or agent (deleted): the view must still list them.
            "campaign_id": campaign_id if self.rng.random() > 0.1 else None,
            "agent_mapping_id": agent_id if self.rng.random() > 0.1 else None,
            "from_number": self.phone(),
            "status": status,
            "calls_per_minute": self.rng.choice((10, 20, 30, 60)),
            "max_concurrent": self.rng.choice((5, 10, 20)),
            "scheduled_for": created + timedelta(days=2) if status == "scheduled" else None,
            "created_at": created,
            "started_at": started if status in ("processing", "paused", "completed") else None,
            "completed_at": started + timedelta(hours=3) if status == "completed" else None,
        }
        self.data.batches.append(batch)
        # Contacts arrive in uploads: each upload shares one created_at, so ties are the norm.
        upload_at = created
        remaining = size
        while remaining > 0:
            upload = min(remaining, self.rng.randint(20, 300))
            for _ in range(upload):
                self.contact(batch, upload_at)
            remaining -= upload
            upload_at += timedelta(seconds=self.rng.randint(1, 120))

    def contact(self, batch: Row, created: datetime) -> None:
        rng = self.rng
        status = _weighted(rng, _CONTACT_MIX[batch["status"]])
        max_attempts = rng.choice((1, 2, 3, 3, 3, 5))
        do_not_call = status == "skipped" and rng.random() < 0.7
        outcome = _weighted(rng, _OUTCOMES[status]) if status in _OUTCOMES else None
        attempts = {
            "pending": 0,
            "queued": 0,
            "skipped": 0,
            "in_progress": 1,
            "completed": rng.randint(1, max_attempts),
            "failed": max_attempts,
        }[status]
        duration = {
            "answered": rng.randint(20, 900),
            "callback_requested": rng.randint(15, 120),
            "voicemail": rng.randint(10, 60),
            "busy": 0,
            "no_answer": 0,
        }.get(outcome or "")
        last_attempt = None
        if attempts:
            last_attempt = batch["started_at"] + timedelta(seconds=rng.randint(30, 3 * 3600))
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        self.data.contacts.append(
            {
                "id": self.uuid(),
                "batch_id": batch["id"],
                "phone_number": self.phone(),
                "first_name": first,
                "last_name": last if rng.random() > 0.05 else None,
                "email": _email(first, last) if rng.random() > 0.3 else None,
                "company": rng.choice(_COMPANIES),
                "title": rng.choice(_TITLES),
                "status": status,
                "call_id": self.uuid() if attempts else None,
                "attempts": attempts,
                "max_attempts": max_attempts,
                "outcome": outcome,
                "duration_seconds": duration,
                "outcome_notes": _notes(outcome, do_not_call),
                "last_attempt_at": last_attempt,
                "completed_at": (
                    last_attempt + timedelta(seconds=duration or 0)
                    if status in ("completed", "failed") and last_attempt
                    else None
                ),
                "custom_data": {
                    "source": rng.choice(_SOURCES),
                    "lead_score": rng.randint(0, 100),
                    "tags": rng.sample(_TAGS, k=rng.randint(0, 2)),
                },
                "do_not_call": do_not_call,
                "timezone": rng.choice(_TIMEZONES),
                "created_at": created,
            }
        )


def _email(first: str, last: str) -> str:
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    return f"{local.lower()}@example.com"


def _notes(outcome: str | None, do_not_call: bool) -> str | None:
    if do_not_call:
        return "Skipped: number is on the do-not-call list"
    if outcome == "callback_requested":
        return "Asked to be called back next week"
    if outcome == "invalid_number":
        return "Number not in service"
    return None


def generate(
    seed: int = 2025,
    *,
    agencies: int = 2,
    users_per_agency: int = 2,
    batches_per_agency: int = 5,
    contacts_per_batch: tuple[int, int] = (150, 600),
    users_without_agency: int = 1,
    anchor: datetime = DEFAULT_ANCHOR,
) -> DemoData:
    """The same seed gives the same rows (ids included), so a run can be reproduced."""
    gen = _Generator(seed, anchor)
    for index in range(1, agencies + 1):
        gen.agency(index, users_per_agency, batches_per_agency, contacts_per_batch)
    for n in range(users_without_agency):
        gen.data.users.append(
            {
                "id": gen.uuid(),
                "agency_id": None,
                "email": f"newcomer{n + 1}@example.com",
                "full_name": "Not Yet Assigned",
            }
        )
    return gen.data


def load(conn: psycopg.Connection[Any], data: DemoData) -> None:
    """Inserts every row, parents first, in the connection's current transaction."""
    copy_rows(conn, "agencies", data.agencies)
    copy_rows(conn, "users", data.users)
    copy_rows(conn, "campaigns", data.campaigns)
    copy_rows(conn, "agent_mappings", data.agent_mappings)
    copy_rows(conn, "call_batches", data.batches)
    copy_rows(conn, "campaign_contacts", data.contacts)
