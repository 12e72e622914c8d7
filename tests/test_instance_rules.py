"""Rules of the function as a whole, through the real Functions Framework app on a real database:
what an instance builds once, the headers of every kind of response, and the log line."""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from calls_batch_get.handler import Handler
from tests.conftest import ROOT, AppFactory
from tests.database import Seeder, backend_pids, poll
from tests.function_process import free_port
from tests.tokens import KeySetServer, TokenFactory
from tests.wire_proxy import WireProxy, proxied_url

JSON = "application/json; charset=utf-8"


class RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def client(make_app: AppFactory, function_url: str) -> FlaskClient:
    return make_app(DATABASE_URL=function_url)


@pytest.fixture
def batch(db: Seeder) -> tuple[UUID, UUID]:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3, email="someone@example.com")
    return user_id, batch_id


def get(client: FlaskClient, query: str, token: str | None = None, **headers: str) -> TestResponse:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(f"/?{query}", headers=headers)


def test_store_and_key_set_are_built_once_per_instance(
    client: FlaskClient, db: Seeder, tokens: TokenFactory, key_server: KeySetServer,
    batch: tuple[UUID, UUID],
) -> None:
    user_id, batch_id = batch
    # Connections of earlier tests may still be on their way out: only new ones count.
    earlier = backend_pids(db.conn)
    for _ in range(6):
        response = get(client, f"batch_id={batch_id}", tokens.es256(user_id))
        assert response.status_code == 200
    # One key-set fetch and one pooled connection for all six: a store or verifier built per
    # request would fetch the keys and open a pool (and a connection) each time.
    assert key_server.fetches == 1
    assert len(backend_pids(db.conn) - earlier) == 1


