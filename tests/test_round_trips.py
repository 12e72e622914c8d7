"""One PostgresStore.read() is one network round trip on a warm connection, seen on the wire.

A small TCP proxy on loopback sits between the store and the server and notes, for each proxied
connection, which way every chunk of bytes went. A "flight" is a run of client-to-server bytes
that starts after server-to-client bytes (or at the start of the measured read): a client that
waits for an answer before it sends more needs one flight per wait, however the kernel chops the
bytes up. Counting direction changes rather than time keeps the test free of timing guesses: the
server holds its replies until the client's Sync (the extended protocol flushes on Sync), so a
single pipeline is one flight out and one run of answers back.

One wrinkle, from psycopg itself: leaving a pipeline it sends Sync and then, without waiting, a
Flush message that the server does not answer. Whether that Flush reaches the proxy before or
after the server's answer is a race (client and proxy even share the GIL), so a raw count of
flights reads 1 or 2 for the same read. The client never waits on that Flush, so it is no round
trip: the test counts the flights the server answers, and checks that an unanswered tail holds
nothing but Flush messages.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg
import pytest

from calls_batch_get.log import configure
from calls_batch_get.models import ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead
from calls_batch_get.store.postgres import CLIENT_GRACE_SECONDS, PostgresStore
from tests.database import Seeder
from tests.tokens import caller_of
from tests.wire_proxy import FLUSH, WireProxy, _Link, proxied_url


@pytest.fixture
def proxied_store(function_url: str, proxy: WireProxy) -> Iterator[PostgresStore]:
    # Torn down before the proxy (it was made after it), so connections close cleanly first.
    store = PostgresStore(proxied_url(function_url, proxy.port), 5.0)
    yield store
    store.close()


def assert_only_flushes_went_unanswered(proxy: WireProxy) -> None:
    """What the round-trip count leaves out is psycopg's Flush after Sync, and nothing else."""
    if not proxy.upstream_is_unix:
        return  # the bytes may be TLS records, which cannot be read here
    for tail in proxy.unanswered().values():
        assert tail == FLUSH * (len(tail) // len(FLUSH)), tail


def test_the_proxy_ignores_the_stale_event_of_a_link_it_closed() -> None:
    # Both ends readable in one select(): the client's EOF closes the link, and the server's
    # event, already returned, must not touch the closed socket (it used to fail the thread
    # with "Invalid file descriptor: -1").
    wire = WireProxy(socket.AF_INET, ("127.0.0.1", 9))
    client, client_peer = socket.socketpair()
    server, server_peer = socket.socketpair()
    link = _Link(0, client, server)
    wire._selector.register(client, selectors.EVENT_READ, (link, "to_server"))
    wire._selector.register(server, selectors.EVENT_READ, (link, "to_client"))
    client_peer.close()
    server_peer.sendall(b"late answer")
    try:
        wire._relay(link, "to_server")
        assert client.fileno() == server.fileno() == -1
        wire._relay(link, "to_client")
    finally:
        server_peer.close()
        wire.stop()


def test_the_proxy_counts_one_flight_per_wait_for_the_server(
    db: Seeder, database_url: str, proxy: WireProxy
) -> None:
    # The instrument itself: two statements sent one after the other are two flights, the
    # same two in one pipeline are one. Without this the main test could pass by counting
    # nothing.
    with psycopg.connect(proxied_url(database_url, proxy.port), autocommit=True) as conn:
        conn.execute("select 1")  # warm: the connection start-up is not measured
        proxy.mark()
        conn.execute("select 1")
        conn.execute("select 2")
        # Outside a pipeline psycopg sends nothing unanswered: the raw count is exact.
        assert proxy.runs() == {0: ["to_server", "to_client"] * 2}
        assert proxy.flights() == proxy.round_trips() == {0: 2}

        proxy.mark()
        with conn.pipeline():
            conn.execute("select 1")
            conn.execute("select 2")
        assert proxy.round_trips() == {0: 1}, proxy.runs()
        assert_only_flushes_went_unanswered(proxy)


def test_a_warmed_store_answers_its_first_read_in_one_round_trip(
    db: Seeder, proxied_store: PostgresStore, proxy: WireProxy
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    proxied_store.warm()
    assert proxy.accepted == 1
    proxy.mark()
    proxied_store.warm()  # warm already: nothing is sent again
    assert proxy.runs() == {}

    # The connection and the role check were the warm-up's: the first read is its statement.
    read = proxied_store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))
    assert read.batch is not None
    assert proxy.round_trips() == {0: 1}, proxy.runs()
    assert proxy.accepted == 1


