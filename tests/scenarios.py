"""One set of endpoint scenarios, and the data they run on, shared by both stores.

The rows are plain Python values, written to the database by ``seed`` and read by the oracle
(``expected_*``), which computes every expected body from them by the specification's rules
(order by created_at then id, counters, rounding, UTC "Z" timestamps) without the code under
test: both stores must answer every scenario with exactly that body.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from calls_batch_get import cursor
from calls_batch_get.models import ContactStatus
from scripts.localdb import copy_rows
from tests import spec_example as spec
from tests.database import Conn, insert

T0 = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
STATUSES = ("pending", "queued", "in_progress", "completed", "failed", "skipped")
DONE = ("completed", "failed", "skipped")


def _id(kind: int, n: int) -> UUID:
    return UUID(f"{kind:08x}-0000-4000-8000-{n:012x}")


AGENCY_A = _id(0xA, 1)
AGENCY_B = _id(0xA, 2)
USER_A = _id(0xB, 1)
USER_B = _id(0xB, 2)
USER_NO_AGENCY = _id(0xB, 3)
# Signs in (its token is valid) but has no row in users.
USER_NO_ROW = _id(0xB, 4)
MISSING_BATCH = _id(0xC, 0xDEAD)


@dataclass(frozen=True)
class Named:
    id: UUID
    agency_id: UUID
    name: str


@dataclass(frozen=True)
class BatchSeed:
    """A call_batches row, its campaign and agent (or none), and its contacts' rows."""

    id: UUID
    agency_id: UUID
    status: str
    created_at: datetime
    campaign: Named | None = None
    agent: Named | None = None
    from_number: str | None = None
    calls_per_minute: int = 30
    max_concurrent: int = 10
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    contacts: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agency_id": self.agency_id,
            "campaign_id": self.campaign.id if self.campaign else None,
            "agent_mapping_id": self.agent.id if self.agent else None,
            "from_number": self.from_number,
            "status": self.status,
            "calls_per_minute": self.calls_per_minute,
            "max_concurrent": self.max_concurrent,
            "scheduled_for": self.scheduled_for,
            "created_at": self.created_at,
            "started_at": self.started_at,
        }


def contact(batch: int, n: int, created_at: datetime, **columns: Any) -> dict[str, Any]:
    """Every column spelled out (the bare contact's, unless given), so that the oracle never
    relies on a database default."""
    row: dict[str, Any] = {
        **copy.deepcopy(dict(spec.BARE_CONTACT)),
        "id": _id(0xD00 + batch, n),
        "phone_number": f"+1555{batch:03d}{n:04d}",
        "created_at": created_at,
    }
    unknown = set(columns) - set(row)
    assert not unknown, f"not a contact column: {unknown}"
    row.update(columns)
    return row


# --- the batch of the specification's example, answered with a literal body -------------------

SPEC_BATCH = BatchSeed(
    id=_id(0xC, 1),
    agency_id=AGENCY_A,
    status=spec.BATCH["status"],
    created_at=T0,
    started_at=T0 + timedelta(minutes=1),
    campaign=Named(_id(0xE, 1), AGENCY_A, spec.BATCH["campaign_name"]),
    agent=Named(_id(0xF, 1), AGENCY_A, spec.BATCH["agent_name"]),
    from_number=spec.BATCH["from_number"],
    contacts=(
        # The specification's contact (every column), its ids ours, its timestamps as values.
        {
            **spec.CONTACT,
            "id": _id(0xD01, 1),
            "call_id": _id(0x1CA11, 1),
            "last_attempt_at": T0 + timedelta(minutes=5),
            "completed_at": T0 + timedelta(minutes=7, seconds=25),
            "created_at": T0,
        },
        contact(
            1,
            2,
            T0 + timedelta(microseconds=1),
            phone_number="+15559876544",
            custom_data={"source": "csv"},
        ),
    ),
)

