"""The reference schema on a real server: the view's counters, its plans, row-level security."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from calls_batch_get.cursor import Position
from calls_batch_get.models import BATCH_COLUMNS, ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store.postgres import READ_STATEMENT, read_parameters
from scripts import demo_data
from scripts.demo_data import DONE_STATUSES, DemoData, Row
from tests.database import (
    Seeder,
    as_authenticated,
    explain,
    nested_plans,
    plan_nodes,
    scans_of,
)

CONTACTS = "campaign_contacts"


def expected_summary(data: DemoData, batch: Row) -> dict[str, Any]:
    """The view's counters, computed in Python from the generated rows."""
    counts = Counter(c["status"] for c in data.contacts_of(batch["id"]))
    total = sum(counts.values())
    done = sum(counts[s] for s in DONE_STATUSES)
    return {
        "total_contacts": total,
        **{s: counts[s] for s in ("queued", "in_progress", "completed", "failed", "skipped")},
        # PostgreSQL's round() on numeric: half away from zero, in decimal.
        "progress_percentage": (
            (Decimal(100 * done) / total).quantize(Decimal("0.1"), ROUND_HALF_UP)
            if total
            else Decimal("0.0")
        ),
        "remaining_count": total - done,
    }


def summaries(conn: psycopg.Connection[Any]) -> dict[UUID, dict[str, Any]]:
    columns = sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("select {} from public.v_call_batch_summary").format(columns))
        return {row["id"]: row for row in cur}


# --- a large data set: counters and plans ------------------------------------------------------


@pytest.fixture(scope="module")
def large(fresh_database: Callable[[], str]) -> tuple[str, DemoData]:
    """24k-odd contacts over 40 batches of 8 agencies, ANALYZE'd, in a database of its own."""
    data = demo_data.generate(
        seed=31337, agencies=8, batches_per_agency=5, contacts_per_batch=(400, 900)
    )
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        demo_data.load(conn, data)
        conn.execute("analyze")
    assert len(data.contacts) > 20_000
    return url, data


@pytest.fixture
def large_conn(large: tuple[str, DemoData]) -> Any:
    with psycopg.connect(large[0], autocommit=True) as conn:
        yield conn


