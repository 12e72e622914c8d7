"""The shared endpoint scenarios, run through the real app against both stores.

``postgres``: the direct store on the test database. ``supabase``: supabase-py, answered by the
PostgREST stand-in from the same database. A scenario that passes on one and fails on the other
is a bug in one of them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import psycopg
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from calls_batch_get.store.postgres import APPLICATION_NAME
from tests.conftest import AppFactory
from tests.database import Seeder
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys, mounted
from tests.scenarios import (
    BIG_BATCH,
    MAIN_BATCH,
    SCENARIOS,
    STATUSES,
    T0,
    TIE,
    USER_A,
    BatchSeed,
    Scenario,
    by_name,
    ordered,
    scenario,
    seed,
)
from tests.tokens import TokenFactory

STORES = ("postgres", "supabase")


@dataclass
class Endpoint:
    client: FlaskClient
    tokens: TokenFactory

    def get(self, scenario: Scenario, **extra: str) -> TestResponse:
        params = urlencode([*scenario.params, *extra.items()])
        token = self.tokens.es256(scenario.caller)
        return self.client.get(f"/?{params}", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def standin(authenticator_url: str, project_keys: ProjectKeys) -> PostgrestStandIn:
    return PostgrestStandIn(authenticator_url, project_keys)


@pytest.fixture
def endpoints(
    db: Seeder,
    database_url: str,
    function_url: str,
    make_app: AppFactory,
    env: dict[str, str],
    tokens: TokenFactory,
    standin: PostgrestStandIn,
) -> Iterator[dict[str, Endpoint]]:
    seed(db.conn)
    with mounted(standin, env["SUPABASE_URL"]):
        yield {
            "postgres": Endpoint(make_app(DATABASE_URL=function_url), tokens),
            "supabase": Endpoint(make_app(), tokens),
        }
    _end_app_sessions(database_url)


def _end_app_sessions(database_url: str) -> None:
    """Ends the sessions the direct store's pool left open: each test builds a new app, whose
    pool would otherwise keep its connection until the server runs out of slots."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and application_name = %s",
            (APPLICATION_NAME,),
        )


@pytest.fixture(params=STORES)
def endpoint(request: pytest.FixtureRequest, endpoints: dict[str, Endpoint]) -> Endpoint:
    return endpoints[request.param]


