"""The PostgREST stand-in itself: PostgREST's answers where it answers, a 400 where it cannot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from respx.models import AllMockedAssertionError

from tests.conftest import ANON_KEY, SERVICE_KEY
from tests.database import Seeder
from tests.postgrest_standin import (
    PostgrestStandIn,
    ProjectKeys,
    content_range,
    mounted,
    range_status,
)
from tests.scenarios import (
    AGENCY_A,
    BARE_BATCH,
    MAIN_BATCH,
    USER_A,
    USER_B,
    USER_NO_AGENCY,
    seed,
)
from tests.tokens import SigningKey, TokenFactory

URL = "https://project-ref.supabase.co"
COUNT = {"Prefer": "count=exact"}
MAIN = f"batch_id=eq.{MAIN_BATCH.id}"
MAIN_SIZE = len(MAIN_BATCH.contacts)


@pytest.fixture
def standin(authenticator_url: str, project_keys: ProjectKeys) -> PostgrestStandIn:
    return PostgrestStandIn(authenticator_url, project_keys)


@pytest.fixture
def served(db: Seeder, standin: PostgrestStandIn) -> Iterator[PostgrestStandIn]:
    """The stand-in answering, over the scenarios' data."""
    seed(db.conn)
    with mounted(standin, URL):
        yield standin


@pytest.fixture
def rest(served: PostgrestStandIn, tokens: TokenFactory) -> Iterator[httpx.Client]:
    """A client of the stand-in, signed in as the main batch's agency's user."""
    headers = {"apikey": ANON_KEY, "Authorization": f"Bearer {tokens.es256(USER_A)}"}
    with httpx.Client(base_url=f"{URL}/rest/v1", headers=headers) as client:
        yield client


@pytest.fixture
def bare(served: PostgrestStandIn) -> Iterator[httpx.Client]:
    """A client of the stand-in with no headers of its own."""
    with httpx.Client(base_url=f"{URL}/rest/v1") as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "details", "hint", "message"}
    return body


# --- PostgREST's range rules, unit by unit ------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "rows", "total", "status", "header"),
    [
        (0, 5, 16, 206, "0-4/16"),
        (0, 16, 16, 200, "0-15/16"),
        (15, 1, 16, 206, "15-15/16"),
        (16, 0, 16, 206, "*/16"),
        (17, 0, 16, 416, "*/16"),
        (0, 0, 0, 200, "*/0"),
        (1, 0, 0, 416, "*/0"),
        (0, 5, None, 200, "0-4/*"),
        (100, 0, None, 200, "*/*"),
    ],
)
def test_range_rules(offset: int, rows: int, total: int | None, status: int, header: str) -> None:
    assert range_status(offset, rows, total) == status
    assert content_range(offset, rows, total) == header


# --- answers as PostgREST gives them ----------------------------------------------------------


