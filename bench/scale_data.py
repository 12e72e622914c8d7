"""The data of bench/scale.py: batches of 1k to 1M contacts loaded through the migrations with
``INSERT ... SELECT generate_series`` (one statement, so one trigger call, per batch), in an agency
that also has 1,000 small batches (what its policies would have to hash, were they written as a
lookup of every batch of the agency), and the cases each size is read with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from calls_batch_get.cursor import Position
from calls_batch_get.params import BatchQuery

AGENCY = UUID(int=0xA1)
OTHER_AGENCY = UUID(int=0xA2)
USER = UUID(int=0xB1)
OTHER_USER = UUID(int=0xB2)
# Contacts arrive in uploads that share one created_at.
UPLOAD_SIZE = 5_000
CREATED = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


def batch_id(size: int) -> UUID:
    return UUID(int=0xC000_0000 + size)


_CONTACTS = """
insert into public.campaign_contacts (batch_id, phone_number, first_name, last_name, email,
  company, title, status, attempts, outcome, custom_data, timezone, created_at)
select %(batch)s, '+1555' || lpad(g::text, 7, '0'), 'First' || g, 'Last' || (g %% 97),
  'c' || g || '@example.com', 'ACME', 'Manager',
  -- A processing batch's mix, spread through the order: 20%% pending, 25%% queued,
  -- 3%% in progress, 40%% completed, 7%% failed, 5%% skipped.
  case when h < 20 then 'pending' when h < 45 then 'queued' when h < 48 then 'in_progress'
       when h < 88 then 'completed' when h < 95 then 'failed' else 'skipped' end,
  case when h < 48 then 0 else 1 end,
  case when h between 48 and 87 then 'answered' when h between 88 and 94 then 'no_answer' end,
  jsonb_build_object('source', 'csv_upload', 'row', g), 'EST',
  %(created)s + ((g - 1) / %(upload)s) * interval '1 minute'
from generate_series(1, %(size)s) g, lateral (select (g::bigint * 7919 + 13) %% 100 as h) x
"""

# The agency's other batches: a thousand of 5 contacts each, in two statements.
_MANY_BATCHES = """
insert into public.call_batches (agency_id, status, created_at)
select %(agency)s, 'completed', %(created)s - g * interval '1 day' from generate_series(1, 1000) g
"""
_THEIR_CONTACTS = """
insert into public.campaign_contacts (batch_id, phone_number, status)
select b.id, '+1555000000' || k, 'completed'
from public.call_batches b, generate_series(1, 5) k
where b.agency_id = %(agency)s and b.status = 'completed';
"""


def load(url: str, sizes: tuple[int, ...]) -> None:
    """Two agencies, a user in each, and one processing batch of each size in the first, which
    also has 1,000 small batches."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into public.agencies (id, name) values (%s, 'Agency'), (%s, 'Other')",
            (AGENCY, OTHER_AGENCY),
        )
        conn.execute(
            "insert into public.users (id, agency_id) values (%s, %s), (%s, %s)",
            (USER, AGENCY, OTHER_USER, OTHER_AGENCY),
        )
        campaign = conn.execute(
            "insert into public.campaigns (agency_id, name) values (%s, 'Q1 Outreach')"
            " returning id",
            (AGENCY,),
        ).fetchone()
        agent = conn.execute(
            "insert into public.agent_mappings (agency_id, name) values (%s, 'Sales Agent')"
            " returning id",
            (AGENCY,),
        ).fetchone()
        assert campaign is not None
        assert agent is not None
        for size in sizes:
            add_batch(conn, batch_id(size), size, (campaign[0], agent[0]))
        conn.execute(_MANY_BATCHES, {"agency": AGENCY, "created": CREATED})
        conn.execute(_THEIR_CONTACTS, {"agency": AGENCY})
        # A freshly loaded table, as autovacuum would leave it: visible to index-only scans.
        conn.execute("vacuum analyze")
        # The load's dirty pages written out now, not by a checkpoint during the timings.
        conn.execute("checkpoint")


def add_batch(
    conn: psycopg.Connection[Any], batch: UUID, size: int, names: tuple[UUID, UUID] | None = None,
    upload: int = UPLOAD_SIZE,
) -> None:
    """A processing batch of the first agency with ``size`` contacts, in uploads of ``upload``
    contacts that share a created_at (1: every contact its own); ``names`` are its campaign and
    agent mapping (default: the agency's first)."""
    if names is None:
        row = conn.execute(
            "select (select id from public.campaigns where agency_id = %(a)s limit 1),"
            " (select id from public.agent_mappings where agency_id = %(a)s limit 1)",
            {"a": AGENCY},
        ).fetchone()
        assert row is not None
        names = (row[0], row[1])
    conn.execute(
        "insert into public.call_batches (id, agency_id, campaign_id, agent_mapping_id,"
        " from_number, status, created_at, started_at)"
        " values (%s, %s, %s, %s, '+15551234567', 'processing', %s, %s)",
        (batch, AGENCY, *names, CREATED, CREATED),
    )
    conn.execute(_CONTACTS, {"batch": batch, "size": size, "created": CREATED, "upload": upload})


def position_at(url: str, size: int, index: int) -> Position:
    """The ``index``-th contact (0-based, in page order) of the batch of ``size``, as the cursor
    the API hands out after it describes it (whether the next one shares its created_at)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select created_at, id from public.campaign_contacts where batch_id = %s"
            " order by created_at, id offset %s limit 2",
            (batch_id(size), index),
        ).fetchall()
    (created_at, contact_id), *following = rows
    return Position(
        created_at=created_at,
        id=contact_id,
        tie_follows=bool(following) and following[0][0] == created_at,
    )


@dataclass(frozen=True)
class Case:
    """One request of the benchmark."""

    name: str
    user: UUID
    query: BatchQuery
