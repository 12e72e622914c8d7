"""The data of bench/scale.py: batches of 1k to 1M contacts loaded through the migrations with
``INSERT ... SELECT generate_series`` (one statement, so one trigger call, per batch), and the
floor each measurement is compared with.

The floor is the least work that gives the same answer: the batch's counters read by primary key
(from a table of exact per-batch counts, made once here, that no writer keeps) and an index range
of exactly ``limit`` rows from where the page starts. It runs through the same client path as the
store it is compared with (pool, pipeline, validation; or supabase-py and the stand-in), so the
ratio is the cost of the store's SQL over the least possible SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg import sql

from calls_batch_get.cursor import Position
from calls_batch_get.models import Contact, ContactStatus, rfc3339
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead
from calls_batch_get.store.postgres import PostgresStore, read_parameters, statement_for
from calls_batch_get.store.supabase import SupabaseStore

AGENCY = UUID(int=0xA1)
OTHER_AGENCY = UUID(int=0xA2)
USER = UUID(int=0xB1)
OTHER_USER = UUID(int=0xB2)
# Contacts arrive in uploads that share one created_at.
UPLOAD_SIZE = 5_000
CREATED = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
# Before every contact: a floor page "from the start" is a range from here.
ORIGIN = Position(created_at=datetime(1970, 1, 1, tzinfo=UTC), id=UUID(int=0))
FLOOR_VIEW = "bench_floor_summary"


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

_FLOOR = f"""
create table public.bench_floor_counters as
  select cc.batch_id,
    count(*)::integer as total_contacts,
    (count(*) filter (where cc.status = 'queued'))::integer as queued,
    (count(*) filter (where cc.status = 'in_progress'))::integer as in_progress,
    (count(*) filter (where cc.status = 'completed'))::integer as completed,
    (count(*) filter (where cc.status = 'failed'))::integer as failed,
    (count(*) filter (where cc.status = 'skipped'))::integer as skipped
  from public.campaign_contacts cc group by cc.batch_id;
alter table public.bench_floor_counters add primary key (batch_id);
create view public.{FLOOR_VIEW} as
select b.id, b.agency_id, b.campaign_id, c.name as campaign_name, b.agent_mapping_id,
  am.name as agent_name, b.from_number, b.status, f.total_contacts, f.queued, f.in_progress,
  f.completed, f.failed, f.skipped,
  case when f.total_contacts = 0 then 0.0
    else round(100.0 * (f.completed + f.failed + f.skipped) / f.total_contacts, 1)
  end as progress_percentage,
  f.total_contacts - f.completed - f.failed - f.skipped as remaining_count,
  b.calls_per_minute, b.max_concurrent, b.scheduled_for, b.created_at, b.started_at
from public.call_batches b
left join public.campaigns c on c.id = b.campaign_id
left join public.agent_mappings am on am.id = b.agent_mapping_id
join public.bench_floor_counters f on f.batch_id = b.id;
"""  # noqa: S608 - FLOOR_VIEW is a constant


def load(url: str, sizes: tuple[int, ...]) -> None:
    """Two agencies, a user in each, and one processing batch of each size in the first."""
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
            conn.execute(
                "insert into public.call_batches (id, agency_id, campaign_id, agent_mapping_id,"
                " from_number, status, created_at, started_at)"
                " values (%s, %s, %s, %s, '+15551234567', 'processing', %s, %s)",
                (batch_id(size), AGENCY, campaign[0], agent[0], CREATED, CREATED),
            )
            conn.execute(
                _CONTACTS,
                {"batch": batch_id(size), "size": size, "created": CREATED, "upload": UPLOAD_SIZE},
            )
        conn.execute(_FLOOR)
        # A freshly loaded table, as autovacuum would leave it: visible to index-only scans.
        conn.execute("vacuum analyze")


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
    """One request of the benchmark, and where the floor starts the same page."""

    name: str
    user: UUID
    query: BatchQuery
    floor_from: Position = ORIGIN

    @property
    def floor_query(self) -> BatchQuery:
        return self.query.model_copy(update={"offset": 0, "after": self.floor_from})


class FloorPostgresStore(PostgresStore):
    """The direct store's client path over the floor statement: the store's own cursor
    statement, reading the counters by primary key."""

    def __init__(self, database_url: str, timeout_seconds: float) -> None:
        super().__init__(database_url, timeout_seconds)
        with psycopg.connect(database_url) as conn:
            self._floor = {
                status: sql.SQL(
                    statement_for(BatchQuery(batch_id=UUID(int=0), contact_status=status,
                                             after=ORIGIN))
                    .as_string(conn)
                    .replace("public.v_call_batch_summary", f"public.{FLOOR_VIEW}")
                )
                for status in (None, *ContactStatus)
            }

    def floor(self, user_id: UUID, query: BatchQuery) -> BatchRead:
        statement = self._floor[query.contact_status]
        return self.run(statement, read_parameters(user_id, query), query)


class FloorSupabaseStore(SupabaseStore):
    """supabase-py's path to the floor: the counters by primary key, and one index range of
    ``limit`` rows from where the page starts."""

    BATCH_SOURCE = FLOOR_VIEW

    def _page_reads(self, query: BatchQuery) -> list[Callable[[], list[Contact]]]:
        after = query.after or ORIGIN
        wanted = query.limit + 1
        return [lambda: self._floor_range(query, after, wanted)]

    def _floor_range(self, query: BatchQuery, after: Position, limit: int) -> list[Contact]:
        return self._range(query, limit, ("created_at", "gte", rfc3339(after.created_at)))

