"""The per-batch counters kept by the database (supabase/migrations/*_call_batch_counters.sql):
exact after every kind of write, under concurrent writers, without torn reads, without new
deadlocks, and right after an upgrade of a database that already had contacts."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from scripts import demo_data
from scripts.localdb import apply_migrations, migration_files
from tests.database import T0, Seeder, as_authenticated

STATUSES = ("pending", "queued", "in_progress", "completed", "failed", "skipped")
COUNTERS = ("total_contacts", "queued", "in_progress", "completed", "failed", "skipped")
Conn = psycopg.Connection[Any]

# The view's counters next to counts of the contacts themselves, per batch, in one statement
# (so in one snapshot): every batch where the two differ.
MISMATCHES = """
select b.id, v.total_contacts, v.queued, v.in_progress, v.completed, v.failed, v.skipped,
       c.total, c.queued, c.in_progress, c.completed, c.failed, c.skipped
from public.call_batches b
join public.v_call_batch_summary v on v.id = b.id
cross join lateral (
  select count(*) as total,
    count(*) filter (where cc.status = 'queued') as queued,
    count(*) filter (where cc.status = 'in_progress') as in_progress,
    count(*) filter (where cc.status = 'completed') as completed,
    count(*) filter (where cc.status = 'failed') as failed,
    count(*) filter (where cc.status = 'skipped') as skipped
  from public.campaign_contacts cc where cc.batch_id = b.id
) c
where (v.total_contacts, v.queued, v.in_progress, v.completed, v.failed, v.skipped)
   <> (c.total, c.queued, c.in_progress, c.completed, c.failed, c.skipped)
