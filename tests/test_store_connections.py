"""What the direct store asks of each connection's socket and of its pool, seen where it takes
effect: in the kernel's socket options, the pool's threads, and how long closing takes."""

from __future__ import annotations

import os
import socket
import threading
import time
from uuid import uuid4

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
from tests.tokens import caller_of
from tests.wire_proxy import WireProxy, proxied_url

BUDGET_SECONDS = 3.0
# A thread's start and a busy machine's scheduling, on top of the close timeout.
SLACK_SECONDS = 0.75


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
    failures: list[BaseException] = []

    def read() -> None:
        try:
            store.read(caller_of(uuid4()), BatchQuery(batch_id=uuid4()))
        except StoreError as failure:
            failures.append(failure)

    reader = threading.Thread(target=read)
    reader.start()
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