# --- the batch of edge cases: ties, every status, nulls, unicode, nested JSON -----------------

TIE = T0 + timedelta(seconds=1, microseconds=123456)


def _main_contacts() -> tuple[dict[str, Any], ...]:
    # (n, created_at, status): n is the id's last digits, so inside each tie the insertion order
    # (this list's) is the reverse of the id order the API must return.
    plan = [
        (16, TIE, "pending"),
        (9, TIE, "queued"),
        (3, TIE, "completed"),
        (12, T0, "in_progress"),
        (1, T0, "pending"),
        (7, TIE + timedelta(microseconds=1), "failed"),
        (15, T0 + timedelta(hours=1), "queued"),
        (14, T0 + timedelta(hours=1), "queued"),
        (13, T0 + timedelta(hours=1), "skipped"),
        (2, T0 + timedelta(hours=1), "completed"),
        (11, T0 + timedelta(days=1, microseconds=999999), "in_progress"),
        (10, T0 + timedelta(days=1, microseconds=999999), "pending"),
        (8, T0 + timedelta(days=40), "in_progress"),
        (6, T0 + timedelta(days=40), "queued"),
        (5, T0 - timedelta(days=3), "completed"),
        (4, T0 - timedelta(days=3), "pending"),
    ]
    odd_values: dict[int, dict[str, Any]] = {
        1: {"first_name": "Zoë", "last_name": "Ñúñez-Łukasiewicz", "timezone": "Europe/Warsaw"},
        2: {
            "first_name": "李",
            "last_name": "小龍",
            "company": "株式会社テスト",
            "attempts": 2,
            "outcome": "voicemail",
            "duration_seconds": 0,
            "last_attempt_at": T0 + timedelta(hours=2, microseconds=7),
            "completed_at": T0 + timedelta(hours=2, seconds=1, microseconds=654321),
        },
        3: {
            "first_name": 'O\'Brien "Bob"',
            "last_name": "back\\slash\nnew line\ttab",
            "outcome_notes": "</script><b>not html</b> \u2028 line separator",
            "custom_data": {
                "crm": {
                    "id": 7,
                    "tags": ["vip", "ü"],
                    "score": 1.5,
                    "nested": {"deep": [1, {"x": None}, [True, False]]},
                },
                "empty": {},
                "list": [],
                "big": 12345678901234567,
            },
        },
        4: {"first_name": "مرحبا", "title": "😀 Chief Emoji Officer", "do_not_call": True},
        5: {
            "email": "UPPER@Example.COM",
            "call_id": _id(0x1CA11, 5),
            "attempts": 3,
            "max_attempts": 3,
            "duration_seconds": 3600,
            "outcome": "answered",
        },
        7: {
            "outcome": "busy",
            "outcome_notes": "",
            "attempts": 3,
            "custom_data": {"note": "e\u0301 (combining) vs é", "n": -0.5},
        },
        13: {"outcome_notes": "skipped: do not call", "do_not_call": True},
    }
    return tuple(
        contact(2, n, created_at, status=status, **odd_values.get(n, {}))
        for n, created_at, status in plan
    )


MAIN_BATCH = BatchSeed(
    id=_id(0xC, 2),
    agency_id=AGENCY_A,
    status="paused",
    created_at=T0 + timedelta(microseconds=654321),
    started_at=T0 + timedelta(hours=1, microseconds=1),
    campaign=Named(_id(0xE, 2), AGENCY_A, "Année 2025 — «Relance» 🚀"),
    agent=Named(_id(0xF, 2), AGENCY_A, 'Agent Ü "quoted"'),
    from_number="+442071234567",
    calls_per_minute=5,
    max_concurrent=1,
    contacts=_main_contacts(),
)

# --- more contacts than one page can hold; ties in pairs --------------------------------------