def test_warming_a_frozen_server_gives_up_in_time_and_only_logs(
    function_url: str, proxy: WireProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO")
    store = PostgresStore(proxied_url(function_url, proxy.port), 1.0)
    try:
        proxy.freeze()
        started = time.monotonic()
        store.warm()
        took = time.monotonic() - started
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        proxy.thaw()
    finally:
        store.close()
    # The store's budget, and the watchdog's grace on top of it: never the request path's.
    assert took < 1.0 + CLIENT_GRACE_SECONDS + 1.0
    warnings = [line for line in lines if line["message"].startswith("could not open")]
    assert [(line["severity"], line["message"]) for line in warnings] == [
        ("WARNING", "could not open a database connection ahead of the first request")
    ]
    assert warnings[0]["cause"]


def test_warming_a_server_that_froze_after_connecting_cuts_its_connection_in_time(
    function_url: str, proxy: WireProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO")
    store = PostgresStore(proxied_url(function_url, proxy.port), 1.0)
    try:
        # One idle pooled connection, as a pool holds between requests; then the server stops
        # answering: the warm-up's role check waits on a socket that will never speak.
        with store._pool.connection():
            pass
        proxy.freeze()
        started = time.monotonic()
        warming = threading.Thread(target=store.warm, daemon=True)
        warming.start()
        warming.join(timeout=1.0 + CLIENT_GRACE_SECONDS + 3.0)
        took = time.monotonic() - started
        hung = warming.is_alive()
        proxy.thaw()
        warming.join(timeout=5.0)
    finally:
        store.close()
    assert not hung, "the warm-up waited past its budget on a frozen server"
    # Cut by the watchdog at the budget and its grace: not before, for a slow answer may come.
    assert 1.0 + CLIENT_GRACE_SECONDS - 0.1 <= took < 1.0 + CLIENT_GRACE_SECONDS + 1.0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [line for line in lines if line["message"].startswith("could not open")]
    assert [(line["severity"], line["cause"]) for line in warnings] == [
        ("WARNING", "OperationalError")
    ]


@dataclass(frozen=True)
class Seeded:
    user_id: UUID
    no_agency_user_id: UUID
    batch_id: UUID
    their_batch_id: UUID


@pytest.fixture
def seeded(db: Seeder) -> Seeded:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3, status="failed")
    db.contacts(batch_id, 4, status="completed")
    their_batch_id = db.batch(db.agency("Theirs"))
    return Seeded(user_id, db.user(None), batch_id, their_batch_id)


# Each case: the read to measure, and a check that it took the path it is named after (so that
# a case cannot quietly become another one).
Case = Callable[[Seeded], tuple[UUID, BatchQuery, Callable[[BatchRead], bool]]]
CASES: dict[str, Case] = {
    "batch": lambda s: (
        s.user_id,
        BatchQuery(batch_id=s.batch_id),
        lambda r: r.batch is not None and r.page.total == 7,
    ),
    "contact_status filter": lambda s: (
        s.user_id,
        BatchQuery(batch_id=s.batch_id, contact_status=ContactStatus.FAILED),
        lambda r: r.batch is not None and r.page.total == 3 and len(r.page.contacts) == 3,
    ),
    "page": lambda s: (
        s.user_id,
        BatchQuery(batch_id=s.batch_id, limit=2, offset=4),
        lambda r: r.page.total == 7 and len(r.page.contacts) == 2,
    ),
    "403 user without agency": lambda s: (
        s.no_agency_user_id,
        BatchQuery(batch_id=s.batch_id),
        lambda r: r.agency_id is None,
    ),
    "403 unknown user": lambda s: (
        uuid4(),
        BatchQuery(batch_id=s.batch_id, contact_status=ContactStatus.FAILED),
        lambda r: r.agency_id is None,
    ),
    "404 another agency's batch": lambda s: (
        s.user_id,
        BatchQuery(batch_id=s.their_batch_id),
        lambda r: r.agency_id is not None and r.batch is None,
    ),
    "404 missing batch": lambda s: (
        s.user_id,
        BatchQuery(batch_id=uuid4(), contact_status=ContactStatus.COMPLETED),
        lambda r: r.agency_id is not None and r.batch is None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_read_on_a_warm_connection_is_one_round_trip(
    seeded: Seeded, proxied_store: PostgresStore, proxy: WireProxy, case: str
) -> None:
    user_id, batch_query, took_its_path = CASES[case](seeded)
    # Warmed with a different read, so that nothing this statement might do once per
    # connection (a type lookup, say) hides in the warm-up.
    proxied_store.read(caller_of(seeded.user_id), BatchQuery(batch_id=uuid4()))
    assert proxy.accepted == 1

    for _ in range(2):  # the second read shows the first left nothing behind to pay for later
        proxy.mark()
        read = proxied_store.read(caller_of(user_id), batch_query)

        assert took_its_path(read)
        assert proxy.round_trips() == {0: 1}, proxy.runs()
        # One flight out, then the answers, then at most psycopg's unanswered Flush.
        assert proxy.runs()[0][:2] == ["to_server", "to_client"]
        assert_only_flushes_went_unanswered(proxy)
    # The pooled connection carried every read: no new connection, no start-up traffic.
    assert proxy.accepted == 1
