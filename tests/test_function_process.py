"""The function as Cloud Run runs it: the real ``functions-framework`` process over real HTTP, on
a real PostgreSQL (through a loopback proxy that can freeze), with a key-set server on loopback.
Shutdown on SIGTERM on every supported Python, a frozen database under eight concurrent
requests, and every line the process writes checked: JSON, and nothing it must not say."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

import httpx
import psycopg
import pytest

from calls_batch_get.store.postgres import APPLICATION_NAME
from tests.database import Conn, Seeder, backend_pids, poll
from tests.function_process import (
    FunctionProcess,
    free_port,
    functions_framework_for,
    log_records,
)
from tests.function_process import running_function as running
from tests.tokens import KeySetServer, TokenFactory
from tests.wire_proxy import WireProxy, proxied_url

BUDGET = 2.0
SLACK = 1.0
SHUTDOWN_LIMIT_SECONDS = 3.0
# What no line of the function's output may hold: database error text, a host or port, the
# caller's token, personal data of a contact.
FORBIDDEN = re.compile(
    r"127\.0\.0\.1|localhost|port \d|FATAL|terminating connection|server closed"
    r"|connection to server|\+1555|@example\.com|eyJ",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Seeded:
    url: str
    headers: dict[str, str]


@pytest.fixture
def seeded(db: Seeder, tokens: TokenFactory) -> Callable[[str], Seeded]:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 5)
    token = tokens.es256(user_id)
    return lambda base: Seeded(
        f"{base}?batch_id={batch_id}&contact_limit=3", {"Authorization": f"Bearer {token}"}
    )


def backends(conn: Conn) -> int:
    return len(backend_pids(conn))


def concurrently(count: int, request: Callable[[], httpx.Response]) -> list[tuple[float, int]]:
    def one(_: int) -> tuple[float, int]:
        started = time.monotonic()
        status = request().status_code
        return time.monotonic() - started, status

    with ThreadPoolExecutor(count) as threads:
        return list(threads.map(one, range(count)))


def assert_clean_output(function: FunctionProcess) -> list[dict[str, object]]:
    lines = function.output()
    records = log_records(lines)
    for line in lines:
        assert not FORBIDDEN.search(line), line
    return records


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_sigterm_closes_the_pool_and_exits_within_3_seconds(
    env: dict[str, str], function_url: str, db: Seeder, seeded: Callable[[str], Seeded],
    python: str,
) -> None:
    command = functions_framework_for(python)
    with running(command, {**env, "DATABASE_URL": function_url}) as function:
        call = seeded(function.url)
        # Enough at once for the pool to open all its connections, and their threads.
        results = concurrently(8, lambda: httpx.get(call.url, headers=call.headers, timeout=10))
        assert {status for _, status in results} == {200}
        assert backends(db.conn) >= 1

        seconds = function.terminate()

        assert seconds <= SHUTDOWN_LIMIT_SECONDS
        assert function.process.returncode == 0
        assert poll(lambda: backends(db.conn) == 0) is not None
        records = assert_clean_output(function)
        assert sum(1 for r in records if r.get("status") == 200) == 8


def test_sigterm_lets_a_running_request_finish(
    env: dict[str, str],
    database_url: str,
    function_url: str,
    db: Seeder,
    seeded: Callable[[str], Seeded],
) -> None:
    with running(functions_framework_for("3.11"), {**env, "DATABASE_URL": function_url}) as fn:
        call = seeded(fn.url)
        assert httpx.get(call.url, headers=call.headers, timeout=10).status_code == 200
        with psycopg.connect(database_url) as locker:
            locker.execute("lock table public.campaign_contacts in access exclusive mode")
            answers: list[httpx.Response] = []
            caller = threading.Thread(
                target=lambda: answers.append(httpx.get(call.url, headers=call.headers,
                                                        timeout=10)))
            caller.start()
            # The request waits on the lock; then the instance is told to stop.
            assert poll(lambda: _waiting_on_lock(db.conn)) is not None
            fn.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            locker.rollback()
        caller.join(10)
        fn.process.wait(SHUTDOWN_LIMIT_SECONDS + BUDGET)

    assert [a.status_code for a in answers] == [200]


def _waiting_on_lock(conn: Conn) -> bool:
    row = conn.execute(
        "select count(*) from pg_stat_activity where application_name = %s"
        " and wait_event_type = 'Lock'",
        (APPLICATION_NAME,),
    ).fetchone()
    return row is not None and row[0] > 0


def test_frozen_database_fails_requests_within_the_budget_and_recovers(
    env: dict[str, str], function_url: str, db: Seeder, proxy: WireProxy,
    seeded: Callable[[str], Seeded],
) -> None:
    settings = {**env, "DATABASE_URL": proxied_url(function_url, proxy.port),
                "DB_TIMEOUT_SECONDS": str(BUDGET)}
    with running(functions_framework_for("3.11"), settings) as function:
        call = seeded(function.url)

        def get() -> httpx.Response:
            return httpx.get(call.url, headers=call.headers, timeout=30)

        assert {s for _, s in concurrently(8, get)} == {200}
        proxy.freeze()
        try:
            frozen = concurrently(8, get)
        finally:
            proxy.thaw()
        assert {status for _, status in frozen} == {500}, frozen
        assert max(seconds for seconds, _ in frozen) <= BUDGET + SLACK, frozen
        assert poll(lambda: get().status_code == 200, timeout=1.0 + SLACK) is not None

        # The server drops every connection (a restart, a pooler): reads recover by themselves.
        db.conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (APPLICATION_NAME,),
        )
        assert {s for _, s in concurrently(8, get)} == {200}
        function.terminate()

    records = assert_clean_output(function)
    assert [r["status"] for r in records if r.get("status") == 500] == [500] * 8
    assert all(r.get("error") == "Failed to fetch batch" for r in records if r.get("status") == 500)


def test_database_errors_reach_the_log_redacted(
    env: dict[str, str], tokens: TokenFactory
) -> None:
    # Nothing listens there: the pool's connection attempts fail, and psycopg's warning text
    # names the host and port it tried. Only its template may reach the log.
    settings = {**env, "DATABASE_URL": f"postgresql://calls_batch_get@127.0.0.1:{free_port()}/postgres",
                "DB_TIMEOUT_SECONDS": "1"}
    with running(functions_framework_for("3.11"), settings) as function:
        token = tokens.es256(UUID(int=1))
        response = httpx.get(f"{function.url}?batch_id={UUID(int=2)}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 500
        function.terminate()

    records = assert_clean_output(function)
    assert any(r.get("logger") == "psycopg.pool" for r in records), records


def test_a_started_instance_is_warm_before_its_first_request(
    env: dict[str, str], function_url: str, db: Seeder, seeded: Callable[[str], Seeded],
    key_server: KeySetServer,
) -> None:
    command = functions_framework_for("3.11")
    with running(command, {**env, "DATABASE_URL": function_url}) as function:
        # Only the readiness probe (an OPTIONS, which reads nothing) has been sent.
        assert poll(lambda: key_server.fetches == 1 and backends(db.conn) == 1) is not None
        call = seeded(function.url)
        assert httpx.get(call.url, headers=call.headers, timeout=10).status_code == 200
        # The first request found both ready: no second fetch, no second connection.
        assert (key_server.fetches, backends(db.conn)) == (1, 1)
        records = assert_clean_output(function)
        assert [r.get("status") for r in records] == [204, 200]


def test_an_instance_starts_and_serves_when_its_database_and_key_service_are_down(
    env: dict[str, str], db: Seeder, seeded: Callable[[str], Seeded],
    key_server: KeySetServer,
) -> None:
    key_server.stop()
    nowhere = f"postgresql://calls_batch_get@127.0.0.1:{free_port()}/postgres"
    command = functions_framework_for("3.11")
    with running(command, {**env, "DATABASE_URL": nowhere}) as function:
        call = seeded(function.url)
        response = httpx.get(call.url, headers=call.headers, timeout=15)
        assert response.status_code == 500
        assert response.json()["code"] == "auth_unavailable"
        records = assert_clean_output(function)
    warnings = [r["message"] for r in records if r.get("severity") == "WARNING"]
    assert "key set fetch failed" in warnings