BIG_BATCH_SIZE = 205
BIG_BATCH = BatchSeed(
    id=_id(0xC, 3),
    agency_id=AGENCY_A,
    status="processing",
    created_at=T0,
    campaign=Named(_id(0xE, 3), AGENCY_A, "Big"),
    agent=Named(_id(0xF, 3), AGENCY_A, "Bulk Agent"),
    from_number="+15550000003",
    calls_per_minute=120,
    max_concurrent=50,
    started_at=T0 + timedelta(seconds=30),
    contacts=tuple(
        # Inserted newest first; two contacts share each created_at.
        contact(3, n, T0 + timedelta(seconds=n // 2), status=STATUSES[n % len(STATUSES)])
        for n in reversed(range(BIG_BATCH_SIZE))
    ),
)

# --- no campaign, no agent, no number: the names are null ------------------------------------

BARE_BATCH = BatchSeed(
    id=_id(0xC, 4),
    agency_id=AGENCY_A,
    status="draft",
    created_at=T0 + timedelta(days=2),
    contacts=tuple(contact(4, n, T0 + timedelta(days=2)) for n in (3, 1, 2)),
)

EMPTY_BATCH = BatchSeed(
    id=_id(0xC, 5),
    agency_id=AGENCY_A,
    status="scheduled",
    created_at=T0 + timedelta(days=3),
    scheduled_for=T0 + timedelta(days=10, hours=9),
    campaign=Named(_id(0xE, 5), AGENCY_A, "Later"),
    agent=Named(_id(0xF, 5), AGENCY_A, "Night Agent"),
    from_number="+15550000005",
)

OTHER_AGENCY_BATCH = BatchSeed(
    id=_id(0xC, 6),
    agency_id=AGENCY_B,
    status="completed",
    created_at=T0 - timedelta(days=1),
    started_at=T0 - timedelta(days=1) + timedelta(minutes=1),
    campaign=Named(_id(0xE, 6), AGENCY_B, "Agency B campaign"),
    agent=Named(_id(0xF, 6), AGENCY_B, "Agency B agent"),
    from_number="+15550000006",
    contacts=tuple(
        contact(6, n, T0 - timedelta(days=1), status=status)
        for n, status in enumerate(("completed", "failed", "skipped"), start=1)
    ),
)

BATCHES = (SPEC_BATCH, MAIN_BATCH, BIG_BATCH, BARE_BATCH, EMPTY_BATCH, OTHER_AGENCY_BATCH)
USERS = {USER_A: AGENCY_A, USER_B: AGENCY_B, USER_NO_AGENCY: None}


def seed(conn: Conn) -> None:
    """Writes the scenario data into empty tables."""
    for agency_id, name in ((AGENCY_A, "Agency A"), (AGENCY_B, "Agency B")):
        insert(conn, "agencies", id=agency_id, name=name)
    for user_id, user_agency in USERS.items():
        insert(conn, "users", id=user_id, agency_id=user_agency)
    for batch in BATCHES:
        if batch.campaign:
            insert(conn, "campaigns", **vars(batch.campaign))
        if batch.agent:
            insert(conn, "agent_mappings", **vars(batch.agent))
        insert(conn, "call_batches", **batch.row())
        # One COPY per batch: the suite seeds these for every scenario test.
        copy_rows(conn, "campaign_contacts",
                  [{"batch_id": batch.id, **row} for row in batch.contacts])


# --- the oracle ---------------------------------------------------------------------------------


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with "Z", microseconds only when there are any."""
    if value is None:
        return None
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _uuid(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def expected_contact(row: Mapping[str, Any]) -> dict[str, Any]:
    """The contact as the specification shows it, fields in its order."""
    return {
        "id": _uuid(row["id"]),
        "phone_number": row["phone_number"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "company": row["company"],
        "title": row["title"],
        "status": row["status"],
        "call_id": _uuid(row["call_id"]),
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "outcome": row["outcome"],
        "duration_seconds": row["duration_seconds"],
        "outcome_notes": row["outcome_notes"],
        "last_attempt_at": timestamp(row["last_attempt_at"]),
        "completed_at": timestamp(row["completed_at"]),
        "custom_data": row["custom_data"],
        "do_not_call": row["do_not_call"],
        "timezone": row["timezone"],
        "created_at": timestamp(row["created_at"]),
    }


def counters(batch: BatchSeed) -> dict[str, Any]:
    """The view's counters, computed here: done = completed + failed + skipped, the percentage
    rounded half away from zero as PostgreSQL's round(numeric) does (not Python's half-even)."""
    statuses = [c["status"] for c in batch.contacts]
    total = len(statuses)
    done = sum(statuses.count(s) for s in DONE)
    percentage = (
        Decimal(0)
        if total == 0
        else (Decimal(100) * done / total).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    )
    return {
        "total_contacts": total,
        "queued": statuses.count("queued"),
        "in_progress": statuses.count("in_progress"),
        "completed": statuses.count("completed"),
        "failed": statuses.count("failed"),
        "skipped": statuses.count("skipped"),
        "progress_percentage": float(percentage),
        "remaining_count": total - done,
    }


def expected_batch(batch: BatchSeed) -> dict[str, Any]:
    return {
        "id": str(batch.id),
        "agency_id": str(batch.agency_id),
        "campaign_id": _uuid(batch.campaign.id if batch.campaign else None),
        "campaign_name": batch.campaign.name if batch.campaign else None,
        "agent_mapping_id": _uuid(batch.agent.id if batch.agent else None),
        "agent_name": batch.agent.name if batch.agent else None,
        "from_number": batch.from_number,
        "status": batch.status,
        **counters(batch),
        "calls_per_minute": batch.calls_per_minute,
        "max_concurrent": batch.max_concurrent,
        "scheduled_for": timestamp(batch.scheduled_for),
        "created_at": timestamp(batch.created_at),
        "started_at": timestamp(batch.started_at),
    }


def ordered(batch: BatchSeed, status: str | None = None) -> list[dict[str, Any]]:
    """The batch's contacts matching ``status``, in the API's order: created_at, then id."""
    rows = [c for c in batch.contacts if status is None or c["status"] == status]
    return sorted(rows, key=lambda c: (c["created_at"], c["id"]))


def next_cursor(batch: BatchSeed, status: str | None, last: Mapping[str, Any]) -> str:
    """The cursor the API hands out after ``last``: opaque, so made by its own encoder; that it
    leads to the right page is what the cursor walks test. It notes whether the contact after
    ``last`` shares its created_at."""
    matching = ordered(batch, status)
    following = matching[[c["id"] for c in matching].index(last["id"]) + 1 :]
    return cursor.encode(
        batch.id,
        None if status is None else ContactStatus(status),
        cursor.Position(
            created_at=last["created_at"],
            id=last["id"],
            tie_follows=bool(following) and following[0]["created_at"] == last["created_at"],
        ),
    )


def expected_page(
    batch: BatchSeed,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    after: int | None = None,
) -> dict[str, Any]:
    """The page at ``offset``, or (``after``) the page after the ``after``-th matching contact,
    as a cursor made from that contact asks for it."""
    matching = ordered(batch, status)
    start = offset if after is None else after + 1
    page = matching[start : start + limit]
    has_more = start + len(page) < len(matching)
    return {
        "batch": expected_batch(batch),
        "contacts": [expected_contact(c) for c in page],
        "contact_pagination": {
            "total": len(matching),
            "limit": limit,
            "offset": offset if after is None else None,
            "next_cursor": next_cursor(batch, status, page[-1]) if has_more else None,
            "has_more": has_more,
        },
    }


def error(message: str, code: str, **extra: str) -> dict[str, Any]:
    return {"error": message, "code": code, **extra}


# --- the scenarios ------------------------------------------------------------------------------

NOT_FOUND = error("Batch not found", "batch_not_found")
NO_AGENCY = error("User is not associated with an agency", "no_agency")
BAD_STATUS = error(
    "contact_status must be one of: pending, queued, in_progress, completed, failed, skipped",
    "invalid_parameter",
    parameter="contact_status",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    caller: UUID
    params: tuple[tuple[str, str], ...]
    status: int
    expected: Callable[[], Any]

    def __str__(self) -> str:
        return self.name


def scenario(
    name: str,
    batch_id: UUID,
    status: int,
    expected: Callable[[], Any],
    *,
    caller: UUID = USER_A,
    **params: str,
) -> Scenario:
    return Scenario(
        name=name,
        caller=caller,
        params=(("batch_id", str(batch_id)), *params.items()),
        status=status,
        expected=expected,
    )


def _page(batch: BatchSeed, **kwargs: Any) -> Callable[[], dict[str, Any]]:
    return lambda: expected_page(batch, **kwargs)


def _fixed(body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: body


MAIN_SIZE = len(MAIN_BATCH.contacts)
PAGE = 5

# The specification's example, written out from its JSON rather than by the oracle: only the ids
# and the counters (the example's are for 1000 contacts) differ.
SPEC_BODY: dict[str, Any] = {
    "batch": {
        **spec.BATCH,
        "id": "0000000c-0000-4000-8000-000000000001",
        "agency_id": "0000000a-0000-4000-8000-000000000001",
        "campaign_id": "0000000e-0000-4000-8000-000000000001",
        "agent_mapping_id": "0000000f-0000-4000-8000-000000000001",
        "total_contacts": 2,
        "queued": 0,
        "in_progress": 0,
        "completed": 1,
        "failed": 0,
        "skipped": 0,
        "progress_percentage": 50.0,
        "remaining_count": 1,
    },
    "contacts": [
        {
            **spec.CONTACT,
            "id": "00000d01-0000-4000-8000-000000000001",
            "call_id": "0001ca11-0000-4000-8000-000000000001",
        },
        {
            **spec.BARE_CONTACT,
            "id": "00000d01-0000-4000-8000-000000000002",
            "phone_number": "+15559876544",
            "custom_data": {"source": "csv"},
            "created_at": "2025-01-15T10:30:00.000001Z",
        },
    ],
    "contact_pagination": {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "next_cursor": None,
        "has_more": False,
    },
}

SCENARIOS: tuple[Scenario, ...] = (
    scenario("spec-example", SPEC_BATCH.id, 200, _fixed(SPEC_BODY)),
    scenario("default-limit-50", BIG_BATCH.id, 200, _page(BIG_BATCH)),
    scenario(
        "limit-clamped-to-200",
        BIG_BATCH.id,
        200,
        _page(BIG_BATCH, limit=200),
        contact_limit="100000",
    ),
    scenario(
        "limit-exactly-200", BIG_BATCH.id, 200, _page(BIG_BATCH, limit=200), contact_limit="200"
    ),
    scenario(
        "last-partial-page",
        BIG_BATCH.id,
        200,
        _page(BIG_BATCH, limit=200, offset=200),
        contact_limit="200",
        contact_offset="200",
    ),
    *(
        scenario(
            f"main-page-offset-{offset}",
            MAIN_BATCH.id,
            200,
            _page(MAIN_BATCH, limit=PAGE, offset=offset),
            contact_limit=str(PAGE),
            contact_offset=str(offset),
        )
        for offset in range(0, MAIN_SIZE, PAGE)
    ),
    *(
        scenario(
            f"status-{status}",
            MAIN_BATCH.id,
            200,
            _page(MAIN_BATCH, status=status),
            contact_status=status,
        )
        for status in STATUSES
    ),
    scenario(
        "status-and-paging",
        BIG_BATCH.id,
        200,
        _page(BIG_BATCH, status="failed", limit=7, offset=30),
        contact_status="failed",
        contact_limit="7",
        contact_offset="30",
    ),
    scenario(
        "offset-exactly-at-end",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, offset=MAIN_SIZE),
        contact_offset=str(MAIN_SIZE),
    ),
    scenario(
        "offset-far-past-end",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, offset=10_000),
        contact_offset="10000",
    ),
    scenario(
        "offset-at-end-of-status",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, status="completed", offset=3),
        contact_status="completed",
        contact_offset="3",
    ),
    scenario(
        "offset-past-end-of-status",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, status="skipped", offset=2),
        contact_status="skipped",
        contact_offset="2",
    ),
    scenario(
        "offset-max",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, offset=2_147_483_647),
        contact_offset="2147483647",
    ),
    scenario(
        "status-with-no-contacts",
        BARE_BATCH.id,
        200,
        _page(BARE_BATCH, status="skipped"),
        contact_status="skipped",
    ),
    scenario(
        "status-with-no-contacts-offset",
        BARE_BATCH.id,
        200,
        _page(BARE_BATCH, status="skipped", offset=1),
        contact_status="skipped",
        contact_offset="1",
    ),
    scenario("batch-without-campaign-or-agent", BARE_BATCH.id, 200, _page(BARE_BATCH)),
    scenario("batch-without-contacts", EMPTY_BATCH.id, 200, _page(EMPTY_BATCH)),
    scenario(
        "batch-without-contacts-offset",
        EMPTY_BATCH.id,
        200,
        _page(EMPTY_BATCH, offset=1),
        contact_offset="1",
    ),
    scenario(
        "other-agency-sees-its-batch",
        OTHER_AGENCY_BATCH.id,
        200,
        _page(OTHER_AGENCY_BATCH),
        caller=USER_B,
    ),
    *(
        scenario(
            f"progress-{batch.status}-{batch.id}",
            batch.id,
            200,
            _page(batch, limit=1),
            contact_limit="1",
            caller=USER_A if batch.agency_id == AGENCY_A else USER_B,
        )
        for batch in BATCHES
    ),
    scenario("batch-of-another-agency", OTHER_AGENCY_BATCH.id, 404, _fixed(NOT_FOUND)),
    scenario(
        "batch-of-another-agency-reversed", MAIN_BATCH.id, 404, _fixed(NOT_FOUND), caller=USER_B
    ),
    scenario("batch-that-does-not-exist", MISSING_BATCH, 404, _fixed(NOT_FOUND)),
    scenario("user-without-agency", MAIN_BATCH.id, 403, _fixed(NO_AGENCY), caller=USER_NO_AGENCY),
    scenario("user-without-users-row", MAIN_BATCH.id, 403, _fixed(NO_AGENCY), caller=USER_NO_ROW),
    scenario(
        "no-agency-before-not-found", MISSING_BATCH, 403, _fixed(NO_AGENCY), caller=USER_NO_ROW
    ),
    *(
        scenario(f"bad-status-{n}", MAIN_BATCH.id, 400, _fixed(BAD_STATUS), contact_status=value)
        for n, value in enumerate(
            (
                "Completed",
                "completed ",
                " pending",
                "ünïcode",
                "😀",
                "pending,queued",
                "in progress",
                "in_progress\u0000",
                "",
                "%",
                "'; drop table users; --",
                "\uff50\uff45\uff4e\uff44\uff49\uff4e\uff47",  # NFKC-folds to "pending"
            )
        )
    ),
)


def cursor_after(batch: BatchSeed, n: int, status: str | None = None) -> str:
    """The cursor that follows the ``n``-th contact (in order) of the batch matching ``status``."""
    return next_cursor(batch, status, ordered(batch, status)[n])


def _tampered(raw: str) -> str:
    middle = len(raw) // 2
    return raw[:middle] + ("A" if raw[middle] != "A" else "B") + raw[middle + 1 :]


# The first of the three contacts that share TIE, in order.
_FIRST_TIE = next(n for n, c in enumerate(ordered(MAIN_BATCH)) if c["created_at"] == TIE)
BAD_CURSOR = error(
    "contact_cursor is not a valid cursor", "invalid_parameter", parameter="contact_cursor"
)
FOREIGN_CURSOR = error(
    "contact_cursor belongs to another batch or contact_status",
    "invalid_parameter",
    parameter="contact_cursor",
)

CURSOR_SCENARIOS: tuple[Scenario, ...] = (
    scenario(
        "cursor-after-first-page",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, limit=PAGE, after=PAGE - 1),
        contact_limit=str(PAGE),
        contact_cursor=cursor_after(MAIN_BATCH, PAGE - 1),
    ),
    scenario(
        "cursor-inside-a-tie",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, limit=2, after=_FIRST_TIE),
        contact_limit="2",
        contact_cursor=cursor_after(MAIN_BATCH, _FIRST_TIE),
    ),
    scenario(
        "cursor-with-status",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, status="pending", limit=2, after=0),
        contact_status="pending",
        contact_limit="2",
        contact_cursor=cursor_after(MAIN_BATCH, 0, "pending"),
    ),
    scenario(
        "cursor-at-the-last-contact",
        MAIN_BATCH.id,
        200,
        _page(MAIN_BATCH, after=MAIN_SIZE - 1),
        contact_cursor=cursor_after(MAIN_BATCH, MAIN_SIZE - 1),
    ),
    scenario(
        "cursor-limit-clamped",
        BIG_BATCH.id,
        200,
        _page(BIG_BATCH, limit=200, after=10),
        contact_limit="5000",
        contact_cursor=cursor_after(BIG_BATCH, 10),
    ),
    scenario(
        "cursor-of-another-batch",
        BIG_BATCH.id,
        400,
        _fixed(FOREIGN_CURSOR),
        contact_cursor=cursor_after(MAIN_BATCH, 0),
    ),
    scenario(
        "cursor-of-another-status",
        MAIN_BATCH.id,
        400,
        _fixed(FOREIGN_CURSOR),
        contact_status="queued",
        contact_cursor=cursor_after(MAIN_BATCH, 0, "pending"),
    ),
    scenario(
        "cursor-of-no-status-with-a-status",
        MAIN_BATCH.id,
        400,
        _fixed(FOREIGN_CURSOR),
        contact_status="pending",
        contact_cursor=cursor_after(MAIN_BATCH, 0),
    ),
    scenario(
        "cursor-tampered",
        MAIN_BATCH.id,
        400,
        _fixed(BAD_CURSOR),
        contact_cursor=_tampered(cursor_after(MAIN_BATCH, 0)),
    ),
    scenario("cursor-garbage", MAIN_BATCH.id, 400, _fixed(BAD_CURSOR), contact_cursor="abc"),
    scenario("cursor-empty", MAIN_BATCH.id, 400, _fixed(BAD_CURSOR), contact_cursor=""),
    scenario(
        "cursor-and-offset",
        MAIN_BATCH.id,
        400,
        _fixed(
            error(
                "contact_cursor cannot be combined with contact_offset",
                "invalid_parameter",
                parameter="contact_cursor",
            )
        ),
        contact_offset="0",
        contact_cursor=cursor_after(MAIN_BATCH, 0),
    ),
    scenario(
        "cursor-of-another-agencys-batch",
        OTHER_AGENCY_BATCH.id,
        404,
        _fixed(NOT_FOUND),
        contact_cursor=next_cursor(OTHER_AGENCY_BATCH, None, ordered(OTHER_AGENCY_BATCH)[0]),
    ),
)
SCENARIOS += CURSOR_SCENARIOS


def by_name(name: str) -> Scenario:
    (found,) = [s for s in SCENARIOS if s.name == name]
    return found
