"""The repair: a batch's ledger rebuilt from its contacts, right while writers keep writing, and
without holding up any writer."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.database import Seeder, as_replica
from tests.test_drift import drift

STATUSES = ("pending", "queued", "in_progress", "completed", "failed", "skipped")


def rebuild(conn: psycopg.Connection[Any], batch_id: UUID | None) -> int:
    row = conn.execute("select public.call_batch_counters_rebuild(%s)", (batch_id,)).fetchone()
    assert row is not None
    booked: int = row[0]
    return booked


@pytest.fixture
def drifted(db: Seeder) -> tuple[UUID, UUID, UUID]:
    """Two batches whose counters are wrong, and ledger rows of a batch that does not exist."""
    agency_id = db.agency()
    first, second = db.batch(agency_id), db.batch(agency_id)
    db.contacts(first, 4, status="queued")
    db.contacts(second, 3, status="failed")
    db.conn.execute("alter table public.campaign_contacts disable trigger user")
    try:
        db.conn.execute("update public.campaign_contacts set status = 'completed'")
    finally:
        db.conn.execute("alter table public.campaign_contacts enable trigger user")
    ghost = uuid4()
    with as_replica(db.conn):
        db.conn.execute(
            "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
            " values (%s, %s, 'pending', 3)", (ghost, agency_id),
        )
    assert {row[0] for row in drift(db.conn)} == {first, second, ghost}
    return first, second, ghost


def test_one_batch_is_rebuilt_and_only_it(db: Seeder, drifted: tuple[UUID, UUID, UUID]) -> None:
    first, second, ghost = drifted
    assert rebuild(db.conn, first) == 4
    assert drift(db.conn, first) == []
    assert {row[0] for row in drift(db.conn)} == {second, ghost}
    row = db.conn.execute(
        "select total_contacts, completed, queued from public.v_call_batch_summary where id = %s",
        (first,),
    ).fetchone()
    assert row == (4, 4, 0)


def test_every_batch_is_rebuilt_and_rows_of_gone_batches_dropped(
    db: Seeder, drifted: tuple[UUID, UUID, UUID]
) -> None:
    assert rebuild(db.conn, None) == 7
    assert drift(db.conn) == []


def test_only_the_owner_and_service_role_may_run_it(db: Seeder) -> None:
    for role, allowed in (("anon", False), ("authenticated", False), ("service_role", True)):
        row = db.conn.execute(
            "select has_function_privilege(%s, 'public.call_batch_counters_rebuild(uuid)',"
            " 'execute')", (role,),
        ).fetchone()
        assert row == (allowed,), role


def writers(
    url: str, contacts: list[UUID], stop: threading.Event, slowest: list[float], count: int = 4
) -> list[threading.Thread]:
    """Writers moving random contacts between statuses, one statement a transaction (so the
    triggers fold now and then), each noting its slowest statement."""

    def work(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                started = time.monotonic()
                conn.execute(
                    "update public.campaign_contacts set status = %s where id = %s",
                    (rng.choice(STATUSES), rng.choice(contacts)),
                )
                slowest[seed] = max(slowest[seed], time.monotonic() - started)

    return [threading.Thread(target=work, args=(n,)) for n in range(count)]


def fold_every(conn: psycopg.Connection[Any], statements: int) -> None:
    conn.execute(
        "create or replace function public.call_batch_counters_fold_every() returns integer"
        f" language sql immutable set search_path = '' as $$ select {statements} $$"
    )


@pytest.fixture
def folding_always(db: Seeder) -> Iterator[None]:
    """Every statement folds (instead of one in 16): a fold in flight beside the rebuild, the
    one thing that could make it count rows twice, is then the rule."""
    fold_every(db.conn, 1)
    yield
    fold_every(db.conn, 16)


@pytest.mark.usefixtures("folding_always")
def test_a_rebuild_among_writers_leaves_the_counters_exact(db: Seeder, database_url: str) -> None:
    agency_id = db.agency()
    batch_id = db.batch(agency_id)
    contacts = db.contacts(batch_id, 60, status="pending")
    stop = threading.Event()
    slowest = [0.0] * 4
    threads = writers(database_url, contacts, stop, slowest)
    for thread in threads:
        thread.start()
    try:
        with psycopg.connect(database_url, autocommit=True) as repairer:
            for _ in range(25):
                assert rebuild(repairer, batch_id) == 60
                time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert drift(db.conn) == []
    assert max(slowest) < 1.0, slowest


def test_a_rebuild_held_open_holds_up_no_writer(db: Seeder, database_url: str) -> None:
    """A rebuild's transaction left open (its locks held): writers of that batch and of another
    keep writing, each statement at once, and folds only wait for another time."""
    agency_id = db.agency()
    rebuilt, other = db.batch(agency_id), db.batch(agency_id)
    contacts = [*db.contacts(rebuilt, 20), *db.contacts(other, 20)]
    stop = threading.Event()
    slowest = [0.0] * 4
    with psycopg.connect(database_url) as repairer:
        rebuild(repairer, rebuilt)  # its transaction stays open until the block ends
        threads = writers(database_url, contacts, stop, slowest)
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
        repairer.commit()
    assert max(slowest) < 0.5, slowest
    assert drift(db.conn) == []
