"""The logical-replication recipe of docs/deployment.md, followed for real: a subscriber's
counters are right when the publication carries the ledger with the tables it counts, and found
wrong (then repaired) when it does not. A server of its own, started with
``wal_level = logical``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from scripts.localdb import EmbeddedPostgres, embedded_postgres, supabase_project
from tests.database import Seeder, poll
from tests.test_drift import drift

# What the publication must carry: every table the summary reads, the ledger included (the
# subscriber's apply runs under session_replication_role = replica: no trigger books anything).
TABLES = ("agencies", "users", "campaigns", "agent_mappings", "call_batches",
          "campaign_contacts", "call_batch_counters")
PASSWORD = "replication-test-password"
SUMMARY = ("select id, total_contacts, queued, in_progress, completed, failed"
           " from public.v_call_batch_summary order by id")


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    with embedded_postgres() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("alter system set wal_level = logical")
        server.restart()
        yield server


def summary(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SUMMARY).fetchall()


def write_some(conn: psycopg.Connection[Any]) -> None:
    """Loads, moves between statuses, deletes: every kind of write the ledger books."""
    seed = Seeder(conn)
    for name in ("North", "South"):
        batch_id = seed.batch(seed.agency(name))
        seed.contacts(batch_id, 25, status="queued")
        for status in ("in_progress", "completed", "failed"):
            conn.execute(
                "update public.campaign_contacts set status = %s where ctid in (select ctid"
                " from public.campaign_contacts where batch_id = %s and status = 'queued'"
                " limit 3)", (status, batch_id),
            )
        conn.execute(
            "delete from public.campaign_contacts where ctid in (select ctid"
            " from public.campaign_contacts where batch_id = %s limit 2)", (batch_id,),
        )


def replicate(server: EmbeddedPostgres, tag: str, tables: tuple[str, ...]) -> tuple[str, str]:
    """A publisher with data, a subscriber of ``tables``, more writes after the initial copy;
    returns both URLs once the subscriber has caught up."""
    publisher = supabase_project(server.url, f"publisher_{tag}", PASSWORD).url
    subscriber = supabase_project(server.url, f"subscriber_{tag}", PASSWORD).url
    names = ", ".join(f"public.{t}" for t in tables)
    with psycopg.connect(publisher, autocommit=True) as pub:
        write_some(pub)
        pub.execute(f"create publication product for table {names}")
        # In one cluster, the slot must exist before the subscription (PostgreSQL's docs).
        pub.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (tag,))
    with psycopg.connect(subscriber, autocommit=True) as sub:
        sub.execute(
            f"create subscription product_{tag} connection '{publisher}' publication product"
            f" with (create_slot = false, slot_name = '{tag}')"
        )

        def synced() -> bool:
            row = sub.execute("select count(*) filter (where srsubstate <> 'r')"
                              " from pg_subscription_rel").fetchone()
            return row == (0,)

        assert poll(synced, 60) is not None, "initial copy did not finish"
    with psycopg.connect(publisher, autocommit=True) as pub:
        write_some(pub)
        row = pub.execute("select pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        lsn = row[0]

    def caught_up() -> bool:
        with psycopg.connect(publisher) as pub:
            got = pub.execute("select confirmed_flush_lsn >= %s::pg_lsn from pg_replication_slots"
                              " where slot_name = %s", (lsn, tag)).fetchone()
        return got == (True,)

    assert poll(caught_up, 60) is not None, "subscriber did not catch up"
    return publisher, subscriber


def unsubscribe(subscriber: str, tag: str) -> None:
    with psycopg.connect(subscriber, autocommit=True) as sub:
        sub.execute(f"drop subscription product_{tag}")


def test_a_subscriber_of_the_ledger_too_has_the_publishers_counters(
    server: EmbeddedPostgres,
) -> None:
    publisher, subscriber = replicate(server, "whole", TABLES)
    try:
        assert len(summary(publisher)) == 4
        assert summary(subscriber) == summary(publisher)
        with psycopg.connect(subscriber) as conn:
            assert drift(conn) == []
    finally:
        unsubscribe(subscriber, "whole")


def test_a_subscriber_without_the_ledger_is_found_and_repaired(
    server: EmbeddedPostgres,
) -> None:
    publisher, subscriber = replicate(
        server, "partial", tuple(t for t in TABLES if t != "call_batch_counters")
    )
    try:
        with psycopg.connect(subscriber) as conn:
            assert {row[0] for row in drift(conn)} == {row[0] for row in summary(publisher)}
            conn.execute("select public.call_batch_counters_rebuild()")
            conn.commit()
            assert drift(conn) == []
        assert summary(subscriber) == summary(publisher)
    finally:
        unsubscribe(subscriber, "partial")
