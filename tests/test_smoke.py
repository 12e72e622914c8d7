"""scripts/smoke.py against the running function, on both stores, as it is run after a deploy."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.conftest import ROOT, AppFactory
from tests.database import Seeder
from tests.live import LiveFunction, end_app_sessions, live_function, serving  # noqa: F401
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys, mounted
from tests.scenarios import MAIN_BATCH, OTHER_AGENCY_BATCH, USER_A, seed
from tests.tokens import TokenFactory

APP = "https://app.example.com"
ADMIN = "https://admin.example.com"
CHECKS = ["health", "preflight", "unauthenticated", "batch", "not-modified"]


def smoke(
    url: str, token: str, batch_id: UUID | str, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/smoke.py", *options, url, token, str(batch_id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def passed(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"ok   {check}" for check in CHECKS]
    return lines


def test_smoke_passes_on_a_good_deploy(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
) -> None:
    lines = passed(smoke(live_function.url, tokens.es256(USER_A), MAIN_BATCH.id))
    assert lines[0] == "ok   health: 200 database ok, key set ok"
    assert "no --origin" in lines[1]
    assert "401 missing_token" in lines[2]
    assert f"of {len(MAIN_BATCH.contacts)} contacts" in lines[3]


@pytest.mark.parametrize(
    ("token_kind", "batch", "failing"),
    [
        ("expired", MAIN_BATCH.id, "FAIL batch: expected 200, got 401"),
        ("valid", OTHER_AGENCY_BATCH.id, "FAIL batch: expected 200, got 404"),
    ],
)
def test_smoke_fails_with_the_reason(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
    token_kind: str,
    batch: UUID,
    failing: str,
) -> None:
    token = tokens.es256(USER_A, exp=1_000_000) if token_kind == "expired" else tokens.es256(USER_A)
    result = smoke(live_function.url, token, batch)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(failing), result.stdout


# --- --origin: the Access-Control-Allow-Origin a browser on that origin needs --------------------


@pytest.fixture(params=["postgres", "supabase"])
def allow_listed(
    request: pytest.FixtureRequest,
    db: Seeder,
    database_url: str,
    function_url: str,
    authenticator_url: str,
    project_keys: ProjectKeys,
    make_app: AppFactory,
    env: dict[str, str],
) -> Iterator[str]:
    """The function on each store over the scenarios' data, allowing two origins (as deployed
    for an app and an admin page), served over real HTTP."""
    seed(db.conn)
    origins = f"{APP},{ADMIN}"
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            app = make_app(DATABASE_URL=function_url, CORS_ALLOW_ORIGINS=origins).application
            stack.callback(end_app_sessions, database_url)
        else:
            standin = PostgrestStandIn(authenticator_url, project_keys)
            stack.enter_context(mounted(standin, env["SUPABASE_URL"]))
            app = make_app(CORS_ALLOW_ORIGINS=origins).application
        yield stack.enter_context(serving(app))


def test_an_allowed_origin_passes_every_check(allow_listed: str, tokens: TokenFactory) -> None:
    lines = passed(smoke(allow_listed, tokens.es256(USER_A), MAIN_BATCH.id, "--origin", ADMIN))
    assert lines[1].endswith(f"for {ADMIN}")


def test_an_origin_the_function_refuses_fails_though_it_sends_vary(
    allow_listed: str, tokens: TokenFactory
) -> None:
    # The function answers it with Vary: Origin and no Access-Control-Allow-Origin: the
    # browser would refuse the answer, and so does the smoke test, at the first answer.
    refused = "https://evil.example.com"
    result = smoke(allow_listed, tokens.es256(USER_A), MAIN_BATCH.id, "--origin", refused)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"FAIL health: Access-Control-Allow-Origin is None, not '{refused}' or '*': a browser"
        f" on {refused} is refused (CORS_ALLOW_ORIGINS must list it)"
    ]


def test_any_origin_passes_a_function_that_allows_every_origin(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
) -> None:
    passed(smoke(live_function.url, tokens.es256(USER_A), MAIN_BATCH.id, "--origin", APP))


@pytest.mark.parametrize(
    "origin", [f"{APP}/", f"{APP}/screen", "app.example.com", "ftp://app.example.com", f"{APP}?x"]
)
def test_what_is_not_an_origin_is_refused_before_anything_is_sent(origin: str) -> None:
    result = smoke("http://127.0.0.1:9", "token", MAIN_BATCH.id, "--origin", origin)
    assert result.returncode == 2
    assert "is not an origin" in result.stderr
    assert result.stdout == ""


# --- the health check ---------------------------------------------------------------------------


def test_a_deploy_whose_database_is_unreachable_fails_the_health_check(
    make_app: AppFactory, tokens: TokenFactory
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app = make_app(DATABASE_URL=f"postgresql://calls_batch_get:pw@127.0.0.1:{port}/postgres")
    with serving(app.application) as url:
        result = smoke(url, tokens.es256(USER_A), MAIN_BATCH.id)
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("FAIL health: expected 200, got 503: ")
    assert '"database":"down"' in line
