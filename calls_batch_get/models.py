"""The response's shapes: exactly the fields and types of the specification."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, GetPydanticSchema
from pydantic_core import core_schema


class ContactStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The read function renders its timestamps in UTC (migration 20261204000000_read_in_utc.sql), and
# the API speaks UTC "Z", which is how pydantic writes a datetime whose offset is zero: checked,
# not converted, by pydantic's own core (a timestamp in another offset fails the read), so no
# Python runs for any timestamp of any contact.
UtcDatetime = Annotated[
    datetime,
    GetPydanticSchema(lambda _type, _handler: core_schema.datetime_schema(tz_constraint=0)),
]


class _Row(BaseModel):
    # Rows come from our own SELECT lists; an unexpected column is a bug worth failing on.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Batch(_Row):
    id: UUID
    agency_id: UUID
    campaign_id: UUID | None
    campaign_name: str | None
    agent_mapping_id: UUID | None
    agent_name: str | None
    from_number: str | None
    status: str
    total_contacts: int
    queued: int
    in_progress: int
    completed: int
    failed: int
    skipped: int
    progress_percentage: float
    remaining_count: int
    calls_per_minute: int | None
    max_concurrent: int | None
    scheduled_for: UtcDatetime | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None

    def contacts_with(self, status: ContactStatus | None) -> int:
        """How many of the batch's contacts match a status filter, from its counters."""
        if status is None:
            return self.total_contacts
        if status is ContactStatus.PENDING:
            # The view has no pending column: pending is whatever the others are not.
            done = self.completed + self.failed + self.skipped
            return self.total_contacts - self.queued - self.in_progress - done
        count: int = getattr(self, status.value)
        return count


class Contact(_Row):
    id: UUID
    phone_number: str
    first_name: str | None
    last_name: str | None
    email: str | None
    company: str | None
    title: str | None
    status: ContactStatus
    call_id: UUID | None
    attempts: int
    max_attempts: int
    outcome: str | None
    duration_seconds: int | None
    outcome_notes: str | None
    last_attempt_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    custom_data: dict[str, Any]
    do_not_call: bool
    timezone: str | None
    created_at: UtcDatetime


BATCH_COLUMNS: tuple[str, ...] = tuple(Batch.model_fields)
CONTACT_COLUMNS: tuple[str, ...] = tuple(Contact.model_fields)


class ContactPagination(BaseModel):
    total: int
    limit: int
    # None when the page was asked for by contact_cursor.
    offset: int | None
    # Where the next page starts (contact_cursor); None on the last page.
    next_cursor: str | None
    has_more: bool


class BatchDetail(BaseModel):
    batch: Batch
    contacts: list[Contact]
    contact_pagination: ContactPagination
