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
from calls_batch_get.store.postgres import SESSION_SETTINGS, read_parameters, statement_for
from scripts import demo_data
from scripts.demo_data import DONE_STATUSES, DemoData, Row
from tests.database import Seeder, as_authenticated, explain, plan_nodes, scans_of

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


def plan_of_read(
    large: tuple[str, DemoData], conn: psycopg.Connection[Any], **query: Any
) -> tuple[dict[str, Any], list[Row]]:
    """The analysed plan of the store's statement for its owner reading the busiest batch, and
    that batch's contacts."""
    _, data = large
    batch = busiest_batch(data)
    user = data.users_of(batch["agency_id"])[0]
    read = BatchQuery(batch_id=batch["id"], **query)
    plan = explain(conn, statement_for(read), read_parameters(user["id"], read), analyze=True)
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


@pytest.mark.parametrize(
    ("status", "index"), [(None, PAGE_INDEX), (ContactStatus.FAILED, STATUS_PAGE_INDEX)]
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


def test_store_statement_reads_no_contact_of_another_agencys_batch(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    _, data = large
    batch = busiest_batch(data)
    outsider = next(u for u in data.users if u["agency_id"] not in (None, batch["agency_id"]))
    query = BatchQuery(batch_id=batch["id"])

    plan = explain(
        large_conn, statement_for(query), read_parameters(outsider["id"], query), analyze=True
    )

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


def test_no_parallel_workers_for_a_poll(
    large: tuple[str, DemoData], large_conn: psycopg.Connection[Any]
) -> None:
    """Parallel plans made as cheap as can be, so that the planner picks them where it may; the
    settings the store sends with every statement rule them out."""
    _, data = large
    batch = busiest_batch(data)
    user = data.users_of(batch["agency_id"])[0]
    query = BatchQuery(batch_id=batch["id"], offset=len(data.contacts_of(batch["id"])) - 10)
    statement, params = statement_for(query), read_parameters(user["id"], query)

    def gathers() -> int:
        return sum(
            node["Node Type"].startswith("Gather")
            for node in plan_nodes(explain(large_conn, statement, params))
        )

    with large_conn.transaction(force_rollback=True):
        for setting in ("parallel_setup_cost", "parallel_tuple_cost",
                        "min_parallel_index_scan_size", "min_parallel_table_scan_size"):
            large_conn.execute(f"set local {setting} = 0")
        assert gathers() > 0, "the planner would not go parallel here: the test proves nothing"
        large_conn.execute(SESSION_SETTINGS, ("1000",))
        assert gathers() == 0


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
