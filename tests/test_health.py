"""GET /health through the real Functions Framework app, on both stores: no token, no tenant
data, each part down, the shared probe and its window, the headers and the log line; and the
parts themselves: the direct store's ping on a real PostgreSQL, the PostgREST store's at the wire,
the key set cache's ``usable`` against a real key service."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import respx
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from calls_batch_get import health
from calls_batch_get.handler import Handler
from calls_batch_get.health import CACHE_SECONDS, HEALTH_PATH, HealthCheck, Report
from calls_batch_get.keyset import KeySetCache
from calls_batch_get.log import configure
from calls_batch_get.store.postgres import PING_STATEMENT, PostgresStore
from calls_batch_get.store.supabase import create_supabase_store
from tests.clock import Clock, hand_clock
from tests.conftest import ANON_KEY, AppFactory
from tests.database import Seeder, backend_pids, poll
from tests.live import end_app_sessions, serving
from tests.tokens import JWKS_PATH, KeySetServer, SigningKey
from tests.wire_proxy import WireProxy, proxied_url

JSON = "application/json; charset=utf-8"
ALL_OK = {"status": "ok", "database": "ok", "key_set": "ok"}
DATABASE_DOWN = {
    "error": "Unavailable: the database", "status": "down", "database": "down", "key_set": "ok"
}
KEY_SET_DOWN = {
    "error": "Unavailable: the key set", "status": "down", "database": "ok", "key_set": "down"
}
BOTH_DOWN = {
    "error": "Unavailable: the database and the key set",
    "status": "down", "database": "down", "key_set": "down",
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return hand_clock(monkeypatch, "calls_batch_get.health.monotonic")


def handler_of(client: FlaskClient) -> Handler:
    """The instance behind the app make_app just built (main.py is loaded anew for each)."""
    del client
    handle: Handler = sys.modules["main"]._handle
    return handle


def probe(client: FlaskClient, **headers: str) -> TestResponse:
    return client.get(HEALTH_PATH, headers=headers)


def body(response: TestResponse) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.data)
    return parsed


LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> LogLines:
    capsys.readouterr()
    return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def direct(make_app: AppFactory, function_url: str, database_url: str) -> Iterator[FlaskClient]:
    yield make_app(DATABASE_URL=function_url)
    end_app_sessions(database_url)


@pytest.fixture
def rest(env: dict[str, str]) -> Iterator[respx.MockRouter]:
    """PostgREST at the wire, for the supabase-py store; anything unrouted is refused."""
    with respx.mock(base_url=f"{env['SUPABASE_URL']}/rest/v1", assert_all_called=False) as router:
        yield router


# --- the answer ---------------------------------------------------------------------------------


def test_a_probe_needs_no_token_and_says_both_parts_answer(direct: FlaskClient) -> None:
    response = probe(direct)
    assert response.status_code == 200
    assert response.data == b'{"status":"ok","database":"ok","key_set":"ok"}'
    assert response.headers["Content-Type"] == JSON
    # The headers every answer of the function carries.
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-Id, ETag"
    assert "WWW-Authenticate" not in response.headers


def test_a_token_sent_along_is_neither_needed_nor_looked_at(direct: FlaskClient) -> None:
    garbage = probe(direct, Authorization="Bearer not-a-token")
    assert (garbage.status_code, body(garbage)) == (200, ALL_OK)


def test_only_a_get_of_exactly_the_path_is_the_health_check(direct: FlaskClient) -> None:
    # Every other path stays the read it always was (the function serves any path).
    for path in ("/healthz", "/health/", "/", "/Health"):
        response = direct.get(path)
        assert (response.status_code, body(response)["code"]) == (401, "missing_token"), path
    assert direct.get(f"{HEALTH_PATH}?batch_id=x").status_code == 200
    assert direct.post(HEALTH_PATH).status_code == 405
    assert direct.head(HEALTH_PATH).status_code == 405
    preflight = direct.options(
        HEALTH_PATH, headers={"Origin": "https://app.example.com",
                              "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204


def test_an_allow_listed_origin_is_echoed_as_on_every_answer(
    make_app: AppFactory, function_url: str, database_url: str
) -> None:
    client = make_app(
        DATABASE_URL=function_url,
        CORS_ALLOW_ORIGINS="https://app.example.com,https://admin.example.com",
    )
    try:
        allowed = probe(client, Origin="https://admin.example.com")
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
        assert allowed.headers["Vary"] == "Origin"
        other = probe(client, Origin="https://evil.example.com")
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        end_app_sessions(database_url)


def last_queries(conn: psycopg.Connection[Any], pids: set[int]) -> list[str]:
    """What each of these server processes ran last."""
    return [row[0] for row in conn.execute(
        "select query from pg_stat_activity where pid = any(%s)", (list(pids),))]


def test_no_tenant_data_is_read_or_answered(
    direct: FlaskClient, db: Seeder, clock: Clock
) -> None:
    agency_id, user_id = db.agency_with_user("Secret Agency")
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3, email="someone@example.com")
    before = backend_pids(db.conn)
    response = probe(direct)
    assert body(response) == ALL_OK
    for value in (agency_id, user_id, batch_id, "Secret Agency", "someone@example.com"):
        assert str(value).encode() not in response.data
    # The store's first round trip judges its role (as any first read does); the health check's
    # own statement, once the role is known, is the trivial one, and nothing else ran.
    clock.advance(CACHE_SECONDS)
    assert body(probe(direct)) == ALL_OK
    assert last_queries(db.conn, backend_pids(db.conn) - before) == [PING_STATEMENT]


def test_the_log_line_of_a_probe(
    direct: FlaskClient, make_app: AppFactory, key_server: KeySetServer, log_lines: LogLines,
    rest: respx.MockRouter,
) -> None:
    probe(direct, **{"X-Request-Id": "uptime-1", "User-Agent": "GoogleStackdriverMonitoring"})
    key_server.status = 503
    rest.head("/").respond(503)
    probe(make_app())  # the supabase-py store, its PostgREST and its key service down
    ok, failed = [line for line in log_lines() if "httpRequest" in line]
    assert (ok["severity"], ok["message"], ok["status"], ok["request_id"]) == (
        "INFO", "GET 200", 200, "uptime-1"
    )
    assert ok["user_id"] is None
    assert "error" not in ok
    assert "cause" not in ok
    assert ok["httpRequest"]["requestUrl"] == HEALTH_PATH
    assert ok["httpRequest"]["userAgent"] == "GoogleStackdriverMonitoring"
    assert (failed["severity"], failed["status"]) == ("ERROR", 503)
    assert failed["error"] == BOTH_DOWN["error"]
    assert "cause" not in failed


# --- the direct store's part --------------------------------------------------------------------


def test_a_frozen_database_is_down_within_the_budget_and_back_once_it_answers(
    make_app: AppFactory, function_url: str, database_url: str, proxy: WireProxy, clock: Clock,
    log_lines: LogLines,
) -> None:
    client = make_app(DATABASE_URL=proxied_url(function_url, proxy.port), DB_TIMEOUT_SECONDS="1")
    try:
        assert body(probe(client)) == ALL_OK
        proxy.freeze()
        clock.advance(CACHE_SECONDS)
        started = time.monotonic()
        try:
            response = probe(client)
        finally:
            proxy.thaw()
        assert time.monotonic() - started < 1 + 0.5 + 1.0
        assert (response.status_code, body(response)) == (503, DATABASE_DOWN)
        # Still down for the rest of the window, without asking again.
        assert body(probe(client)) == DATABASE_DOWN
        clock.advance(CACHE_SECONDS)
        assert body(probe(client)) == ALL_OK
        assert handler_of(client).health.probes == 3
        # Neither the answer nor its log line says more than which part is down.
        lines = [line for line in log_lines() if line.get("status") == 503]
        assert [(line["error"], "cause" in line) for line in lines] == [
            (DATABASE_DOWN["error"], False)
        ] * 2
        assert str(proxy.port).encode() not in response.data
    finally:
        end_app_sessions(database_url)


def test_a_database_that_answers_within_the_budget_is_up(
    make_app: AppFactory, function_url: str, database_url: str, proxy: WireProxy, clock: Clock,
) -> None:
    client = make_app(DATABASE_URL=proxied_url(function_url, proxy.port), DB_TIMEOUT_SECONDS="2")
    try:
        assert body(probe(client)) == ALL_OK
        proxy.freeze()
        clock.advance(CACHE_SECONDS)
        # Slow, not gone: it answers a little before the budget runs out.
        threading.Timer(1.9, proxy.thaw).start()
        started = time.monotonic()
        response = probe(client)
        assert time.monotonic() - started >= 1.8
        assert (response.status_code, body(response)) == (200, ALL_OK)
    finally:
        proxy.thaw()
        end_app_sessions(database_url)


def test_an_unreachable_database_is_down(make_app: AppFactory) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = make_app(DATABASE_URL=f"postgresql://calls_batch_get:pw@127.0.0.1:{port}/postgres")
    response = probe(client)
    assert (response.status_code, body(response)) == (503, DATABASE_DOWN)


def test_the_ping_is_one_trivial_round_trip_on_a_warm_connection(
    function_url: str, proxy: WireProxy, db: Seeder
) -> None:
    store = PostgresStore(proxied_url(function_url, proxy.port), 5.0)
    try:
        store.warm()
        proxy.mark()
        assert store.ping()
        assert list(proxy.round_trips().values()) == [1]
        assert proxy.accepted == 1
    finally:
        store.close()


def test_the_first_ping_judges_the_role_and_a_refused_one_is_down_for_good(
    database_url: str, capsys: pytest.CaptureFixture[str], db: Seeder
) -> None:
    configure("INFO")
    # The server's own superuser: a role the store refuses to read as.
    store = PostgresStore(database_url, 5.0)
    try:
        before = backend_pids(db.conn)
        assert store.ping() is False
        (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
        assert line["severity"] == "ERROR"
        assert "is a superuser" in line["message"]
        # Refused once, for the instance's life: no new round trip, no new line.
        assert store.ping() is False
        assert capsys.readouterr().out == ""
        assert len(backend_pids(db.conn) - before) <= 1
    finally:
        store.close()


def test_the_function_role_pings_after_judging_itself(function_url: str, db: Seeder) -> None:
    before = backend_pids(db.conn)
    store = PostgresStore(function_url, 5.0)
    try:
        assert store.ping() is True
        (pid,) = backend_pids(db.conn) - before
        assert "pg_has_role" in last_queries(db.conn, {pid})[0]
        assert store.ping() is True
        assert last_queries(db.conn, {pid}) == [PING_STATEMENT]
    finally:
        store.close()


@pytest.mark.parametrize("connections", [1, 3])
def test_connections_dropped_while_idle_are_tried_again(
    function_url: str, database_url: str, db: Seeder, connections: int
) -> None:
    # As many dropped connections as the pool holds: every try on one fails at once, and the
    # last on a fresh one answers (a server restart or a pooler's idle cut leaves just that).
    store = PostgresStore(function_url, 5.0, max_connections=connections)
    try:
        holding: list[threading.Thread] = []
        barrier = threading.Barrier(connections)

        def hold() -> None:
            with store._pool.connection() as conn:
                conn.execute("select 1")
                barrier.wait(5)

        for _ in range(connections):
            holding.append(threading.Thread(target=hold))
            holding[-1].start()
        for thread in holding:
            thread.join(5)
        assert store.ping()
        before = backend_pids(db.conn)
        assert len(before) == connections
        end_app_sessions(database_url)
        assert store.ping() is True
    finally:
        store.close()


def test_a_closed_store_is_down(pg_store: PostgresStore) -> None:
    pg_store.close()
    assert pg_store.ping() is False


# --- the PostgREST store's part -----------------------------------------------------------------

URL = "https://project-ref.supabase.co"
KEY = "sb_publishable_test_key_0123456789"


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{URL}/rest/v1", assert_all_called=False) as router:
        yield router


def test_the_rest_ping_is_one_head_of_the_root_with_the_key_alone(
    wire: respx.MockRouter,
) -> None:
    root = wire.head("/").respond(200)
    assert create_supabase_store(URL, KEY, 1.0).ping() is True
    assert root.call_count == 1
    sent = root.calls.last.request.headers
    assert (sent["apikey"], sent["authorization"]) == (KEY, f"Bearer {KEY}")


@pytest.mark.parametrize(
    ("answer", "up"),
    [
        (httpx.Response(200), True),
        # PostgREST's own refusals are answers: it is up, and so is what it reads.
        (httpx.Response(400), True),
        (httpx.Response(401), True),
        (httpx.Response(404), True),
        (httpx.Response(499), True),
        # PostgREST without its database (503), the gateway without PostgREST (502, 504).
        (httpx.Response(500), False),
        (httpx.Response(502), False),
        (httpx.Response(503), False),
        (httpx.Response(504), False),
        (httpx.ConnectError("refused"), False),
        (httpx.ReadTimeout("timed out"), False),
    ],
)
def test_what_the_rest_ping_takes_for_down(
    wire: respx.MockRouter, answer: httpx.Response | Exception, up: bool
) -> None:
    wire.head("/").mock(side_effect=[answer])
    assert create_supabase_store(URL, KEY, 1.0).ping() is up


def test_a_silent_api_is_down_within_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        store = create_supabase_store(f"http://127.0.0.1:{silent.getsockname()[1]}", KEY, 0.3)
        started = time.monotonic()
        assert store.ping() is False
    assert time.monotonic() - started < 2.0


def test_through_postgrest_the_probe_asks_once_per_window(
    make_app: AppFactory, rest: respx.MockRouter, clock: Clock
) -> None:
    root = rest.head("/").respond(200)
    client = make_app()
    assert body(probe(client)) == ALL_OK
    assert body(probe(client)) == ALL_OK
    assert root.call_count == 1
    clock.advance(CACHE_SECONDS - 0.01)
    probe(client)
    assert root.call_count == 1
    clock.advance(0.01)
    probe(client)
    assert root.call_count == 2
    assert handler_of(client).health.probes == 2
    # No read was sent: the health check never calls the read function.
    assert [call.request.method for call in rest.calls] == ["HEAD", "HEAD"]


def test_through_postgrest_a_database_it_cannot_reach_is_down(
    make_app: AppFactory, rest: respx.MockRouter
) -> None:
    rest.head("/").respond(503, json={"code": "PGRST001", "message": "Database client error"})
    response = probe(make_app())
    assert (response.status_code, body(response)) == (503, DATABASE_DOWN)
    assert b"PGRST" not in response.data


def test_concurrent_probes_share_one(make_app: AppFactory, rest: respx.MockRouter) -> None:
    # A slow PostgREST and eight probes at once: one request reaches it, and all eight get its
    # answer (no herd of probes onto a database that is struggling).
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return httpx.Response(200)

    root = rest.head("/").mock(side_effect=slow)
    app = make_app().application
    answers: list[tuple[int, bytes]] = []
    with serving(app) as url:
        def ask() -> None:
            # The function's own client is mocked by respx; the probes go over real HTTP.
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as conn:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            head, _, content = data.partition(b"\r\n\r\n")
            answers.append((int(head.split()[1]), content))

        askers = [threading.Thread(target=ask) for _ in range(8)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join(10)
    assert root.call_count == 1
    assert answers == [(200, json.dumps(ALL_OK, separators=(",", ":")).encode())] * 8


# --- the key set's part -------------------------------------------------------------------------


def test_a_key_service_that_fails_is_down_and_not_asked_again_during_its_back_off(
    make_app: AppFactory, rest: respx.MockRouter, key_server: KeySetServer, clock: Clock
) -> None:
    rest.head("/").respond(200)
    key_server.status = 503
    client = make_app()
    response = probe(client)
    assert (response.status_code, body(response)) == (503, KEY_SET_DOWN)
    assert key_server.fetches == 1
    # A new probe after the window: the key set's back-off (5 s, real time) still holds.
    clock.advance(CACHE_SECONDS)
    assert body(probe(client)) == KEY_SET_DOWN
    assert key_server.fetches == 1


def test_a_key_set_held_is_usable_and_never_refetched_for_a_probe(
    make_app: AppFactory, rest: respx.MockRouter, key_server: KeySetServer, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rest.head("/").respond(200)
    client = make_app()
    assert body(probe(client)) == ALL_OK
    assert key_server.fetches == 1
    key_server.status = 503
    # Long past the set's lifespan: a request would refresh it beside its answer; a probe not.
    later = time.monotonic() + 3600
    monkeypatch.setattr("calls_batch_get.keyset.monotonic", lambda: later)
    clock.advance(CACHE_SECONDS)
    assert body(probe(client)) == ALL_OK
    assert key_server.fetches == 1


def test_both_parts_down(make_app: AppFactory, key_server: KeySetServer) -> None:
    key_server.status = 500
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    response = probe(make_app(DATABASE_URL=f"postgresql://u:p@127.0.0.1:{port}/postgres"))
    assert (response.status_code, body(response)) == (503, BOTH_DOWN)


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.ec()


@pytest.fixture
def service(signing_key: SigningKey) -> Iterator[KeySetServer]:
    server = KeySetServer(keys=[signing_key.public_jwk()]).start()
    yield server
    server.stop()


def cache_of(service: KeySetServer, fetch_timeout: float = 5.0) -> KeySetCache:
    return KeySetCache(service.url + JWKS_PATH, lifespan=600.0, fetch_timeout=fetch_timeout,
                       unknown_kid_cooldown=30.0, backoff=(5.0, 60.0))


def test_usable_fetches_the_first_set_and_then_only_holds_it(service: KeySetServer) -> None:
    cache = cache_of(service)
    assert cache.usable() is True
    assert cache.usable() is True
    assert (service.fetches, cache.fetches) == (1, 1)


def test_usable_is_false_after_a_failed_fetch_and_during_the_back_off(
    service: KeySetServer,
) -> None:
    service.status = 500
    cache = cache_of(service)
    assert cache.usable() is False
    service.status = 200
    started = time.monotonic()
    assert cache.usable() is False
    # At once: there is no fetch to wait for during the back-off.
    assert time.monotonic() - started < 1.0
    assert service.fetches == 1


def test_usable_gives_up_on_a_key_service_trickling_its_headers_in_time(
    service: KeySetServer,
) -> None:
    # A byte at a time restarts every socket timeout: only the wait's own bound ends it.
    service.trickling = True
    cache = cache_of(service, fetch_timeout=0.5)
    answers: list[bool] = []
    asking = threading.Thread(target=lambda: answers.append(cache.usable()), daemon=True)
    started = time.monotonic()
    asking.start()
    asking.join(timeout=5.0)
    took = time.monotonic() - started
    service.trickling = False
    assert answers == [False]
    assert took < 2.0


def test_usable_waits_for_the_fetch_under_way_at_most_its_timeout(service: KeySetServer) -> None:
    service.hanging = True
    cache = cache_of(service, fetch_timeout=0.5)
    cache.prefetch()
    assert poll(lambda: service.fetches == 1) is not None
    started = time.monotonic()
    assert cache.usable() is False
    assert 0.3 < time.monotonic() - started < 2.0
    assert cache.fetches == 1, "it waited for the fetch under way instead of starting another"


def test_usable_takes_the_set_a_fetch_under_way_brings(service: KeySetServer) -> None:
    service.hanging = True
    cache = cache_of(service)
    cache.prefetch()
    assert poll(lambda: service.fetches == 1) is not None
    threading.Timer(0.2, lambda: setattr(service, "hanging", False)).start()
    assert cache.usable() is True
    assert cache.fetches == 1


# --- the probe's window and its report, in process ----------------------------------------------


def test_the_window_is_a_few_seconds() -> None:
    assert 1.0 <= CACHE_SECONDS <= 10.0
    assert CACHE_SECONDS == 5.0


def test_a_result_is_kept_for_the_window_and_no_longer(
    clock: Clock, service: KeySetServer
) -> None:
    cache = cache_of(service)
    check = HealthCheck(database=lambda: True, key_set=cache.usable)
    assert check.report().ok
    clock.advance(CACHE_SECONDS - 0.001)
    assert check.report().ok
    assert check.probes == 1
    clock.advance(0.001)
    check.report()
    assert check.probes == 2


def test_the_window_starts_when_the_answer_came(
    clock: Clock, rest: respx.MockRouter, env: dict[str, str]
) -> None:
    # A probe that took 3 s (on the module's clock) serves its full window after it.
    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(3.0)
        return httpx.Response(200)

    rest.head("/").mock(side_effect=slow)
    store = create_supabase_store(env["SUPABASE_URL"], ANON_KEY, 1.0)
    check = HealthCheck(database=store.ping, key_set=lambda: True)
    check.report()
    clock.advance(CACHE_SECONDS - 0.001)
    check.report()
    assert check.probes == 1


def test_a_part_whose_check_raises_is_down(pg_store: PostgresStore) -> None:
    def broken() -> bool:
        raise RuntimeError("not a bool")

    report = HealthCheck(database=pg_store.ping, key_set=broken).report()
    assert (report.database, report.key_set, report.ok) == (True, False, False)


@pytest.mark.parametrize(
    ("database", "key_set", "status", "expected"),
    [
        (True, True, 200, ALL_OK),
        (False, True, 503, DATABASE_DOWN),
        (True, False, 503, KEY_SET_DOWN),
        (False, False, 503, BOTH_DOWN),
    ],
)
def test_each_report_as_it_is_answered(
    database: bool, key_set: bool, status: int, expected: dict[str, str]
) -> None:
    report = Report(database=database, key_set=key_set)
    response = report.response()
    assert response.status_code == status
    assert response.content_type == JSON
    assert response.get_data() == json.dumps(expected, separators=(",", ":")).encode()
    assert report.error == expected.get("error")


def test_the_module_names_the_path_cloud_run_lets_through() -> None:
    assert health.HEALTH_PATH == "/health"
    assert not health.HEALTH_PATH.endswith("z")
