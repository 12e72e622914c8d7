"""The PostgREST stand-in itself: PostgREST's answers where it answers, a 400 where it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from respx.models import AllMockedAssertionError

from tests.database import Seeder
from tests.postgrest_standin import PostgrestStandIn, content_range, mounted, range_status
from tests.scenarios import BARE_BATCH, MAIN_BATCH, USER_A, seed

URL = "https://project-ref.supabase.co"
KEY = "sb_secret_standin_key"
AUTH = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
COUNT = {**AUTH, "Prefer": "count=exact"}
MAIN = f"batch_id=eq.{MAIN_BATCH.id}"
MAIN_SIZE = len(MAIN_BATCH.contacts)


@pytest.fixture
def standin(database_url: str) -> PostgrestStandIn:
    return PostgrestStandIn(database_url, KEY)


@pytest.fixture
def rest(db: Seeder, standin: PostgrestStandIn) -> Iterator[httpx.Client]:
    seed(db.conn)
    with mounted(standin, URL), httpx.Client(base_url=f"{URL}/rest/v1") as client:
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
        headers=AUTH,
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
        headers=AUTH,
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
    response = rest.get(f"/campaign_contacts?select=id&{MAIN}&offset=17", headers=AUTH)
    assert (response.status_code, response.json()) == (200, [])
    assert response.headers["content-range"] == "*/*"


def test_head_has_the_headers_and_no_body(rest: httpx.Client) -> None:
    response = rest.head(f"/campaign_contacts?select=id&{MAIN}", headers=COUNT)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-range"] == f"0-{MAIN_SIZE - 1}/{MAIN_SIZE}"


def test_filter_value_is_typed_as_its_column(rest: httpx.Client) -> None:
    response = rest.get("/users?select=agency_id&id=eq.not-a-uuid", headers=AUTH)
    body = error_of(response, 400)
    assert (body["code"], body["message"]) == (
        "22P02",
        'invalid input syntax for type uuid: "not-a-uuid"',
    )


def test_served_requests_are_logged(rest: httpx.Client, standin: PostgrestStandIn) -> None:
    rest.get(f"/users?select=agency_id&id=eq.{USER_A}&limit=1", headers=AUTH)
    rest.head(f"/campaign_contacts?select=id&{MAIN}", headers=COUNT)
    log = standin.wait_for(2)
    assert [(s.method, s.table, s.status, s.prefer) for s in log] == [
        ("GET", "users", 200, None),
        ("HEAD", "campaign_contacts", 200, "count=exact"),
    ]
    assert log[0].params == (("select", "agency_id"), ("id", f"eq.{USER_A}"), ("limit", "1"))
    assert log[0].started <= log[0].finished <= log[1].started


# --- what it refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"apikey": KEY},
        {"Authorization": f"Bearer {KEY}"},
        {"apikey": "other", "Authorization": f"Bearer {KEY}"},
        {"apikey": KEY, "Authorization": "Bearer other"},
        {"apikey": KEY, "Authorization": KEY},
    ],
    ids=["none", "apikey-only", "bearer-only", "wrong-apikey", "wrong-bearer", "no-scheme"],
)
def test_the_service_key_is_required_twice(rest: httpx.Client, headers: dict[str, str]) -> None:
    error_of(rest.get("/users?select=agency_id", headers=headers), 401)


@pytest.mark.parametrize(
    ("path", "extra_headers"),
    [
        ("/agencies?select=id", {}),
        ("/rpc/request_agency_id", {}),
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
        ("/users?select=agency_id", {"Accept": "application/vnd.pgrst.object+json"}),
    ],
)
def test_what_it_does_not_understand_is_a_400(
    rest: httpx.Client, path: str, extra_headers: dict[str, str]
) -> None:
    body = error_of(rest.get(path, headers={**AUTH, **extra_headers}), 400)
    assert body["code"] == "PGRST100"


@pytest.mark.parametrize(
    "path",
    ["/users?select=nope", "/users?select=agency_id&nope=eq.1", "/users?order=nope.asc"],
)
def test_unknown_columns_are_postgresql_s_42703(rest: httpx.Client, path: str) -> None:
    assert error_of(rest.get(path, headers=AUTH), 400)["code"] == "42703"


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_only_reads(rest: httpx.Client, method: str) -> None:
    response = rest.request(method, "/users?select=agency_id", headers=AUTH, json={})
    assert error_of(response, 400)["code"] == "PGRST100"


def test_other_schema_is_refused(rest: httpx.Client) -> None:
    response = rest.get("/users?select=agency_id", headers={**AUTH, "Accept-Profile": "auth"})
    assert error_of(response, 406)["code"] == "PGRST106"


def test_requests_outside_rest_are_not_answered(rest: httpx.Client) -> None:
    with pytest.raises(AllMockedAssertionError):
        httpx.get(f"{URL}/auth/v1/user")