def assert_json_equal(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal values of equal JSON types: 41.0 is not 41, and False is not 0."""
    assert type(actual) is type(expected), f"{path}: {actual!r} is not {expected!r}"
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), f"{path}: fields {list(actual)}"
        for key, value in expected.items():
            assert_json_equal(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, not {len(expected)}"
        for n, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_json_equal(got, want, f"{path}[{n}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("case", SCENARIOS, ids=str)
def test_scenario(endpoint: Endpoint, case: Scenario) -> None:
    response = endpoint.get(case)
    assert response.status_code == case.status, response.data
    assert response.mimetype == "application/json"
    assert_json_equal(response.get_json(), case.expected())


@pytest.mark.parametrize("batch", [MAIN_BATCH, BIG_BATCH], ids=["main", "big"])
@pytest.mark.parametrize("page_size", [1, 7, 200])
def test_pages_hold_every_contact_once_in_order(
    endpoint: Endpoint, batch: BatchSeed, page_size: int
) -> None:
    pages = scenario("paging", batch.id, 200, dict)
    seen: list[str] = []
    offset = 0
    has_more = True
    while has_more:
        response = endpoint.get(pages, contact_limit=str(page_size), contact_offset=str(offset))
        body = response.get_json()
        assert body["contact_pagination"]["total"] == len(batch.contacts)
        seen += [c["id"] for c in body["contacts"]]
        has_more = body["contact_pagination"]["has_more"]
        offset += page_size
    assert seen == [str(c["id"]) for c in ordered(batch)]


def walk(
    endpoint: Endpoint,
    batch: BatchSeed,
    page_size: int,
    status: str | None = None,
    between_pages: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """Every page of the batch by next_cursor, from the first; the contacts in order."""
    pages = scenario("walk", batch.id, 200, dict)
    seen: list[dict[str, Any]] = []
    extra = {"contact_limit": str(page_size)}
    if status is not None:
        extra["contact_status"] = status
    while True:
        response = endpoint.get(pages, **extra)
        assert response.status_code == 200, response.data
        body = response.get_json()
        pagination = body["contact_pagination"]
        assert len(body["contacts"]) <= page_size
        assert pagination["offset"] == (0 if "contact_cursor" not in extra else None)
        assert pagination["has_more"] == (pagination["next_cursor"] is not None)
        seen += body["contacts"]
        if not pagination["has_more"]:
            return seen
        between_pages()
        extra["contact_cursor"] = pagination["next_cursor"]


@pytest.mark.parametrize("status", [None, *STATUSES])
@pytest.mark.parametrize("page_size", [1, 3, 200])
def test_a_cursor_walk_yields_every_contact_once_in_order(
    endpoint: Endpoint, status: str | None, page_size: int
) -> None:
    for batch in (MAIN_BATCH, BIG_BATCH):
        seen = walk(endpoint, batch, page_size, status)
        assert [c["id"] for c in seen] == [str(c["id"]) for c in ordered(batch, status)]


def test_a_cursor_walk_while_contacts_are_added(endpoint: Endpoint, db: Seeder) -> None:
    """Contacts added behind the walk are not seen, those ahead of it are; none twice, none of
    those already there missed, and the order holds."""
    added: list[UUID] = []

    def add_two() -> None:
        # One in the middle of a tie (ids are random), one after everything so far.
        for created_at in (TIE, T0 + timedelta(days=100 + len(added))):
            added.append(db.contact(MAIN_BATCH.id, created_at=created_at, status="queued"))

    seen = walk(endpoint, MAIN_BATCH, 3, between_pages=add_two)
    ids = [c["id"] for c in seen]
    assert len(ids) == len(set(ids))
    keys = [(c["created_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, key=lambda k: (datetime.fromisoformat(k[0]), k[1]))
    assert {str(c["id"]) for c in MAIN_BATCH.contacts} <= set(ids)
    # Every contact added after the last tie was passed is ahead of the walk: all are seen.
    later = [str(a) for n, a in enumerate(added) if n % 2 == 1]
    assert set(later) <= set(ids)


def test_batch_of_another_agency_is_indistinguishable_from_a_missing_one(
    endpoint: Endpoint,
) -> None:
    other = endpoint.get(by_name("batch-of-another-agency"))
    missing = endpoint.get(by_name("batch-that-does-not-exist"))
    assert (other.status_code, other.data) == (missing.status_code, missing.data)

    def headers(response: TestResponse) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k != "X-Request-Id"}

    assert headers(other) == headers(missing)


def test_both_stores_answer_every_scenario_byte_for_byte_alike(
    endpoints: dict[str, Endpoint],
) -> None:
    mismatches = []
    for case in SCENARIOS:
        direct = endpoints["postgres"].get(case)
        postgrest = endpoints["supabase"].get(case)
        if (direct.status_code, direct.data) != (postgrest.status_code, postgrest.data):
            mismatches.append(
                f"{case.name}: postgres {direct.status_code} {direct.data!r}\n"
                f"  supabase {postgrest.status_code} {postgrest.data!r}"
            )
    assert not mismatches, "\n".join(mismatches)


# --- what the supabase-py store sends ---------------------------------------------------------


def test_every_poll_is_one_get_of_the_read_function_as_the_caller(
    endpoints: dict[str, Endpoint], standin: PostgrestStandIn
) -> None:
    for case in SCENARIOS:
        endpoints["supabase"].get(case)
    # Only the requests that reach the store get a read (a 400 or 401 stops before it).
    reached = [c for c in SCENARIOS if c.status in (200, 403, 404)]
    assert len(standin.served) == len(reached) > 0
    for served in standin.served:
        assert (served.method, served.table, served.status) == (
            "GET", "rpc/calls_batch_get", 200
        )
        assert served.role == "authenticated"
        assert served.prefer is None


@pytest.mark.parametrize("refusal", ["expired-for-postgrest", "key-unknown-to-postgrest"])
def test_a_token_postgrest_refuses_after_the_function_accepted_it(
    db: Seeder,
    make_app: AppFactory,
    env: dict[str, str],
    tokens: TokenFactory,
    authenticator_url: str,
    project_keys: ProjectKeys,
    refusal: str,
) -> None:
    """PostgREST's clock runs ahead of the function's (a token 10 s past its exp is inside the
    function's 30 s of skew, not inside this PostgREST's), or it does not know the key the
    function verified the token with: the caller gets the documented answer, never data."""
    seed(db.conn)
    if refusal == "expired-for-postgrest":
        keys = dataclasses.replace(project_keys, skew_seconds=0)
        token = tokens.es256(USER_A, exp=int(time.time()) - 10)
    else:
        keys = dataclasses.replace(project_keys, public_jwks=(project_keys.public_jwks[0],))
        token = tokens.rs256(USER_A)
    standin = PostgrestStandIn(authenticator_url, keys)
    with mounted(standin, env["SUPABASE_URL"]):
        response = make_app().get(
            f"/?batch_id={MAIN_BATCH.id}", headers={"Authorization": f"Bearer {token}"}
        )
    assert [s.status for s in standin.served] == [401]
    body = response.get_json()
    if refusal == "expired-for-postgrest":
        assert (response.status_code, body["code"]) == (401, "token_expired")
        assert body["error"] == "Token has expired"
    else:
        assert (response.status_code, body["code"]) == (500, "database_error")