def test_rows_serialised_by_postgresql(rest: httpx.Client) -> None:
    response = rest.get(
        "/v_call_batch_summary",
        params={
            "select": "id,progress_percentage,created_at,scheduled_for",
            "id": f"eq.{MAIN_BATCH.id}",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["content-range"] == "0-0/*"
    assert response.json() == [
        {
            "id": str(MAIN_BATCH.id),
            "progress_percentage": 31.3,
            "created_at": "2025-01-15T10:30:00.654321+00:00",
            "scheduled_for": None,
        }
    ]


def test_jsonb_comes_back_as_json(rest: httpx.Client) -> None:
    row = next(c for c in MAIN_BATCH.contacts if c["custom_data"].get("crm"))
    response = rest.get(
        "/campaign_contacts",
        params={"select": "custom_data", "id": f"eq.{row['id']}"},
    )
    assert response.json() == [{"custom_data": row["custom_data"]}]


def test_order_limit_offset_and_count(rest: httpx.Client) -> None:
    response = rest.get(
        f"/campaign_contacts?select=id&{MAIN}&order=created_at.desc,id.asc&limit=3&offset=2",
        headers=COUNT,
    )
    assert response.status_code == 206
    assert response.headers["content-range"] == f"2-4/{MAIN_SIZE}"
    newest_first = sorted(MAIN_BATCH.contacts, key=lambda c: c["id"])
    newest_first.sort(key=lambda c: c["created_at"], reverse=True)
    assert [r["id"] for r in response.json()] == [str(c["id"]) for c in newest_first[2:5]]


@pytest.mark.parametrize(
    ("query", "status", "header"),
    [
        (f"{MAIN}&limit=100", 200, f"0-{MAIN_SIZE - 1}/{MAIN_SIZE}"),
        (f"{MAIN}&limit=5&offset={MAIN_SIZE}", 206, f"*/{MAIN_SIZE}"),
        (f"batch_id=eq.{BARE_BATCH.id}&status=eq.failed", 200, "*/0"),
    ],
)
def test_counted_ranges(rest: httpx.Client, query: str, status: int, header: str) -> None:
    response = rest.get(f"/campaign_contacts?select=id&{query}", headers=COUNT)
    assert (response.status_code, response.headers["content-range"]) == (status, header)


def test_offset_past_the_end_with_a_count_is_a_416(rest: httpx.Client) -> None:
    response = rest.get(f"/campaign_contacts?select=id&{MAIN}&offset=17", headers=COUNT)
    assert error_of(response, 416) == {
        "code": "PGRST103",
        "message": "Requested range not satisfiable",
        "details": f"An offset of 17 was requested, but there are only {MAIN_SIZE} rows.",
        "hint": None,
    }
    assert response.headers["content-range"] == f"*/{MAIN_SIZE}"


def test_offset_past_the_end_without_a_count_is_an_empty_200(rest: httpx.Client) -> None:
    response = rest.get(f"/campaign_contacts?select=id&{MAIN}&offset=17")
    assert (response.status_code, response.json()) == (200, [])
    assert response.headers["content-range"] == "*/*"


def test_head_has_the_headers_and_no_body(rest: httpx.Client) -> None:
    response = rest.head(f"/campaign_contacts?select=id&{MAIN}", headers=COUNT)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-range"] == f"0-{MAIN_SIZE - 1}/{MAIN_SIZE}"


def test_filter_value_is_typed_as_its_column(rest: httpx.Client) -> None:
    response = rest.get("/users?select=agency_id&id=eq.not-a-uuid")
    body = error_of(response, 400)
    assert (body["code"], body["message"]) == (
        "22P02",
        'invalid input syntax for type uuid: "not-a-uuid"',
    )


def test_served_requests_are_logged(rest: httpx.Client, standin: PostgrestStandIn) -> None:
    rest.get(f"/users?select=agency_id&id=eq.{USER_A}&limit=1")
    rest.head(f"/campaign_contacts?select=id&{MAIN}", headers=COUNT)
    log = standin.wait_for(2)
    assert [(s.method, s.table, s.status, s.prefer, s.role) for s in log] == [
        ("GET", "users", 200, None, "authenticated"),
        ("HEAD", "campaign_contacts", 200, "count=exact", "authenticated"),
    ]
    assert log[0].params == (("select", "agency_id"), ("id", f"eq.{USER_A}"), ("limit", "1"))
    assert log[0].started <= log[0].finished <= log[1].started


# --- what it refuses ----------------------------------------------------------------------------


# --- who it answers as -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"apikey": "other"}, {"Authorization": f"Bearer {ANON_KEY}"}],
    ids=["none", "wrong-apikey", "bearer-only"],
)
def test_the_gateway_wants_a_project_key(bare: httpx.Client, headers: dict[str, str]) -> None:
    assert error_of(bare.get("/users?select=agency_id", headers=headers), 401)["code"] == "PGRST301"


def test_each_request_runs_as_its_tokens_user_under_the_policies(
    bare: httpx.Client, standin: PostgrestStandIn, tokens: TokenFactory
) -> None:
    for user in (USER_A, USER_B):
        token = tokens.es256(user)
        response = bare.get(
            "/users?select=id", headers={"apikey": ANON_KEY, "Authorization": f"Bearer {token}"}
        )
        assert response.json() == [{"id": str(user)}]
    assert [s.role for s in standin.served] == ["authenticated", "authenticated"]


@pytest.mark.parametrize("bearer", [None, ANON_KEY], ids=["key-alone", "key-as-bearer"])
def test_the_anon_key_alone_runs_as_anon_which_may_read_nothing(
    bare: httpx.Client, standin: PostgrestStandIn, bearer: str | None
) -> None:
    headers = {"apikey": ANON_KEY} | ({"Authorization": f"Bearer {bearer}"} if bearer else {})
    response = bare.get("/v_call_batch_summary?select=id", headers=headers)
    # PostgREST: insufficient privilege is a 401 for the anonymous role.
    assert error_of(response, 401)["code"] == "42501"
    assert standin.served[-1].role == "anon"


def test_the_service_key_runs_as_service_role(
    bare: httpx.Client, standin: PostgrestStandIn
) -> None:
    headers = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}
    bare.get("/users?select=id", headers=headers)
    assert standin.served[-1].role == "service_role"


def test_an_expired_token_is_refused_past_postgrests_skew(
    bare: httpx.Client, tokens: TokenFactory
) -> None:
    def answer(seconds_ago: int) -> httpx.Response:
        token = tokens.es256(USER_A, exp=int(time.time()) - seconds_ago)
        return bare.get(
            "/users?select=id", headers={"apikey": ANON_KEY, "Authorization": f"Bearer {token}"}
        )

    assert answer(10).status_code == 200
    assert error_of(answer(60), 401) == {
        "code": "PGRST303", "message": "JWT expired", "details": None, "hint": None
    }


