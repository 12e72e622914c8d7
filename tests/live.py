"""The real Functions Framework app served over real HTTP on loopback, on both stores, for
the tests that call it from another process (schemathesis, the smoke script, a browser)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from flask import Flask
from werkzeug.serving import make_server

from calls_batch_get.store.postgres import APPLICATION_NAME
from tests.conftest import AppFactory
from tests.database import Seeder
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys, mounted
from tests.scenarios import seed
from tests.test_scenarios import _end_app_sessions

__all__ = ["LiveFunction", "end_app_sessions", "live_function", "serving"]


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` on a free loopback port, threaded like the Functions Framework's own server."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-function", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SESSIONS_GONE_TIMEOUT_SECONDS = 10.0


def end_app_sessions(database_url: str) -> None:
    """Ends the sessions the direct store's pool left open and waits until they are gone:
    pg_terminate_backend only signals, and a later test counts the store's sessions."""
    _end_app_sessions(database_url)
    deadline = time.monotonic() + SESSIONS_GONE_TIMEOUT_SECONDS
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from pg_stat_activity"
                " where datname = current_database() and application_name = %s",
                (APPLICATION_NAME,),
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the function's database sessions outlived it")


@dataclass(frozen=True)
class LiveFunction:
    store: str
    url: str


@pytest.fixture(params=["postgres", "supabase"])
def live_function(
    request: pytest.FixtureRequest,
    db: Seeder,
    database_url: str,
    function_url: str,
    authenticator_url: str,
    project_keys: ProjectKeys,
    make_app: AppFactory,
    env: dict[str, str],
) -> Iterator[LiveFunction]:
    """The function over the scenarios' data: the direct store on the test database, or
    supabase-py answered by the PostgREST stand-in from the same database."""
    seed(db.conn)
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            app = make_app(DATABASE_URL=function_url).application
            stack.callback(end_app_sessions, database_url)
        else:
            standin = PostgrestStandIn(authenticator_url, project_keys)
            stack.enter_context(mounted(standin, env["SUPABASE_URL"]))
            app = make_app().application
        yield LiveFunction(request.param, stack.enter_context(serving(app)))
