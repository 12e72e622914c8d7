"""Rows as PostgREST serialises them (timestamps with an offset, numeric as a JSON number)."""

from __future__ import annotations

import uuid
from typing import Any

from tests import spec_example as spec

AGENCY = "a0000000-0000-4000-8000-000000000001"
OTHER_AGENCY = "a0000000-0000-4000-8000-000000000002"
USER = "b0000000-0000-4000-8000-000000000001"
BATCH = "c0000000-0000-4000-8000-000000000001"


def batch_row(**overrides: Any) -> dict[str, Any]:
    """The specification's batch, with our ids and its timestamps as the read function writes
    them (in UTC, with PostgreSQL's +00:00)."""
    return {
        **spec.BATCH,
        "id": BATCH,
        "agency_id": AGENCY,
        "campaign_id": "d0000000-0000-4000-8000-000000000001",
        "agent_mapping_id": "e0000000-0000-4000-8000-000000000001",
        "created_at": "2025-01-15T10:30:00+00:00",
        "started_at": "2025-01-15T10:31:00+00:00",
        **overrides,
    }


def contact_row(**overrides: Any) -> dict[str, Any]:
    """The specification's contact, with a fresh id, microseconds and nested custom data."""
    return {
        **spec.CONTACT,
        "id": str(uuid.uuid4()),
        "call_id": "f0000000-0000-4000-8000-000000000001",
        "last_attempt_at": "2025-01-15T10:35:00+00:00",
        "completed_at": "2025-01-15T10:37:25.123456+00:00",
        "custom_data": {"crm": {"id": 7, "tags": ["vip"]}},
        "created_at": "2025-01-15T10:30:00+00:00",
        **overrides,
    }