def test_a_token_of_a_key_it_does_not_know_is_refused(
    bare: httpx.Client, tokens: TokenFactory
) -> None:
    stranger = TokenFactory.sign(SigningKey.ec(), tokens.claims(USER_A))
    response = bare.get(
        "/users?select=id", headers={"apikey": ANON_KEY, "Authorization": f"Bearer {stranger}"}
    )
    assert error_of(response, 401)["code"] == "PGRST301"


# --- the read function --------------------------------------------------------------------------


def test_a_stable_function_is_called_by_get_with_its_value_as_the_body(
    rest: httpx.Client,
) -> None:
    response = rest.get(
        "/rpc/calls_batch_get", params={"batch_id": str(MAIN_BATCH.id), "contact_limit": "2"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert sorted(body) == ["agency_id", "batch", "contacts"]
    assert body["batch"]["id"] == str(MAIN_BATCH.id)
    assert len(body["contacts"]) == 3


def test_a_function_call_with_an_argument_it_lacks_is_a_404(rest: httpx.Client) -> None:
    response = rest.get("/rpc/calls_batch_get", params={"batch_id": str(MAIN_BATCH.id), "x": "1"})
    assert error_of(response, 404)["code"] == "PGRST202"
    assert error_of(rest.get("/rpc/calls_batch_get"), 404)["code"] == "PGRST202"


def test_a_database_error_of_a_call_is_postgrests_status(rest: httpx.Client) -> None:
    response = rest.get(
        "/rpc/calls_batch_get", params={"batch_id": str(MAIN_BATCH.id), "contact_limit": "0"}
    )
    assert error_of(response, 400)["code"] == "22023"


# --- what it refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra_headers"),
    [
        ("/agencies?select=id", {}),
        ("/rpc/request_agency_id", {}),
        ("/rpc/calls_batch_get?batch_id=x", {"Range": "0-9"}),
        ("/users?select=agency_id,agencies(name)", {}),
        ("/users?select=agency:agency_id", {}),
        ("/users?select=agency_id::text", {}),
        ("/campaign_contacts?select=custom_data->crm", {}),
        ("/users?select=agency_id&id=lt.0", {}),
        ("/users?select=agency_id&id=not.eq.0", {}),
        ("/users?select=agency_id&id=0", {}),
        ("/users?select=agency_id&or=(id.eq.0,id.eq.1)", {}),
        ("/users?select=agency_id&agencies.limit=1", {}),
        ("/users?select=agency_id&limit=1&limit=2", {}),
        ("/users?select=agency_id&limit=-1", {}),
        ("/users?select=agency_id&order=id.sideways", {}),
        ("/users?select=agency_id", {"Range": "0-9"}),
        ("/users?select=agency_id", {"Prefer": "count=planned"}),
        ("/users?select=agency_id", {"Accept": "text/csv"}),
    ],
)
def test_what_it_does_not_understand_is_a_400(
    rest: httpx.Client, path: str, extra_headers: dict[str, str]
) -> None:
    body = error_of(rest.get(path, headers=extra_headers), 400)
    assert body["code"] == "PGRST100"


@pytest.mark.parametrize(
    "path",
    ["/users?select=nope", "/users?select=agency_id&nope=eq.1", "/users?order=nope.asc"],
)
def test_unknown_columns_are_postgresql_s_42703(rest: httpx.Client, path: str) -> None:
    assert error_of(rest.get(path), 400)["code"] == "42703"


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_only_reads(rest: httpx.Client, method: str) -> None:
    response = rest.request(method, "/users?select=agency_id", json={})
    assert error_of(response, 400)["code"] == "PGRST100"


def test_other_schema_is_refused(rest: httpx.Client) -> None:
    response = rest.get("/users?select=agency_id", headers={"Accept-Profile": "auth"})
    assert error_of(response, 406)["code"] == "PGRST106"


def test_requests_outside_rest_are_not_answered(rest: httpx.Client) -> None:
    with pytest.raises(AllMockedAssertionError):
        httpx.get(f"{URL}/auth/v1/user")


# --- one row as an object (supabase-js's .single()) ----------------------------------------------

OBJECT = {"Accept": "application/vnd.pgrst.object+json"}


def test_one_row_as_an_object(rest: httpx.Client) -> None:
    response = rest.get(f"/users?select=agency_id&id=eq.{USER_A}", headers=OBJECT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert response.json() == {"agency_id": str(AGENCY_A)}


def test_no_row_as_an_object_is_a_406(rest: httpx.Client) -> None:
    response = rest.get(f"/users?select=agency_id&id=eq.{USER_NO_AGENCY}", headers=OBJECT)
    body = error_of(response, 406)
    assert body["code"] == "PGRST116"
    assert body["details"] == "The result contains 0 rows"


def test_rows_as_an_object_is_a_406(rest: httpx.Client) -> None:
    many = rest.get("/campaign_contacts?select=id&limit=2")
    assert len(many.json()) == 2
    response = rest.get("/campaign_contacts?select=id&limit=2", headers=OBJECT)
    assert error_of(response, 406)["details"] == "The result contains 2 rows"
