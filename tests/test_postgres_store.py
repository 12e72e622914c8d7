"""PostgresStore against a real PostgreSQL: scoping, paging, types and failures."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import psycopg
import pytest

from calls_batch_get.models import Batch, ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead, StoreError
from calls_batch_get.store.postgres import (
    APPLICATION_NAME,
    CLIENT_GRACE_SECONDS,
    FETCH_FAILED,
    PostgresStore,
)
from scripts import demo_data
from tests import spec_example as spec
from tests.database import T0, Seeder, backend_pids, poll
from tests.tokens import caller_of


def query(batch_id: UUID, **kwargs: Any) -> BatchQuery:
    return BatchQuery(batch_id=batch_id, **kwargs)


def ids(read: BatchRead) -> list[UUID]:
    return [c.id for c in read.page.contacts]


# --- who may see what -----------------------------------------------------------------------


def test_unknown_user_has_no_agency(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id = db.agency()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3)

    assert pg_store.read(caller_of(uuid4()), query(batch_id)) == BatchRead(agency_id=None)


def test_user_with_null_agency_has_no_agency(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id = db.agency()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3)
    user_id = db.user(None)

    assert pg_store.read(caller_of(user_id), query(batch_id)) == BatchRead(agency_id=None)


def test_batch_of_another_agency_is_not_found(db: Seeder, pg_store: PostgresStore) -> None:
    mine, user_id = db.agency_with_user("Mine")
    theirs = db.agency("Theirs")
    their_batch = db.batch(theirs)
    db.contacts(their_batch, 5)

    read = pg_store.read(caller_of(user_id), query(their_batch))

    assert read.agency_id == mine
    assert read.batch is None
    assert read.page.contacts == []
    assert read.page.total == 0


def test_missing_batch_is_not_found(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()

    assert pg_store.read(caller_of(user_id), query(uuid4())) == BatchRead(agency_id=agency_id)


def test_own_batch_with_summary_and_contacts(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    campaign_id = db.campaign(agency_id, "Q1 Outreach")
    agent_id = db.agent_mapping(agency_id, "Sales Agent")
    batch_id = db.batch(
        agency_id,
        campaign_id=campaign_id,
        agent_mapping_id=agent_id,
        status="processing",
        from_number="+15551234567",
        calls_per_minute=30,
        max_concurrent=10,
        created_at=T0,
        started_at=T0 + timedelta(minutes=1),
    )
    for status, count in [("queued", 5), ("in_progress", 1), ("completed", 4), ("failed", 2)]:
        db.contacts(batch_id, count, status=status)

    read = pg_store.read(caller_of(user_id), query(batch_id))

    assert read.agency_id == agency_id
    assert read.batch is not None
    assert read.batch.model_dump(mode="json") == {
        **spec.BATCH,
        "id": str(batch_id),
        "agency_id": str(agency_id),
        "campaign_id": str(campaign_id),
        "agent_mapping_id": str(agent_id),
        "total_contacts": 12,
        "queued": 5,
        "in_progress": 1,
        "completed": 4,
        "failed": 2,
        "skipped": 0,
        "progress_percentage": 50.0,
        "remaining_count": 6,
    }
    assert read.page.total == 12
    assert len(read.page.contacts) == 12


# --- paging -----------------------------------------------------------------------------------


@pytest.fixture
def paged_batch(db: Seeder) -> tuple[UUID, UUID, list[UUID]]:
    """A batch whose contacts tie on created_at in groups, inserted out of order; returns the
    user, the batch and the contact ids in the order the API promises (created_at, then id)."""
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    rng = random.Random(11)
    rows = [(T0 + timedelta(seconds=rng.randint(0, 3)), uuid4()) for _ in range(40)]
    for created_at, contact_id in rows:
        db.contact(batch_id, id=contact_id, created_at=created_at)
    return user_id, batch_id, [contact_id for _, contact_id in sorted(rows)]


def test_pages_follow_created_at_then_id_without_overlap(
    paged_batch: tuple[UUID, UUID, list[UUID]], pg_store: PostgresStore
) -> None:
    user_id, batch_id, expected = paged_batch

    pages = [
        pg_store.read(caller_of(user_id), query(batch_id, limit=7, offset=offset))
        for offset in range(0, 40, 7)
    ]

    assert [i for page in pages for i in ids(page)] == expected
    assert {page.page.total for page in pages} == {40}


def test_limit_caps_the_page(
    paged_batch: tuple[UUID, UUID, list[UUID]], pg_store: PostgresStore
) -> None:
    user_id, batch_id, expected = paged_batch

    read = pg_store.read(caller_of(user_id), query(batch_id, limit=3, offset=5))

    assert ids(read) == expected[5:8]
    assert read.page.total == 40


@pytest.mark.parametrize("offset", [40, 41, 2_147_483_647])
def test_offset_at_or_past_the_end_is_an_empty_page_with_the_total(
    paged_batch: tuple[UUID, UUID, list[UUID]], pg_store: PostgresStore, offset: int
) -> None:
    user_id, batch_id, _ = paged_batch

    read = pg_store.read(caller_of(user_id), query(batch_id, offset=offset))

    assert read.batch is not None
    assert read.page.contacts == []
    assert read.page.total == 40


def test_status_filter_applies_to_page_and_total(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    failed = db.contacts(batch_id, 4, status="failed", step=timedelta(seconds=1))
    db.contacts(batch_id, 6, status="completed")
    other_batch = db.batch(agency_id)
    db.contacts(other_batch, 3, status="failed")

    read = pg_store.read(
        caller_of(user_id), query(batch_id, contact_status=ContactStatus.FAILED, limit=3)
    )

    assert ids(read) == failed[:3]
    assert read.page.total == 4
    # The batch's counters are the whole batch's, whatever the filter.
    assert read.batch is not None
    assert read.batch.total_contacts == 10


def test_status_filter_with_no_match(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 2, status="completed")

    read = pg_store.read(
        caller_of(user_id), query(batch_id, contact_status=ContactStatus.IN_PROGRESS)
    )

    assert read.batch is not None
    assert (read.page.contacts, read.page.total) == ([], 0)


def test_empty_batch(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id, status="draft")

    read = pg_store.read(caller_of(user_id), query(batch_id))

    assert read.batch is not None
    assert (read.batch.total_contacts, read.batch.progress_percentage) == (0, 0.0)
    assert (read.page.contacts, read.page.total) == ([], 0)


# --- types: what the API emits must match the PostgREST store's -------------------------------


def test_values_keep_their_json_types(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(
        agency_id,
        status="scheduled",
        scheduled_for=datetime(2025, 2, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
        created_at=datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
    )
    custom = {"lead": {"score": 7.5, "tags": ["vip", None]}, "n": 12, "ok": True, "é": "ü"}
    call_id = uuid4()
    # The specification's contact, its timestamps given as values in several zones.
    full = db.contact(
        batch_id,
        **{
            **spec.CONTACT,
            "id": uuid4(),
            "call_id": call_id,
            "last_attempt_at": datetime(2025, 1, 15, 12, 35, tzinfo=timezone(timedelta(hours=2))),
            "completed_at": datetime(2025, 1, 15, 10, 37, 25, tzinfo=UTC),
            "custom_data": custom,
            "created_at": T0,
        },
    )
    bare = db.contact(batch_id, created_at=T0 + timedelta(seconds=1))
    for _ in range(2):
        db.contact(batch_id, status="skipped", created_at=T0 + timedelta(seconds=2))

    read = pg_store.read(caller_of(user_id), query(batch_id))

    assert read.batch is not None
    summary = read.batch.model_dump(mode="json")
    assert summary["scheduled_for"] == "2025-02-01T14:00:00Z"
    assert summary["created_at"] == "2025-01-15T10:30:00.123456Z"
    assert summary["started_at"] is None
    # 3 of 4 done: a one-decimal number, and a float even when whole.
    assert summary["progress_percentage"] == 75.0
    assert isinstance(read.batch.progress_percentage, float)
    assert [c.id for c in read.page.contacts[:2]] == [full, bare]
    assert json.loads(read.page.contacts[0].model_dump_json()) == {
        **spec.CONTACT,
        "id": str(full),
        "call_id": str(call_id),
        "last_attempt_at": "2025-01-15T10:35:00Z",
        "completed_at": "2025-01-15T10:37:25Z",
        "custom_data": custom,
        "created_at": "2025-01-15T10:30:00Z",
    }
    # Only what the test gave: the schema's defaults are the bare contact's.
    assert read.page.contacts[1].model_dump(mode="json") == {
        **spec.BARE_CONTACT,
        "id": str(bare),
        "phone_number": "+15550000000",
        "created_at": "2025-01-15T10:30:01Z",
    }


def test_session_time_zone_does_not_leak_into_timestamps(db: Seeder, function_url: str) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id, created_at=T0)
    db.contact(batch_id, created_at=T0)
    # A server or role configured for another zone renders timestamptz with that offset.
    separator = "&" if "?" in function_url else "?"
    url = f"{function_url}{separator}options={quote('-c TimeZone=Asia/Kolkata')}"
    store = PostgresStore(url, 5.0)
    try:
        read = store.read(caller_of(user_id), query(batch_id))
    finally:
        store.close()

    assert read.batch is not None
    assert read.batch.model_dump(mode="json")["created_at"] == "2025-01-15T10:30:00Z"
    assert read.page.contacts[0].model_dump(mode="json")["created_at"] == "2025-01-15T10:30:00Z"


# --- tenant isolation, randomised -------------------------------------------------------------


def test_no_read_ever_crosses_an_agency(db: Seeder, function_url: str) -> None:
    data = demo_data.generate(
        seed=4242,
        agencies=5,
        users_per_agency=2,
        batches_per_agency=4,
        contacts_per_batch=(0, 60),
        users_without_agency=2,
    )
    demo_data.load(db.conn, data)
    agency_of_batch = {b["id"]: b["agency_id"] for b in data.batches}
    rng = random.Random(99)
    store = PostgresStore(function_url, 5.0)
    try:
        for _ in range(300):
            user = rng.choice(data.users)
            batch_id = rng.choice([*agency_of_batch, uuid4()])
            status = rng.choice([None, *ContactStatus])
            limit, offset = rng.randint(1, 200), rng.choice([0, rng.randint(0, 70)])
            read = store.read(
                caller_of(user["id"]),
                query(batch_id, contact_status=status, limit=limit, offset=offset),
            )

            assert read.agency_id == user["agency_id"]
            if user["agency_id"] is None or agency_of_batch.get(batch_id) != user["agency_id"]:
                assert (read.batch, read.page.contacts, read.page.total) == (None, [], 0)
                continue
            assert read.batch is not None
            assert read.batch.agency_id == user["agency_id"]
            matching = sorted(
                (c for c in data.contacts_of(batch_id) if status is None or c["status"] == status),
                key=lambda c: (c["created_at"], c["id"]),
            )
            assert ids(read) == [c["id"] for c in matching[offset : offset + limit]]
            assert read.page.total == len(matching)
    finally:
        store.close()


# --- concurrency and failures -----------------------------------------------------------------


def backends(conn: psycopg.Connection[Any]) -> int:
    return len(backend_pids(conn))


def test_concurrent_first_reads_share_one_bounded_pool(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 10)
    start = threading.Barrier(16)
    # Connections of earlier tests may still be on their way out: only new ones count.
    earlier = backend_pids(db.conn)

    def read(_: int) -> int:
        start.wait()
        return pg_store.read(caller_of(user_id), query(batch_id)).page.total

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(read, range(16))) == [10] * 16
    assert 1 <= len(backend_pids(db.conn) - earlier) <= 4


def test_a_dropped_connection_is_replaced_without_failing_the_read(
    db: Seeder, pg_store: PostgresStore
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    pg_store.read(caller_of(user_id), query(batch_id))
    # What a pooler or a server restart does to an idle connection.
    db.conn.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where application_name = %s and datname = current_database()",
        (APPLICATION_NAME,),
    )

    assert pg_store.read(caller_of(user_id), query(batch_id)).batch is not None


@pytest.mark.parametrize("connections", [1, 3])
def test_a_read_after_every_pooled_connection_was_dropped_answers_on_a_fresh_one(
    db: Seeder, function_url: str, connections: int
) -> None:
    # A server restart leaves the whole pool dead: one try on each, then one on a new connection.
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    earlier = backend_pids(db.conn)
    store = PostgresStore(function_url, 5.0, max_connections=connections)
    try:
        barrier = threading.Barrier(connections)

        def hold() -> None:
            with store._pool.connection() as conn:
                conn.execute("select 1")
                barrier.wait(5)

        holding = [threading.Thread(target=hold) for _ in range(connections)]
        for thread in holding:
            thread.start()
        for thread in holding:
            thread.join(5)
        assert len(backend_pids(db.conn) - earlier) == connections
        db.conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = %s and datname = current_database()",
            (APPLICATION_NAME,),
        )
        assert store.read(caller_of(user_id), query(batch_id)).batch is not None
    finally:
        store.close()


def test_a_read_that_answered_leaves_its_connection_uncut_past_its_deadline(
    db: Seeder, function_url: str
) -> None:
    # The watchdog's alarm of a read that answered is called off: it must not cut the pooled
    # connection later, under whatever read has it then.
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    earlier = backend_pids(db.conn)
    store = PostgresStore(function_url, 0.5)
    try:
        assert store.read(caller_of(user_id), query(batch_id)).batch is not None
        (first,) = backend_pids(db.conn) - earlier
        time.sleep(0.5 + CLIENT_GRACE_SECONDS + 0.5)
        assert store.read(caller_of(user_id), query(batch_id)).batch is not None
        assert backend_pids(db.conn) - earlier == {first}
    finally:
        store.close()


def test_the_watchdog_runs_on_a_daemon_thread_named_for_the_function(
    db: Seeder, pg_store: PostgresStore
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    for _ in range(2):
        pg_store.read(caller_of(user_id), query(batch_id))
    # A daemon: the interpreter's exit never waits for it (its loop has no end); named as a
    # thread dump (py-spy, faulthandler) shows it.
    watchdogs = [t for t in threading.enumerate() if t.name == f"{APPLICATION_NAME}-watchdog"]
    assert [t.daemon for t in watchdogs if t.is_alive()] == [True] * len(watchdogs)
    assert watchdogs


def assert_fixed_failure(read: Callable[[], object]) -> StoreError:
    with pytest.raises(StoreError) as caught:
        read()
    assert str(caught.value) == FETCH_FAILED
    assert isinstance(caught.value.__cause__, psycopg.Error)
    return caught.value


def test_unreachable_database_fails_with_a_fixed_message(tmp_path: Any) -> None:
    store = PostgresStore(f"postgresql://postgres@/postgres?host={tmp_path}", 0.5)
    try:
        started = time.monotonic()
        assert_fixed_failure(lambda: store.read(caller_of(uuid4()), query(uuid4())))
        assert time.monotonic() - started < 5
    finally:
        store.close()


def test_statement_timeout_fails_with_a_fixed_message(
    db: Seeder, database_url: str, function_url: str
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    store = PostgresStore(function_url, 0.3)
    try:
        # The pool is warm: only the statement can wait.
        store.read(caller_of(user_id), query(batch_id))
        with psycopg.connect(database_url) as locker:
            locker.execute("lock table public.campaign_contacts in access exclusive mode")
            started = time.monotonic()
            error = assert_fixed_failure(lambda: store.read(caller_of(user_id), query(batch_id)))
            assert isinstance(error.__cause__, psycopg.errors.QueryCanceled)
            assert time.monotonic() - started < 3
            locker.rollback()
        # The timed-out connection went back to the pool in a usable state.
        assert store.read(caller_of(user_id), query(batch_id)).batch is not None
    finally:
        store.close()


def test_one_read_leaves_no_state_on_its_connection(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    pg_store.read(caller_of(user_id), query(db.batch(agency_id)))

    # Through a transaction pooler the next client gets this server connection: neither the
    # timeout nor a transaction may remain on it. (The pool holds just the one connection.)
    with pg_store._pool.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        row = conn.execute("select current_setting('statement_timeout') as value").fetchone()
        assert row == {"value": "0"}


def test_closed_store_refuses_reads(db: Seeder, function_url: str) -> None:
    agency_id, user_id = db.agency_with_user()
    store = PostgresStore(function_url, 5.0)
    store.read(caller_of(user_id), query(db.batch(agency_id)))
    store.close()

    assert_fixed_failure(lambda: store.read(caller_of(user_id), query(uuid4())))
    # A server process ends a moment after its client left, not at once.
    assert poll(lambda: backends(db.conn) == 0) is not None


def test_rows_that_break_the_model_fail_with_a_fixed_message(
    db: Seeder, pg_store: PostgresStore
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contact(batch_id, created_at="infinity")

    with pytest.raises(StoreError, match=f"^{FETCH_FAILED}$"):
        pg_store.read(caller_of(user_id), query(batch_id))


def test_batch_model_columns_are_the_views(db: Seeder) -> None:
    row = db.conn.execute(
        "select array_agg(column_name::text order by ordinal_position) from"
        " information_schema.columns where table_name = 'v_call_batch_summary'"
    ).fetchone()
    assert row is not None
    assert row[0] == list(Batch.model_fields)
