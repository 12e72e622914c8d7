"""No counters for what does not exist (20261205000000_counters_of_existing_batches.sql): a ledger
row must belong to an existing batch, checked without a lock, so the contacts' writers still
wait for nobody."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.database import Seeder, as_replica
from tests.test_drift import drift

INSERT = ("insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
          " values (%s, %s, 'queued', 1)")


def ledger_total(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from public.call_batch_counters").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def batch(db: Seeder) -> tuple[UUID, UUID]:
    agency_id = db.agency()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3, status="queued")
    return agency_id, batch_id


@pytest.mark.parametrize("role", [None, "service_role"])
def test_a_row_of_a_batch_that_does_not_exist_is_refused(
    db: Seeder, batch: tuple[UUID, UUID], role: str | None
) -> None:
    agency_id, batch_id = batch
    before = ledger_total(db.conn)
    with db.conn.transaction(force_rollback=True):
        if role:
            db.conn.execute(f"set local role {role}")
        # One row of a real batch and one of none: the statement is refused whole.
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="does not exist"):
            db.conn.execute(
                INSERT + ", (%s, %s, 'queued', 1)", (batch_id, agency_id, uuid4(), agency_id)
            )
    assert ledger_total(db.conn) == before
    # A row of an existing batch is still taken.
    db.conn.execute(INSERT, (batch_id, agency_id))
    assert ledger_total(db.conn) == before + 1


def test_writes_under_replica_pass_it_and_the_drift_function_finds_them(
    db: Seeder, batch: tuple[UUID, UUID]
) -> None:
    agency_id, _ = batch
    ghost = uuid4()
    with as_replica(db.conn):
        db.conn.execute(INSERT, (ghost, agency_id))
    assert drift(db.conn) == [(ghost, "queued", 0, 1, False)]


def test_a_batch_deleted_while_its_contacts_are_written_leaves_no_row(
    db: Seeder, batch: tuple[UUID, UUID], database_url: str
) -> None:
    """The delete waits on the writer's row lock, and its trigger removes what it committed."""
    _, batch_id = batch
    with psycopg.connect(database_url) as writer, psycopg.connect(
        database_url, autocommit=True
    ) as deleter:
        writer.execute(
            "update public.campaign_contacts set status = 'completed' where batch_id = %s",
            (batch_id,),
        )
        deleting = threading.Thread(target=lambda: deleter.execute(
            "delete from public.call_batches where id = %s", (batch_id,)
        ))
        deleting.start()
        deleting.join(0.5)
        assert deleting.is_alive(), "the delete should wait for the writer's row locks"
        writer.commit()
        deleting.join(10)
        assert not deleting.is_alive()
    assert ledger_total(db.conn) == 0
    assert drift(db.conn) == []