def test_view_counters_match_counts_computed_in_python(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    _, data = large
    rows = summaries(large_conn)

    assert set(rows) == {b["id"] for b in data.batches}
    for batch in data.batches:
        row = rows[batch["id"]]
        expected = expected_summary(data, batch)
        assert {k: row[k] for k in expected} == expected, batch["status"]
        assert row["agency_id"] == batch["agency_id"]
    # The data set does exercise the interesting cases.
    assert any(r["total_contacts"] == 0 for r in rows.values())
    assert any(0 < r["progress_percentage"] < 100 for r in rows.values())


def test_view_keeps_batches_whose_campaign_or_agent_is_gone(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    _, data = large
    rows = summaries(large_conn)
    orphans = [b for b in data.batches if b["campaign_id"] is None]

    assert orphans
    assert all(rows[b["id"]]["campaign_name"] is None for b in orphans)


def busiest_batch(data: DemoData) -> Row:
    return max(data.batches, key=lambda b: len(data.contacts_of(b["id"])))


def rows_read(plan: dict[str, Any], relation: str) -> float:
    return sum(
        (float(node["Actual Rows"]) * node["Actual Loops"] for node in scans_of(plan, relation)),
        0.0,
    )


PAGE_INDEX = "campaign_contacts_batch_page_idx"
STATUS_PAGE_INDEX = "campaign_contacts_batch_status_page_idx"


def read_plan(conn: psycopg.Connection[Any], user_id: UUID, query: BatchQuery) -> dict[str, Any]:
    """The analysed plan of the read function's statement, run as the store runs it: as
    ``user_id``, under row-level security."""
    with nested_plans(conn) as plans, as_authenticated(conn, user_id):
        conn.execute(READ_STATEMENT, read_parameters(query))
    (read,) = [p for p in plans if "with caller as" in p["Query Text"]]
    plan: dict[str, Any] = read["Plan"]
    return plan


def plan_of_read(
    large: tuple[str, DemoData], conn: psycopg.Connection[Any], **query: Any
) -> tuple[dict[str, Any], list[Row]]:
    """The read's plan for a user of the busiest batch's agency reading it, and that batch's
    contacts."""
    _, data = large
    batch = busiest_batch(data)
    user = data.users_of(batch["agency_id"])[0]
    plan = read_plan(conn, user["id"], BatchQuery(batch_id=batch["id"], **query))
    return plan, data.contacts_of(batch["id"])


def index_scans(plan: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(node type, index, rows read) of every read of campaign_contacts."""
    return [
        (node["Node Type"], node.get("Index Name", ""), float(node["Actual Rows"]))
        for node in scans_of(plan, CONTACTS)
    ]


@pytest.mark.parametrize(
    ("status", "index"),
    [(None, PAGE_INDEX), (ContactStatus.COMPLETED, STATUS_PAGE_INDEX),
     (ContactStatus.PENDING, STATUS_PAGE_INDEX)],
)
def test_an_offset_page_finds_its_start_on_the_index_then_reads_limit_rows(
    large: tuple[str, DemoData],
    large_conn: psycopg.Connection[Any],
    status: ContactStatus | None,
    index: str,
) -> None:
    large_conn.execute("vacuum campaign_contacts")

    plan, _ = plan_of_read(large, large_conn, contact_status=status, limit=50, offset=100)

    # The offset's row from the index alone (no table row read for the skipped ones), then an
    # index range of limit + 1 rows from it: never the batch's other contacts.
    assert sorted(index_scans(plan)) == [("Index Only Scan", index, 101.0),
                                         ("Index Scan", index, 51.0)]


# A status common enough that the rest of it after the cursor is many pages: for the handful of
# rows a rare status leaves at this size, reading them all and sorting them is as cheap.
@pytest.mark.parametrize(
    ("status", "index"), [(None, PAGE_INDEX), (ContactStatus.COMPLETED, STATUS_PAGE_INDEX)]
)
def test_a_cursor_page_is_one_index_range_of_limit_rows(
    large: tuple[str, DemoData],
    large_conn: psycopg.Connection[Any],
    status: ContactStatus | None,
    index: str,
) -> None:
    _, contacts = plan_of_read(large, large_conn)
    matching = [c for c in contacts if status in (None, c["status"])]
    middle = sorted(matching, key=lambda c: (c["created_at"], c["id"]))[len(matching) // 2]
    after = Position(created_at=middle["created_at"], id=middle["id"])

    plan, _ = plan_of_read(large, large_conn, contact_status=status, limit=20, after=after)

    ((node, used, rows),) = index_scans(plan)
    assert (node, used, rows) == ("Index Scan", index, 21.0)
    (scan,) = scans_of(plan, CONTACTS)
    assert "ROW(created_at, id) >" in scan["Index Cond"]


def test_the_read_of_another_agencys_batch_reads_none_of_its_contacts(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    _, data = large
    batch = busiest_batch(data)
    outsider = next(u for u in data.users if u["agency_id"] not in (None, batch["agency_id"]))

    plan = read_plan(large_conn, outsider["id"], BatchQuery(batch_id=batch["id"]))

    assert rows_read(plan, CONTACTS) == 0


def test_view_lookup_of_one_batch_reads_its_counters_not_its_contacts(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    _, data = large
    batch = busiest_batch(data)
    ledger_rows = large_conn.execute(
        "select count(*) from public.call_batch_counters where batch_id = %s", (batch["id"],)
    ).fetchone()

    plan = explain(
        large_conn,
        sql.SQL("select * from public.v_call_batch_summary where id = %s and agency_id = %s"),
        (batch["id"], batch["agency_id"]),
        analyze=True,
    )

    assert scans_of(plan, CONTACTS) == []
    assert ledger_rows is not None
    assert rows_read(plan, "call_batch_counters") == ledger_rows[0] > 0


def test_every_call_is_planned_with_its_own_values(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    """A statement planned once for all, with its parameters unknown (plpgsql's generic plan,
    which it may switch to after five calls, or which a role or database configured with
    plan_cache_mode = force_generic_plan asks for), no longer has a status filter or a cursor as
    an index range. In such a session, call after call, the read is planned with its values."""
    _, data = large
    batch = busiest_batch(data)
    user = data.users_of(batch["agency_id"])[0]
    query = BatchQuery(batch_id=batch["id"], contact_status=ContactStatus.COMPLETED, limit=20)
    large_conn.execute("set plan_cache_mode = force_generic_plan")
    try:
        for _ in range(7):
            plan = read_plan(large_conn, user["id"], query)
    finally:
        large_conn.execute("reset plan_cache_mode")
    conditions = [node.get("Index Cond", "") for node in scans_of(plan, CONTACTS)]
    assert len(conditions) == 1
    assert all("(status = 'completed'::text)" in c for c in conditions), conditions


READ_FUNCTION = "public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)"


def test_no_parallel_workers_for_a_poll(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    """Parallel plans made as cheap as can be, and the policies' helpers declared parallel safe
    (as they might be), so that the planner picks them where it may; the read function's own
    settings rule them out."""
    _, data = large
    batch = busiest_batch(data)
    user = data.users_of(batch["agency_id"])[0]
    query = BatchQuery(batch_id=batch["id"], offset=len(data.contacts_of(batch["id"])) - 10)

    def gathers() -> int:
        plan = read_plan(large_conn, user["id"], query)
        return sum(node["Node Type"].startswith("Gather") for node in plan_nodes(plan))

    for setting in ("parallel_setup_cost", "parallel_tuple_cost",
                    "min_parallel_index_scan_size", "min_parallel_table_scan_size"):
        large_conn.execute(f"set {setting} = 0")
    try:
        with large_conn.transaction(force_rollback=True):
            for helper in ("request_user_id()", "request_agency_id()"):
                large_conn.execute(f"alter function public.{helper} parallel safe")
            assert gathers() == 0
            large_conn.execute(
                f"alter function {READ_FUNCTION} reset max_parallel_workers_per_gather"
            )
            assert gathers() > 0, "the planner would not go parallel here: the test proves nothing"
    finally:
        large_conn.execute("reset all")


# --- row-level security -------------------------------------------------------------------------


@pytest.fixture
def small(db: Seeder) -> DemoData:
    data = demo_data.generate(
        seed=7,
        agencies=3,
        batches_per_agency=3,
        contacts_per_batch=(5, 20),
        users_without_agency=1,
    )
    demo_data.load(db.conn, data)
    return data


def visible(conn: psycopg.Connection[Any], statement: str) -> list[Any]:
    return [row[0] for row in conn.execute(statement).fetchall()]


def test_a_user_sees_only_their_agency(db: Seeder, small: DemoData) -> None:
    everything = summaries(db.conn)
    for user in (u for u in small.users if u["agency_id"] is not None):
        agency_id = user["agency_id"]
        batches = {b["id"] for b in small.batches_of(agency_id)}
        contacts = {c["id"] for c in small.contacts if c["batch_id"] in batches}
        with as_authenticated(db.conn, user["id"]) as conn:
            assert visible(conn, "select id from public.users") == [user["id"]]
            assert visible(conn, "select id from public.agencies") == [agency_id]
            assert set(visible(conn, "select agency_id from public.campaigns")) == {agency_id}
            assert set(visible(conn, "select agency_id from public.agent_mappings")) == {agency_id}
            assert set(visible(conn, "select id from public.call_batches")) == batches
            assert set(visible(conn, "select id from public.campaign_contacts")) == contacts
            # The view runs as the caller, and its counters are the whole batch's.
            assert summaries(conn) == {b: everything[b] for b in batches}


def test_a_user_without_agency_sees_nothing_but_themself(db: Seeder, small: DemoData) -> None:
    user = small.users_of(None)[0]
    with as_authenticated(db.conn, user["id"]) as conn:
        assert visible(conn, "select id from public.users") == [user["id"]]
        for table in ("agencies", "campaigns", "agent_mappings", "call_batches", CONTACTS):
            assert visible(conn, f"select 1 from public.{table}") == [], table
        assert summaries(conn) == {}


def test_a_token_of_an_unknown_user_sees_nothing(db: Seeder, small: DemoData) -> None:
    with as_authenticated(db.conn, UUID(int=1)) as conn:
        assert summaries(conn) == {}
        assert visible(conn, "select 1 from public.users") == []


def test_anonymous_role_is_refused(db: Seeder, small: DemoData) -> None:
    with db.conn.transaction(force_rollback=True):
        db.conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.conn.execute("select 1 from public.v_call_batch_summary")


def test_authenticated_role_cannot_write(db: Seeder, small: DemoData) -> None:
    user = small.users_of(small.agencies[0]["id"])[0]
    with (
        as_authenticated(db.conn, user["id"]) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("update public.call_batches set status = 'cancelled'")
