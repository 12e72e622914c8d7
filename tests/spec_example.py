"""The specification's example response, once, in its API (JSON) form.

``BATCH`` and ``CONTACT`` are the example's batch and contact exactly as the specification
shows them, ids still its ``"uuid"`` placeholders; ``BARE_CONTACT`` is a contact with every
nullable column null and every other one at its default. Tests build their rows and expected
bodies from these with explicit overrides, e.g. ``{**CONTACT, "id": ..., "created_at": ...}``:
the values are read-only here (a test that needs to change one copies first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

BATCH: Final[Mapping[str, Any]] = {
    "id": "uuid",
    "agency_id": "uuid",
    "campaign_id": "uuid",
    "campaign_name": "Q1 Outreach",
    "agent_mapping_id": "uuid",
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
    "created_at": "2025-01-15T10:30:00Z",
    "started_at": "2025-01-15T10:31:00Z",
}

CONTACT: Final[Mapping[str, Any]] = {
    "id": "uuid",
    "phone_number": "+15559876543",
    "first_name": "John",
    "last_name": "Doe",
    "email": "john@example.com",
    "company": "ACME",
    "title": "Manager",
    "status": "completed",
    "call_id": "uuid",
    "attempts": 1,
    "max_attempts": 3,
    "outcome": "answered",
    "duration_seconds": 145,
    "outcome_notes": None,
    "last_attempt_at": "2025-01-15T10:35:00Z",
    "completed_at": "2025-01-15T10:37:25Z",
    "custom_data": {},
    "do_not_call": False,
    "timezone": "EST",
    "created_at": "2025-01-15T10:30:00Z",
}

# The example contact as it would be had nothing happened to it: the schema's defaults for the
# NOT NULL columns, null for the rest. id, phone_number and created_at are required: a test
# always sets them.
BARE_CONTACT: Final[Mapping[str, Any]] = {
    **CONTACT,
    "first_name": None,
    "last_name": None,
    "email": None,
    "company": None,
    "title": None,
    "status": "pending",
    "call_id": None,
    "attempts": 0,
    "max_attempts": 3,
    "outcome": None,
    "duration_seconds": None,
    "outcome_notes": None,
    "last_attempt_at": None,
    "completed_at": None,
    "custom_data": {},
    "do_not_call": False,
    "timezone": None,
}
