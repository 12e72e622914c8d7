"""DB_TIMEOUT_SECONDS is one deadline for the whole database part of a read, on a real server:
a server that stops answering, a lock held past the budget under concurrent reads, a pool
exhausted meanwhile. Budgets are 2 s; every bound checked is the budget plus a generous second."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from calls_batch_get.params import BatchQuery
from calls_batch_get.store import StoreError
from calls_batch_get.store.postgres import FETCH_FAILED, PostgresStore
from tests.database import Seeder, backend_pids, poll
from tests.tokens import caller_of
from tests.wire_proxy import WireProxy, proxied_url

BUDGET = 2.0
# What a loaded, shared machine may add on top of the budget before a test calls it a failure.
SLACK = 1.0


def timed_read(store: PostgresStore, user_id: UUID, batch_id: UUID) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result: object = store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))
    except StoreError as error:
        result = error
    return time.monotonic() - started, result


@pytest.fixture
def seeded(db: Seeder) -> tuple[UUID, UUID]:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3)
    return user_id, batch_id


@pytest.fixture
def store(function_url: str) -> Iterator[PostgresStore]:
    built = PostgresStore(function_url, BUDGET)
    yield built
    built.close()


def test_a_frozen_server_fails_the_read_within_the_budget_and_its_connection_is_dropped(
    db: Seeder, function_url: str, proxy: WireProxy, seeded: tuple[UUID, UUID]
) -> None:
    user_id, batch_id = seeded
    store = PostgresStore(proxied_url(function_url, proxy.port), BUDGET)
    try:
        assert store.read(caller_of(user_id), BatchQuery(batch_id=batch_id)).batch is not None
        (frozen_backend,) = backend_pids(db.conn)
        proxy.freeze()
        try:
            seconds, result = timed_read(store, user_id, batch_id)
        finally:
            proxy.thaw()

        assert isinstance(result, StoreError), result
        assert str(result) == FETCH_FAILED
        assert isinstance(result.__cause__, psycopg.OperationalError)
        assert BUDGET - 0.1 <= seconds <= BUDGET + SLACK
        # The connection was closed, not handed back: its server process ends once it can see
        # that, and the next read connects afresh and succeeds.
        assert poll(lambda: frozen_backend not in backend_pids(db.conn)) is not None
        assert store.read(caller_of(user_id), BatchQuery(batch_id=batch_id)).batch is not None
    finally:
        store.close()


def test_pool_wait_and_statement_share_one_budget_under_eight_concurrent_reads(
    db: Seeder, database_url: str, store: PostgresStore, seeded: tuple[UUID, UUID]
) -> None:
    user_id, batch_id = seeded
    store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))

    def read(n: int) -> tuple[float, object]:
        # The last four come a little later, so that a connection frees up (the first four's
        # statements time out) while they still wait for one: with two budgets they would then
        # wait on the lock for a whole second budget.
        if n >= 4:
            time.sleep(0.3)
        return timed_read(store, user_id, batch_id)

    # Held past the budget: the four pooled connections wait on the lock, the other four reads
    # wait for a connection. Each read has the one budget for both waits.
    with psycopg.connect(database_url) as locker:
        locker.execute("lock table public.campaign_contacts in access exclusive mode")
        with ThreadPoolExecutor(8) as threads:
            results = list(threads.map(read, range(8)))
        locker.rollback()

    assert all(isinstance(result, StoreError) for _, result in results), results
    assert max(seconds for seconds, _ in results) <= BUDGET + SLACK, results
    # Each ended by the server's statement timeout (the time left, not a whole budget) or by the
    # pool's wait, never by the client cutting a connection whose server is alive.
    causes = {type(getattr(result, "__cause__", None)) for _, result in results}
    assert causes <= {psycopg.errors.QueryCanceled, PoolTimeout}, causes
    # The statements were cancelled by the server, so their connections are fine to reuse.
    assert store.read(caller_of(user_id), BatchQuery(batch_id=batch_id)).batch is not None


def test_a_lock_shorter_than_the_budget_is_waited_out(
    database_url: str, store: PostgresStore, seeded: tuple[UUID, UUID]
) -> None:
    # The server-side statement timeout is the time left in milliseconds: a read that waits
    # 0.8 s of its 2 s on a lock still succeeds (a timeout counted in the wrong unit would not).
    user_id, batch_id = seeded
    store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))
    with psycopg.connect(database_url) as locker:
        locker.execute("lock table public.campaign_contacts in access exclusive mode")
        releaser = threading.Timer(0.8, locker.rollback)
        releaser.start()
        seconds, result = timed_read(store, user_id, batch_id)
        releaser.join()

    assert not isinstance(result, StoreError), result
    assert 0.7 <= seconds <= BUDGET
