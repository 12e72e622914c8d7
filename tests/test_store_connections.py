"""What the direct store asks of each connection's socket and of its pool, seen where it takes
effect: in the kernel's socket options, the pool's threads, how long waiting for a connection
and closing take, and which failures it tries again."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest

from calls_batch_get.cursor import Position
from calls_batch_get.deadline import Deadline
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import StoreError
from calls_batch_get.store.postgres import (
    APPLICATION_NAME,
    CLOSE_TIMEOUT_SECONDS,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE_SECONDS,
    KEEPALIVE_INTERVAL_SECONDS,
    MAX_IDLE_SECONDS,
    PostgresStore,
)
from tests.database import T0, Seeder
from tests.tokens import caller_of
from tests.wire_proxy import WireProxy, proxied_url

BUDGET_SECONDS = 3.0
# A thread's start and a busy machine's scheduling, on top of the close timeout.
SLACK_SECONDS = 0.75


def read_in_background(store: PostgresStore) -> tuple[threading.Thread, list[StoreError]]:
    """A read of a batch nobody has, started on a thread of its own; its failures are listed."""
    failures: list[StoreError] = []

    def read() -> None:
        try:
            store.read(caller_of(uuid4()), BatchQuery(batch_id=uuid4()))
        except StoreError as failure:
            failures.append(failure)

    reader = threading.Thread(target=read)
    reader.start()
    return reader, failures


def test_each_connection_asks_the_kernel_to_notice_a_dead_network(
    function_url: str, proxy: WireProxy
) -> None:
    store = PostgresStore(proxied_url(function_url, proxy.port), BUDGET_SECONDS)
    try:
        store.warm()
        with store._pool.connection() as conn:
            # A duplicate of the connection's descriptor: the same socket, closed on our own.
            sock = socket.socket(fileno=os.dup(conn.fileno()))
            try:
                options = {
                    "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP,
                                                       socket.TCP_USER_TIMEOUT),
                }
            finally:
                sock.close()
    finally:
        store.close()
    assert options == {
        # An idle pooled connection is probed, so a network that died under it is noticed
        # before a request picks it.
        "keepalive": 1,
        "idle": KEEPALIVE_IDLE_SECONDS,
        "interval": KEEPALIVE_INTERVAL_SECONDS,
        "count": KEEPALIVE_COUNT,
        # TCP gives up on a peer that stopped acknowledging one second after the budget: never
        # before the request path's own deadline.
        "user_timeout_ms": 4000,
    }


def test_the_pools_threads_are_named_after_the_function(function_url: str) -> None:
    # What a thread dump (py-spy, faulthandler) of an instance shows.
    before = set(threading.enumerate())
    store = PostgresStore(function_url, BUDGET_SECONDS)
    try:
        store.warm()
        names = {thread.name for thread in set(threading.enumerate()) - before}
        assert {f"{APPLICATION_NAME}-worker-0", f"{APPLICATION_NAME}-scheduler"} <= names
        # psycopg_pool's own timer retires a connection idle this long (it was told so).
        assert store._pool.max_idle == MAX_IDLE_SECONDS
    finally:
        store.close()


def test_closing_a_store_whose_pool_is_connecting_to_a_frozen_server_takes_the_close_timeout(
    function_url: str, proxy: WireProxy
) -> None:
    # At an instance's shutdown: a pool worker stuck connecting to a server that stopped
    # answering must not hold the exit for the whole connect timeout.
    store = PostgresStore(proxied_url(function_url, proxy.port), BUDGET_SECONDS)
    proxy.freeze()
    reader, failures = read_in_background(store)
    try:
        # The read waits for a connection while a pool worker tries to open one.
        time.sleep(0.3)
        started = time.monotonic()
        store.close()
        took = time.monotonic() - started
    finally:
        proxy.thaw()
        reader.join(BUDGET_SECONDS + SLACK_SECONDS)
    assert took < CLOSE_TIMEOUT_SECONDS + SLACK_SECONDS, took
    assert not reader.is_alive()
    assert len(failures) == 1


def test_a_read_on_a_fresh_store_whose_server_froze_fails_within_the_budget(
    function_url: str, proxy: WireProxy
) -> None:
    # No connection yet, and the server takes the connection but never answers: the pool keeps
    # trying to connect, and the read must give up waiting for it when its budget is spent.
    store = PostgresStore(proxied_url(function_url, proxy.port), 1.0)
    proxy.freeze()
    reader, failures = read_in_background(store)
    try:
        reader.join(1.0 + SLACK_SECONDS)
        assert not reader.is_alive(), "the read outlived its budget waiting for a connection"
        assert [failure.status for failure in failures] == [500]
    finally:
        proxy.thaw()
        store.close()
        reader.join(BUDGET_SECONDS)


def test_a_statements_own_failure_on_an_open_connection_is_not_tried_again(
    database_url: str, pg_store: PostgresStore
) -> None:
    # Only a connection that died under the statement is worth a second try; a failure the
    # server reported on a connection still open (here a lock it could not get in time) would
    # be met again, and the read would spend its budget on it.
    attempts: list[bool] = []

    def work(conn: psycopg.Connection[dict[str, object]], judged: bool) -> None:
        attempts.append(judged)
        conn.execute("set lock_timeout = '50ms'")
        conn.execute("select count(*) from public.call_batches")

    with psycopg.connect(database_url) as holder:
        holder.execute("lock table public.call_batches in access exclusive mode")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            pg_store._on_a_connection(Deadline(BUDGET_SECONDS), work)
    assert len(attempts) == 1


def test_a_query_with_a_cursor_starts_after_it_whatever_its_offset(
    db: Seeder, pg_store: PostgresStore
) -> None:
    # BatchQuery's contract: with ``after`` set, ``offset`` is not used (the parameters refuse
    # both at once; the store must not add them up if a caller builds one).
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    ids = db.contacts(batch_id, 5, step=timedelta(seconds=1))
    after = Position(created_at=T0, id=ids[0])
    pages = [
        pg_store.read(caller_of(user_id),
                      BatchQuery(batch_id=batch_id, offset=offset, after=after)).page
        for offset in (0, 2)
    ]
    assert [[c.id for c in page.contacts] for page in pages] == [ids[1:], ids[1:]]


def test_a_retry_after_a_connection_died_mid_read_waits_only_for_what_is_left(
    db: Seeder, database_url: str, function_url: str
) -> None:
    # A read blocked on a lock loses its connection half-way through its budget (the server
    # ended the session: a restart, a pooler): it is tried again on a new connection, which the
    # server refuses for now. Waiting for that one may take what is left of the budget, not the
    # whole budget again.
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    store = PostgresStore(function_url, BUDGET_SECONDS, max_connections=1)
    took: list[float] = []

    def read() -> None:
        started = time.monotonic()
        try:
            store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))
        except StoreError:
            took.append(time.monotonic() - started)

    try:
        store.warm()
        db.conn.execute("alter role calls_batch_get connection limit 0")
        with psycopg.connect(database_url) as holder:
            holder.execute("lock table public.call_batches in access exclusive mode")
            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(BUDGET_SECONDS / 2)
            db.conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where usename = 'calls_batch_get' and datname = current_database()"
            )
            reader.join(2 * BUDGET_SECONDS)
    finally:
        db.conn.execute("alter role calls_batch_get connection limit -1")
        store.close()
    assert len(took) == 1
    assert took[0] < BUDGET_SECONDS + SLACK_SECONDS, took
