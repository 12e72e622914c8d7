"""The response's shapes: exactly the fields and types of the specification."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)


class ContactStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# Both stores hand over timestamps in whatever offset their driver chose; the API speaks UTC "Z".
UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(_rfc3339, return_type=str),
    # The serializer returns a plain str; the contract (openapi.yaml) says which kind.
    WithJsonSchema({"type": "string", "format": "date-time"}),
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
    offset: int | None
    next_cursor: str | None
    has_more: bool


class BatchDetail(BaseModel):
    batch: Batch
    contacts: list[Contact]
    contact_pagination: ContactPagination