def test_an_instance_closes_its_pool_when_its_process_exits(
    make_app: AppFactory, function_url: str, db: Seeder, tokens: TokenFactory,
    batch: tuple[UUID, UUID], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the process would run at its exit, run here instead (the process is this test's).
    at_exit: list[Callable[[], object]] = []
    monkeypatch.setattr(
        atexit, "register", lambda fn, *args: at_exit.append(functools.partial(fn, *args))
    )
    earlier = backend_pids(db.conn)
    client = make_app(DATABASE_URL=function_url)
    user_id, batch_id = batch
    assert get(client, f"batch_id={batch_id}", tokens.es256(user_id)).status_code == 200
    opened = backend_pids(db.conn) - earlier
    assert opened, "the request opened no connection"

    for exit_function in at_exit:
        exit_function()
    # A server process ends a moment after its client left, not at once.
    assert poll(lambda: not backend_pids(db.conn) & opened) is not None


def test_a_forked_worker_warms_up_before_its_first_request(
    make_app: AppFactory, function_url: str, db: Seeder, key_server: KeySetServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What os.fork would run in gunicorn's worker, run here instead.
    after_fork: list[Callable[[], object]] = []
    monkeypatch.setattr(
        os, "register_at_fork", lambda *, after_in_child: after_fork.append(after_in_child)
    )
    earlier = backend_pids(db.conn)
    make_app(DATABASE_URL=function_url)
    # Nothing in the arbiter, which never serves: its connections and threads would be lost.
    assert key_server.fetches == 0
    assert not backend_pids(db.conn) - earlier

    (in_the_worker,) = after_fork
    in_the_worker()
    assert poll(lambda: key_server.fetches == 1 and backend_pids(db.conn) - earlier) is not None


def test_a_warm_up_stuck_on_a_frozen_database_cannot_hold_up_the_exit(
    make_app: AppFactory, function_url: str, proxy: WireProxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    after_fork: list[Callable[[], object]] = []
    monkeypatch.setattr(
        os, "register_at_fork", lambda *, after_in_child: after_fork.append(after_in_child)
    )
    make_app(DATABASE_URL=proxied_url(function_url, proxy.port), DB_TIMEOUT_SECONDS="2")
    proxy.freeze()
    try:
        (in_the_worker,) = after_fork
        in_the_worker()
        # While it waits on the database: a daemon thread, which the interpreter does not wait
        # for at exit, named as a thread dump (py-spy, faulthandler) shows it.
        (warming,) = [t for t in threading.enumerate() if t.name == "warm-up"]
        assert warming.daemon
        assert warming.is_alive()
    finally:
        proxy.thaw()
    warming.join(timeout=10.0)


def test_a_failed_warm_up_is_one_log_line_without_its_text(
    make_app: AppFactory, function_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    after_fork: list[Callable[[], object]] = []
    monkeypatch.setattr(
        os, "register_at_fork", lambda *, after_in_child: after_fork.append(after_in_child)
    )
    make_app(DATABASE_URL=function_url)

    def broken(_: object) -> None:
        raise RuntimeError("text that may hold a secret")

    monkeypatch.setattr(Handler, "warm", broken)
    (in_the_worker,) = after_fork
    capsys.readouterr()
    in_the_worker()
    lines: list[dict[str, Any]] = []

    def logged() -> bool:
        lines.extend(json.loads(line) for line in capsys.readouterr().out.splitlines())
        return bool(lines)

    assert poll(logged) is not None
    assert lines == [{"severity": "WARNING", "message": "warm-up failed", "cause": "RuntimeError"}]


@pytest.mark.parametrize(
    ("kind", "query", "status"),
    [("ok", "batch_id={batch}", 200), ("bad parameter", "batch_id=nope", 400),
     ("no token", "batch_id={batch}", 401), ("not found", "batch_id={missing}", 404)],
)
def test_json_responses_say_utf_8_and_forbid_sniffing(
    client: FlaskClient, tokens: TokenFactory, batch: tuple[UUID, UUID],
    kind: str, query: str, status: int,
) -> None:
    user_id, batch_id = batch
    token = None if kind == "no token" else tokens.es256(user_id)
    response = get(client, query.format(batch=batch_id, missing=UUID(int=7)), token)
    assert response.status_code == status
    assert response.headers["Content-Type"] == JSON
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_500_and_405_carry_the_same_headers(
    make_app: AppFactory, tokens: TokenFactory, batch: tuple[UUID, UUID]
) -> None:
    user_id, batch_id = batch
    unreachable = make_app(
        DATABASE_URL=f"postgresql://calls_batch_get@127.0.0.1:{free_port()}/postgres",
        DB_TIMEOUT_SECONDS="1",
    )
    failed = get(unreachable, f"batch_id={batch_id}", tokens.es256(user_id))
    refused = unreachable.post("/")
    for response, status in ((failed, 500), (refused, 405)):
        assert response.status_code == status
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_preflight_is_cached_by_the_browser_for_an_hour(client: FlaskClient) -> None:
    response = client.options(
        "/", headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Max-Age"] == "3600"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_huge_contact_limit_is_clamped_and_negative_one_refused(
    client: FlaskClient, tokens: TokenFactory, batch: tuple[UUID, UUID]
) -> None:
    user_id, batch_id = batch
    token = tokens.es256(user_id)
    clamped = get(client, f"batch_id={batch_id}&contact_limit={'9' * 5000}", token)
    assert clamped.status_code == 200
    assert clamped.get_json()["contact_pagination"]["limit"] == 200
    refused = get(client, f"batch_id={batch_id}&contact_limit=-{'9' * 5000}", token)
    assert refused.status_code == 400
    assert refused.get_json() == {
        "error": "contact_limit must be at least 1",
        "code": "invalid_parameter",
        "parameter": "contact_limit",
    }


def test_log_line_is_written_once_and_holds_no_query_string(
    client: FlaskClient, tokens: TokenFactory, batch: tuple[UUID, UUID],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id, batch_id = batch
    capsys.readouterr()
    reached_root = RecordList()
    monkeypatch.setattr(logging.getLogger(), "handlers", [reached_root])
    response = get(
        client, f"batch_id={batch_id}&contact_status=pending&utm_source=marker-in-the-query",
        tokens.es256(user_id),
    )
    assert response.status_code == 200

    out, err = capsys.readouterr()
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [line.get("status") for line in lines] == [200]
    assert err == ""
    # Not handed on to the root logger either, where any handler (Cloud Logging's own, say)
    # would write it a second time.
    assert reached_root.records == []
    text = json.dumps(lines)
    for leaked in ("marker-in-the-query", "utm_source", "contact_status", str(batch_id),
                   "someone@example.com", "+1555"):
        assert leaked not in text


def test_warnings_and_thread_crashes_are_json_lines_without_their_text() -> None:
    # In a process of its own: pytest itself intercepts warnings and thread exceptions.
    script = (
        "import threading, warnings\n"
        "from calls_batch_get.log import configure\n"
        "configure('INFO')\n"
        "warnings.warn('could not reach db.internal:5432 for someone@example.com')\n"
        "def crash(): raise RuntimeError('password=hunter2')\n"
        "thread = threading.Thread(target=crash); thread.start(); thread.join()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=True,
    )
    lines = [*result.stdout.splitlines(), *result.stderr.splitlines()]
    assert [json.loads(line)["cause"] for line in lines] == ["UserWarning", "RuntimeError"]
    for leaked in ("db.internal", "5432", "someone@example.com", "hunter2"):
        assert leaked not in result.stdout + result.stderr