"""


def mismatches(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(MISMATCHES).fetchall()


def ledger_rows(conn: Conn, batch_id: UUID | None = None) -> int:
    row = conn.execute(
        "select count(*) from public.call_batch_counters"
        " where %(batch)s::uuid is null or batch_id = %(batch)s",
        {"batch": batch_id},
    ).fetchone()
    assert row is not None
    return int(row[0])


def counters_of(conn: Conn, batch_id: UUID) -> dict[str, int]:
    row = conn.execute(
        "select total_contacts, queued, in_progress, completed, failed, skipped"
        " from public.v_call_batch_summary where id = %s",
        (batch_id,),
    ).fetchone()
    assert row is not None
    return dict(zip(COUNTERS, row, strict=True))


@pytest.fixture
def two_batches(db: Seeder) -> tuple[UUID, UUID]:
    agency = db.agency()
    return db.batch(agency), db.batch(agency)


def load(
    conn: Conn, batch_id: UUID, count: int, status: str = "pending", phone: str = "+1555"
) -> None:
    """``count`` contacts in one statement, as an upload does."""
    conn.execute(
        "insert into public.campaign_contacts (batch_id, phone_number, status, created_at)"
        " select %s, %s || lpad(g::text, 7, '0'), %s, %s from generate_series(1, %s) g",
        (batch_id, phone, status, T0, count),
    )


# --- exact after every kind of write ------------------------------------------------------------


def test_a_bulk_load_is_counted_by_one_trigger_call(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, _ = two_batches
    load(db.conn, a, 5000)
    assert counters_of(db.conn, a)["total_contacts"] == 5000
    # One statement, one ledger row.
    assert ledger_rows(db.conn, a) == 1
    assert mismatches(db.conn) == []


def test_every_kind_of_write_keeps_the_counters_exact(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, b = two_batches
    conn = db.conn
    load(conn, a, 300)
    load(conn, b, 100, status="queued")
    steps: list[tuple[str, str]] = [
        ("status of some", "update public.campaign_contacts set status = 'queued'"
         " where batch_id = %(a)s and phone_number like '%%1'"),
        ("status and batch at once", "update public.campaign_contacts set status = 'completed',"
         " batch_id = %(b)s where batch_id = %(a)s and phone_number like '%%2'"),
        ("batch only", "update public.campaign_contacts set batch_id = %(a)s"
         " where batch_id = %(b)s and phone_number like '%%3'"),
        ("no status or batch change",
         "update public.campaign_contacts set attempts = attempts + 1"),
        ("same status again", "update public.campaign_contacts set status = status"),
        ("swap two batches", "update public.campaign_contacts set batch_id ="
         " case when batch_id = %(a)s then %(b)s::uuid else %(a)s::uuid end"),
        ("delete some", "delete from public.campaign_contacts where phone_number like '%%4'"),
        ("insert one", "insert into public.campaign_contacts (batch_id, phone_number, status)"
         " values (%(a)s, '+1', 'failed')"),
        ("every status", "update public.campaign_contacts set status = (array['pending',"
         " 'queued', 'in_progress', 'completed', 'failed', 'skipped'])[1 + (attempts + length("
         "phone_number)) %% 6]"),
    ]
    for name, statement in steps:
        conn.execute(statement, {"a": a, "b": b})
        assert mismatches(conn) == [], name


def test_rolled_back_writes_leave_the_counters_as_they_were(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, b = two_batches
    load(db.conn, a, 50)
    before = counters_of(db.conn, a)
    with db.conn.transaction(force_rollback=True):
        load(db.conn, a, 70)
        db.conn.execute(
            "update public.campaign_contacts set status = 'failed', batch_id = %s", (b,)
        )
        assert counters_of(db.conn, b)["failed"] == 120
    with db.conn.transaction():
        db.conn.execute("update public.campaign_contacts set status = 'skipped'")
        with db.conn.transaction(force_rollback=True):  # a savepoint
            db.conn.execute("delete from public.campaign_contacts")
    assert counters_of(db.conn, a) == {**before, "skipped": 50}
    assert mismatches(db.conn) == []


def test_deleting_a_batch_cascades_to_its_contacts_and_its_ledger(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, b = two_batches
    load(db.conn, a, 40)
    load(db.conn, b, 30)
    db.conn.execute("delete from public.call_batches where id = %s", (a,))
    assert ledger_rows(db.conn, a) == 0
    assert counters_of(db.conn, b)["total_contacts"] == 30
    # The agency's deletion cascades through batches to contacts.
    db.conn.execute("delete from public.agencies")
    assert ledger_rows(db.conn) == 0


def test_truncating_the_contacts_empties_the_ledger(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, _ = two_batches
    load(db.conn, a, 10)
    db.conn.execute("truncate public.campaign_contacts")
    assert ledger_rows(db.conn) == 0
    assert counters_of(db.conn, a)["total_contacts"] == 0


def update_one_by_one(conn: Conn, ids: list[UUID]) -> None:
    for n, contact_id in enumerate(ids):
        conn.execute(
            "update public.campaign_contacts set status = %s where id = %s",
            (STATUSES[n % 6], contact_id),
        )


def test_a_fold_leaves_one_row_per_status(db: Seeder, two_batches: tuple[UUID, UUID]) -> None:
    a, _ = two_batches
    ids = [db.contact(a) for _ in range(60)]
    with db.conn.transaction(force_rollback=True):
        # Every statement folds (the default is one in 16, at random).
        db.conn.execute(
            "create or replace function public.call_batch_counters_fold_every()"
            " returns integer language sql immutable as $$ select 1 $$"
        )
        update_one_by_one(db.conn, ids)
        assert ledger_rows(db.conn, a) <= len(STATUSES)
        assert mismatches(db.conn) == []


def test_single_row_writes_are_folded_so_a_read_sums_a_few_rows(
    db: Seeder, two_batches: tuple[UUID, UUID]
) -> None:
    a, _ = two_batches
    ids = [db.contact(a) for _ in range(20)]
    update_one_by_one(db.conn, ids * 30)
    # 600 updates book some 1,200 rows; folds at one statement in 16 keep some 40. The bound is
    # loose so that chance cannot break it: ~200 statements in a row without a fold, which
    # happens about 3 times in a million.
    assert ledger_rows(db.conn, a) <= 400
    assert mismatches(db.conn) == []


def test_an_empty_batch_reads_zero(db: Seeder, two_batches: tuple[UUID, UUID]) -> None:
    a, _ = two_batches
    assert counters_of(db.conn, a) == dict.fromkeys(COUNTERS, 0)


# --- concurrent writers ---------------------------------------------------------------------


class Workload:
    """Writers on their own connections, each a loop of random transactions over a few batches;
    the errors they met, by SQLSTATE."""

    def __init__(self, url: str, batches: list[UUID], seconds: float) -> None:
        self.url = url
        self.batches = batches
        self.seconds = seconds
        self.errors: dict[str, int] = {}
        self.committed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, writers: list[Callable[[Conn, random.Random], None]]) -> None:
        threads = [
            threading.Thread(target=self._loop, args=(writer, n))
            for n, writer in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        self._stop.wait(self.seconds)
        self._stop.set()
        for thread in threads:
            thread.join(timeout=30)

    def _loop(self, writer: Callable[[Conn, random.Random], None], seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(self.url) as conn:
            # A deadlock is found after deadlock_timeout (1 s by default): sooner here.
            conn.execute("set deadlock_timeout = '100ms'")
            conn.commit()
            while not self._stop.is_set():
                try:
                    writer(conn, rng)
                    if rng.random() < 0.2:
                        conn.rollback()
                    else:
                        conn.commit()
                        with self._lock:
                            self.committed += 1
                except psycopg.Error as error:
                    conn.rollback()
                    state = error.sqlstate or type(error).__name__
                    with self._lock:
                        self.errors[state] = self.errors.get(state, 0) + 1


Writer = Callable[[Conn, random.Random], None]
SHARED = "+1%"


def some_contacts(
    conn: Conn, rng: random.Random, batches: list[UUID], count: int, owner: str
) -> list[UUID]:
    """Contacts of two batches whose phone number matches ``owner``, in id order: transactions
    that lock them in one global order never deadlock on the contacts themselves."""
    chosen = rng.sample(batches, 2)
    rows = conn.execute(
        "select id from public.campaign_contacts where batch_id = any(%s)"
        " and phone_number like %s order by random() limit %s",
        (chosen, owner, count),
    ).fetchall()
    return sorted(row[0] for row in rows)


def mover(batches: list[UUID], owner: str = SHARED) -> Writer:
    """Moves contacts of two batches between statuses and batches, one statement per contact."""

    def write(conn: Conn, rng: random.Random) -> None:
        for contact_id in some_contacts(conn, rng, batches, 4, owner):
            conn.execute(
                "update public.campaign_contacts set status = %s, batch_id = %s where id = %s",
                (rng.choice(STATUSES), rng.choice(batches), contact_id),
            )

    return write


def inserter_deleter(batches: list[UUID], owner: str = SHARED) -> Writer:
    def write(conn: Conn, rng: random.Random) -> None:
        conn.execute(
            "insert into public.campaign_contacts (batch_id, phone_number, status)"
            " select %s, %s, %s from generate_series(1, %s)",
            (rng.choice(batches), owner.rstrip("%"), rng.choice(STATUSES), rng.randint(1, 20)),
        )
        for contact_id in some_contacts(conn, rng, batches, 3, owner):
            conn.execute("delete from public.campaign_contacts where id = %s", (contact_id,))

    return write


def repeatable_read(write: Writer) -> Writer:
    """The writer in REPEATABLE READ snapshots. Two snapshots that update the same contact fail
    (40001) with or without triggers, so such a writer gets contacts of its own: any failure it
    meets comes from the counters."""

    def in_snapshot(conn: Conn, rng: random.Random) -> None:
        conn.execute("set transaction isolation level repeatable read")
        write(conn, rng)

    return in_snapshot


@pytest.fixture
def busy(db: Seeder, database_url: str) -> tuple[str, list[UUID]]:
    agency = db.agency()
    batches = [db.batch(agency) for _ in range(3)]
    for batch_id in batches:
        load(db.conn, batch_id, 300, status="queued")
        for owner in ("+rr1", "+rr2"):
            load(db.conn, batch_id, 20, phone=owner)
    return database_url, batches


def test_concurrent_writers_leave_exact_counters_and_no_reader_sees_a_torn_row(
    db: Seeder, busy: tuple[str, list[UUID]]
) -> None:
    url, batches = busy
    workload = Workload(url, batches, seconds=4.0)
    torn: list[tuple[Any, ...]] = []
    reads = 0
    done = threading.Event()

    def read_while_writing() -> None:
        nonlocal reads
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                torn.extend(mismatches(conn))
                reads += 1

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    workload.run(
        [
            mover(batches),
            mover(batches),
            inserter_deleter(batches),
            repeatable_read(mover(batches, owner="+rr1%")),
            repeatable_read(inserter_deleter(batches, owner="+rr2%")),
        ]
    )
    done.set()
    reader.join(timeout=30)

    assert workload.committed > 20, workload.errors
    assert workload.errors == {}
    assert reads > 5
    assert torn == []
    assert mismatches(db.conn) == []


def test_the_ledger_adds_no_deadlock(db: Seeder, busy: tuple[str, list[UUID]]) -> None:
    """Transactions touching two batches, each in its own order, locking contacts in one global
    order: no deadlock without the triggers, and none with them (a counters row per batch,
    locked per statement, deadlocks here within a second)."""
    url, batches = busy
    for enabled in (False, True):
        db.conn.execute(
            f"alter table public.campaign_contacts {'enable' if enabled else 'disable'} trigger"
            " call_batch_counters_update"
        )
        workload = Workload(url, batches, seconds=2.0)
        workload.run([mover(batches) for _ in range(6)])
        assert workload.committed > 20
        assert workload.errors == {}, f"triggers {'on' if enabled else 'off'}"
    # With the update trigger off for a while, the counters are off: put them right for the
    # fixture's next user (truncate resets the ledger).
    db.conn.execute("truncate public.campaign_contacts")


# --- upgrading a database that already has contacts -------------------------------------------


@pytest.fixture
def database_at_first_migration(fresh_database: Callable[..., str]) -> str:
    return fresh_database(migration_files()[:1])


def test_the_migration_alone_upgrades_a_database_with_data(
    database_at_first_migration: str,
) -> None:
    url = database_at_first_migration
    data = demo_data.generate(seed=99, agencies=2, batches_per_agency=3)
    with psycopg.connect(url, autocommit=True) as conn:
        demo_data.load(conn, data)
        old = {row[0]: row[1:] for row in conn.execute(
            "select id, total_contacts, queued, in_progress, completed, failed, skipped,"
            " progress_percentage, remaining_count from public.v_call_batch_summary"
        ).fetchall()}
        assert to_regclass(conn, "public.call_batch_counters") is None

    apply_migrations(url, migration_files()[1:])

    with psycopg.connect(url, autocommit=True) as conn:
        new = {row[0]: row[1:] for row in conn.execute(
            "select id, total_contacts, queued, in_progress, completed, failed, skipped,"
            " progress_percentage, remaining_count from public.v_call_batch_summary"
        ).fetchall()}
        assert new == old
        assert mismatches(conn) == []
        # And kept from then on.
        conn.execute("update public.campaign_contacts set status = 'completed'"
                     " where status = 'queued'")
        assert mismatches(conn) == []


def to_regclass(conn: Conn, name: str) -> Any:
    row = conn.execute("select to_regclass(%s)", (name,)).fetchone()
    assert row is not None
    return row[0]


# --- who may read and write the ledger ----------------------------------------------------------


def test_a_user_reads_only_their_agencys_ledger_and_writes_none(db: Seeder) -> None:
    data = demo_data.generate(seed=5, agencies=2, batches_per_agency=2, contacts_per_batch=(3, 9))
    demo_data.load(db.conn, data)
    user = next(u for u in data.users if u["agency_id"] is not None)
    own = {b["id"] for b in data.batches_of(user["agency_id"])}
    with as_authenticated(db.conn, user["id"]) as conn:
        seen = {r[0] for r in conn.execute("select batch_id from public.call_batch_counters")}
        assert seen
        assert seen <= own
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from public.call_batch_counters")


def test_a_user_writing_contacts_through_row_level_security_keeps_the_counters(
    db: Seeder,
) -> None:
    """An app that lets users write their contacts: the triggers book as their owner, so the
    user needs no right on the ledger."""
    agency, user = db.agency_with_user()
    batch = db.batch(agency)
    db.conn.execute("grant update (status) on public.campaign_contacts to authenticated")
    db.conn.execute(
        "create policy contacts_update_own on public.campaign_contacts for update"
        " to authenticated using (true)"
    )
    try:
        contact = db.contact(batch, created_at=T0 + timedelta(seconds=1))
        with as_authenticated(db.conn, user) as conn:
            conn.execute(
                "update public.campaign_contacts set status = 'completed' where id = %s",
                (contact,),
            )
            assert counters_of(conn, batch)["completed"] == 1
    finally:
        db.conn.execute("drop policy contacts_update_own on public.campaign_contacts")
        db.conn.execute("revoke update (status) on public.campaign_contacts from authenticated")
