"""The drift function finds every way the counters can stop saying what the contacts are."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.database import Seeder, as_replica, nested_plans, scans_of

DRIFT = "public.call_batch_counters_drift(uuid)"


def drift(conn: psycopg.Connection[Any], batch_id: UUID | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select batch_id, status, contacts, counted, batch_exists"
        " from public.call_batch_counters_drift(%s)",
        (batch_id,),
    ).fetchall()


@pytest.fixture
def batches(db: Seeder) -> tuple[UUID, UUID]:
    agency_id = db.agency()
    first, second = db.batch(agency_id), db.batch(agency_id)
    db.contacts(first, 4, status="queued")
    db.contacts(second, 2, status="completed")
    return first, second


def test_counters_kept_by_the_triggers_show_no_drift(
    db: Seeder, batches: tuple[UUID, UUID]
) -> None:
    db.conn.execute("update public.campaign_contacts set status = 'failed'"
                    " where batch_id = %s and ctid in (select ctid from public.campaign_contacts"
                    " where batch_id = %s limit 1)", (batches[0], batches[0]))
    assert drift(db.conn) == []
    assert drift(db.conn, batches[0]) == []


def test_writes_past_the_triggers_are_found(db: Seeder, batches: tuple[UUID, UUID]) -> None:
    first, second = batches
    db.conn.execute("alter table public.campaign_contacts disable trigger user")
    try:
        db.conn.execute("update public.campaign_contacts set status = 'completed'"
                        " where batch_id = %s", (first,))
    finally:
        db.conn.execute("alter table public.campaign_contacts enable trigger user")
    with as_replica(db.conn):
        # As a logical-replication subscriber applies a row: whole, its agency included (no
        # trigger fills it in under this setting).
        agency = db.conn.execute(
            "select agency_id from public.call_batches where id = %s", (second,)
        ).fetchone()
        assert agency is not None
        db.contact(second, status="skipped", agency_id=agency[0])
    assert drift(db.conn) == sorted([
        (first, "completed", 4, 0, True),
        (first, "queued", 0, 4, True),
        (second, "skipped", 1, 0, True),
    ])
    # One batch: only its own.
    assert drift(db.conn, second) == [(second, "skipped", 1, 0, True)]


def test_ledger_rows_of_a_batch_that_does_not_exist_are_found(
    db: Seeder, batches: tuple[UUID, UUID]
) -> None:
    """Written past the ledger's own check, as a replica or a restore under replica would."""
    ghost, agency = uuid4(), db.agency()
    with as_replica(db.conn):
        db.conn.execute(
            "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
            " values (%s, %s, 'pending', 3)", (ghost, agency),
        )
        # Even rows that add up to nothing: they belong to no batch.
        empty = uuid4()
        db.conn.execute(
            "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
            " values (%s, %s, 'failed', 2), (%s, %s, 'failed', -2)",
            (empty, agency, empty, agency),
        )
    assert drift(db.conn) == sorted([(ghost, "pending", 0, 3, False),
                                     (empty, "failed", 0, 0, False)])


def test_rows_loaded_twice_are_found(db: Seeder, batches: tuple[UUID, UUID]) -> None:
    """What a data-only restore into a migrated schema does: the contacts' load fires the
    triggers, and the dumped ledger rows load too."""
    first, _ = batches
    db.conn.execute(
        "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
        " select batch_id, agency_id, status, delta from public.call_batch_counters"
        " where batch_id = %s", (first,),
    )
    assert drift(db.conn) == [(first, "queued", 4, 8, True)]


def test_rows_of_another_agency_count_as_little_as_in_the_summary(
    db: Seeder, batches: tuple[UUID, UUID]
) -> None:
    """The summary view sums a batch's rows of its own agency: a row booked under another one
    changes no counter anybody sees, so it is no drift."""
    first, _ = batches
    db.conn.execute(
        "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
        " values (%s, %s, 'queued', 5)", (first, db.agency()),
    )
    row = db.conn.execute(
        "select queued from public.v_call_batch_summary where id = %s", (first,)
    ).fetchone()
    assert row == (4,)
    assert drift(db.conn) == []


def test_only_the_owner_and_service_role_may_run_it(db: Seeder) -> None:
    for role, allowed in (("anon", False), ("authenticated", False), ("service_role", True)):
        row = db.conn.execute(
            "select has_function_privilege(%s, %s, 'execute')", (role, DRIFT)
        ).fetchone()
        assert row == (allowed,), role


def test_one_batch_is_read_by_its_index_ranges(db: Seeder, batches: tuple[UUID, UUID]) -> None:
    # Planned with its value even where generic plans are forced (a role or database setting).
    db.conn.execute("set plan_cache_mode = force_generic_plan")
    try:
        with nested_plans(db.conn) as plans:
            drift(db.conn, batches[0])
    finally:
        db.conn.execute("reset plan_cache_mode")
    (plan,) = [p for p in plans if "counted_contacts" in p["Query Text"]]
    for relation in ("campaign_contacts", "call_batch_counters"):
        scans = scans_of(plan["Plan"], relation)
        assert scans, relation
        assert all(n["Node Type"] != "Seq Scan" for n in scans), (relation, scans)
