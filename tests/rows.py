"""Rows as PostgREST serialises them (timestamps with an offset, numeric as a JSON number)."""

from __future__ import annotations

import uuid
from typing import Any

AGENCY = "a0000000-0000-4000-8000-000000000001"
OTHER_AGENCY = "a0000000-0000-4000-8000-000000000002"
USER = "b0000000-0000-4000-8000-000000000001"
BATCH = "c0000000-0000-4000-8000-000000000001"


def batch_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": BATCH,
        "agency_id": AGENCY,
        "campaign_id": "d0000000-0000-4000-8000-000000000001",
        "campaign_name": "Q1 Outreach",
        "agent_mapping_id": "e0000000-0000-4000-8000-000000000001",
        "agent_name": "Sales Agent",
        "from_number": "+15551234567",
        "status": "processing",
        "total_contacts": 1000,
        "queued": 500,
        "in_progress": 5,
        "completed": 400,
        "failed": 10,
        "skipped": 0,
        "progress_percentage": 41.0,
        "remaining_count": 590,
        "calls_per_minute": 30,
        "max_concurrent": 10,
        "scheduled_for": None,
        "created_at": "2025-01-15T10:30:00+00:00",
        "started_at": "2025-01-15T11:31:00+01:00",
    }
    row.update(overrides)
    return row


def contact_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "phone_number": "+15559876543",
        "first_name": "John",
        "last_name": "Doe",
        "email": "john@example.com",
        "company": "ACME",
        "title": "Manager",
        "status": "completed",
        "call_id": "f0000000-0000-4000-8000-000000000001",
        "attempts": 1,
        "max_attempts": 3,
        "outcome": "answered",
        "duration_seconds": 145,
        "outcome_notes": None,
        "last_attempt_at": "2025-01-15T10:35:00+00:00",
        "completed_at": "2025-01-15T10:37:25.123456+00:00",
        "custom_data": {"crm": {"id": 7, "tags": ["vip"]}},
        "do_not_call": False,
        "timezone": "EST",
        "created_at": "2025-01-15T10:30:00+00:00",
    }
    row.update(overrides)
    return row
