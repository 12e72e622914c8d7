"""Request-level tests through the real Functions Framework app: one per row of the
specification's error table and per rule of DESIGN.md, named after it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import respx
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from calls_batch_get import cursor
from tests.conftest import ANON_KEY, ROOT, AppFactory
from tests.rows import AGENCY, BATCH, OTHER_AGENCY, USER, batch_row, contact_row
from tests.tokens import KeySetServer, TokenFactory

ALLOWED_HEADERS = (
    "authorization, x-client-info, apikey, content-type, x-request-id, "
    "traceparent, tracestate, baggage, if-none-match"
)
# The codes each status may carry (issue 8's table).
CODES_BY_STATUS = {
    400: {"invalid_parameter"},
    401: {"missing_token", "invalid_token", "token_expired"},
    403: {"no_agency"},
    404: {"batch_not_found"},
    405: {"method_not_allowed"},
    500: {"database_error", "auth_unavailable", "internal_error"},
}


@pytest.fixture
def rest(env: dict[str, str]) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{env['SUPABASE_URL']}/rest/v1", assert_all_called=False) as router:
        yield router


READ = "/rpc/calls_batch_get"
_SPEC_BATCH: dict[str, Any] = {}


def serve(
    rest: respx.MockRouter,
    agency_id: str | None = AGENCY,
    batch: dict[str, Any] | None = _SPEC_BATCH,
    contacts: list[dict[str, Any]] | None = None,
) -> respx.Route:
    """PostgREST's answer: the read function's document. The batch's counters (the
    specification's: 1000 contacts) are the page's total, and no count is asked for."""
    document = {
        "agency_id": agency_id,
        "batch": batch_row() if batch is _SPEC_BATCH else batch,
        "contacts": [contact_row()] if contacts is None else contacts,
    }
    return rest.get(READ).respond(200, json=document)


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app()


@pytest.fixture
def auth(tokens: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.es256(USER)}"}


def get(client: FlaskClient, query: str = f"batch_id={BATCH}", **headers: str) -> TestResponse:
    return client.get(f"/?{query}", headers=headers)


def error(response: TestResponse, status: int, code: str | None = None) -> str:
    """The message of an error response, after checking its status, shape and code."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    assert set(body) == ({"error", "code", "parameter"} if status == 400 else {"error", "code"})
    assert body["code"] in CODES_BY_STATUS[status]
    if code is not None:
        assert body["code"] == code
    return str(body["error"])


def assert_common_headers(response: TestResponse) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-Id, ETag"


# --- 200: the specification's response ---------------------------------------------------------


def test_200_returns_batch_contacts_and_pagination_as_specified(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    contact = contact_row(id="10000000-0000-4000-8000-000000000001")
    # One more row than the limit: the page has more after it.
    route = serve(rest, contacts=[contact, contact_row()])
    response = get(client, f"batch_id={BATCH}&contact_limit=1", **auth)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert_common_headers(response)
    # The rows as PostgREST gave them, with every timestamp turned to UTC with a "Z".
    assert response.get_json() == {
        "batch": batch_row(created_at="2025-01-15T10:30:00Z", started_at="2025-01-15T10:31:00Z"),
        "contacts": [
            contact_row(
                id=contact["id"],
                last_attempt_at="2025-01-15T10:35:00Z",
                completed_at="2025-01-15T10:37:25.123456Z",
                created_at="2025-01-15T10:30:00Z",
            )
        ],
        "contact_pagination": {
            "total": 1000,
            "limit": 1,
            "offset": 0,
            "next_cursor": cursor.encode(
                UUID(BATCH),
                None,
                cursor.Position(
                    datetime(2025, 1, 15, 10, 30, tzinfo=UTC),
                    UUID(contact["id"]),
                    # The row after it was created at the same time.
                    tie_follows=True,
                ),
            ),
            "has_more": True,
        },
    }
    # The limit asked for; the read function returns one more.
    assert route.calls.last.request.url.params["contact_limit"] == "1"
    # Read as the caller: PostgREST gets the caller's own token, which names the user.
    assert route.calls.last.request.headers["authorization"] == auth["Authorization"]
    # progress_percentage is a JSON number even when it is whole
    assert b'"progress_percentage":41.0' in response.data


def test_the_next_cursor_of_a_filtered_page_opens_the_next_page_of_that_filter(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    """What the screen does: follow next_cursor with the same filter. The cursor the function
    made must be one it accepts for that filter, and carry the last contact's place."""
    last = contact_row(id="10000000-0000-4000-8000-000000000007", status="queued")
    route = serve(rest, contacts=[last, contact_row(status="queued")])
    first = get(client, f"batch_id={BATCH}&contact_status=queued&contact_limit=1", **auth)
    next_cursor = first.get_json()["contact_pagination"]["next_cursor"]
    assert next_cursor

    second = get(
        client, f"batch_id={BATCH}&contact_status=queued&contact_limit=1"
        f"&contact_cursor={next_cursor}", **auth,
    )
    assert second.status_code == 200, second.data
    params = route.calls.last.request.url.params
    assert params["contact_status"] == "queued"
    assert params["after_id"] == last["id"]
    assert params["after_created_at"].startswith("2025-01-15T10:30:00")
    # And not one for another filter.
    other = get(client, f"batch_id={BATCH}&contact_status=failed&contact_cursor={next_cursor}",
                **auth)
    assert "another batch or contact_status" in error(other, 400)


def test_200_contact_limit_above_200_is_clamped(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    route = serve(rest, contacts=[])
    response = get(client, f"batch_id={BATCH}&contact_limit=5000", **auth)
    assert response.status_code == 200
    assert response.get_json()["contact_pagination"]["limit"] == 200
    assert route.calls.last.request.url.params["contact_limit"] == "200"


def test_200_offset_past_the_end_is_an_empty_page(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest, batch=batch_row(total_contacts=12), contacts=[])
    response = get(client, f"batch_id={BATCH}&contact_offset=900", **auth)
    assert response.status_code == 200
    assert response.get_json()["contacts"] == []
    assert response.get_json()["contact_pagination"] == {
        "total": 12, "limit": 50, "offset": 900, "next_cursor": None, "has_more": False
    }


# --- conditional polling: ETag and 304 -----------------------------------------------------------


def test_200_carries_a_strong_etag_of_its_body(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest)
    first, again = get(client, **auth), get(client, **auth)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[A-Za-z0-9_-]{16,}"', etag), "strong: quoted, no W/ prefix"
    assert again.data == first.data
    assert again.headers["ETag"] == etag
    rest.routes.clear()
    serve(rest, contacts=[contact_row(status="failed")])
    changed = get(client, **auth)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


@pytest.mark.parametrize(
    "if_none_match",
    ["{tag}", "W/{tag}", '"other", {tag}', 'W/"other",W/{tag} ,"more"', "*"],
    ids=["same", "weak", "in-a-list", "weak-in-a-list", "star"],
)
def test_304_when_the_caller_holds_the_body(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter, if_none_match: str
) -> None:
    serve(rest)
    etag = get(client, **auth).headers["ETag"]
    response = get(client, **auth, **{"If-None-Match": if_none_match.format(tag=etag)})
    assert response.status_code == 304
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert response.headers["ETag"] == etag
    assert_common_headers(response)


@pytest.mark.parametrize(
    "if_none_match", ['"other"', 'W/"other", "more"', '"{opaque_but_last}"'],
    ids=["other", "others", "prefix"],
)
def test_200_when_no_tag_matches(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter, if_none_match: str
) -> None:
    serve(rest)
    etag = get(client, **auth).headers["ETag"]
    sent = if_none_match.format(opaque_but_last=etag.strip('"')[:-1])
    response = get(client, **auth, **{"If-None-Match": sent})
    assert response.status_code == 200
    assert response.headers["ETag"] == etag
    assert response.get_json()["batch"]["id"] == BATCH


def test_if_none_match_never_hides_an_error(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest, batch=None, contacts=[])
    response = get(client, **auth, **{"If-None-Match": "*"})
    assert error(response, 404, "batch_not_found") == "Batch not found"
    assert "ETag" not in response.headers
    assert error(get(client, **{"If-None-Match": "*"}), 401, "missing_token")


def preflight(client: FlaskClient, request_headers: str) -> TestResponse:
    return client.options(
        "/",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": request_headers,
        },
    )


def test_preflight_lets_a_page_send_if_none_match_and_read_the_etag(client: FlaskClient) -> None:
    response = preflight(client, "authorization, if-none-match")
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-none-match"} <= allowed
    assert "ETag" in response.headers["Access-Control-Expose-Headers"].split(", ")


# --- order of checks ---------------------------------------------------------------------------


def test_options_preflight_is_204_without_token(client: FlaskClient) -> None:
    response = preflight(client, "authorization, x-client-info, apikey")
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == ALLOWED_HEADERS
    assert_common_headers(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD"])
def test_405_method_is_not_get(client: FlaskClient, method: str) -> None:
    response = client.open(f"/?batch_id={BATCH}", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, OPTIONS"
    assert_common_headers(response)
    if method != "HEAD":
        assert error(response, 405, "method_not_allowed") == "Method not allowed"


def test_405_comes_before_401(client: FlaskClient) -> None:
    assert error(client.post("/"), 405) == "Method not allowed"


# RFC 6750 §3.1: a challenge without an error code when no bearer token was sent.
BARE_CHALLENGE = 'Bearer realm="calls-batch-get"'


def test_401_missing_authorization_header(client: FlaskClient) -> None:
    response = get(client)
    assert error(response, 401, "missing_token") == "Missing authorization header"
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE
    assert_common_headers(response)


@pytest.mark.parametrize("scheme", ["Basic", "Bearer", "Token"])
def test_401_no_bearer_token_is_a_bare_challenge(
    client: FlaskClient, tokens: TokenFactory, scheme: str
) -> None:
    header = f"{scheme} {tokens.es256(USER)}" if scheme != "Bearer" else "Bearer   "
    response = get(client, Authorization=header)
    assert error(response, 401, "missing_token") == (
        "Authorization header must be 'Bearer <token>'"
    )
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_401_bearer_scheme_is_case_insensitive(
    client: FlaskClient, tokens: TokenFactory, rest: respx.MockRouter
) -> None:
    serve(rest)
    assert get(client, Authorization=f"bearer {tokens.es256(USER)}").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"exp": 1_000_000}, "token_expired", "Token has expired"),
        ({"aud": "anon"}, "invalid_token", "Token audience is not 'authenticated'"),
        ({"iss": "https://elsewhere/auth/v1"}, "invalid_token", "Token issuer is not accepted"),
        ({"nbf": 4_102_444_800}, "invalid_token", "Token is not yet valid"),
    ],
)
def test_401_token_fails_verification(
    client: FlaskClient, tokens: TokenFactory, overrides: dict[str, Any], code: str, message: str
) -> None:
    token = tokens.es256(USER, **overrides)
    response = get(client, Authorization=f"Bearer {token}")
    assert error(response, 401, code) == message
    assert token.encode() not in response.data
    # The same description for a client library that reads only the challenge.
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="calls-batch-get", error="invalid_token", error_description="{message}"'
    )


def test_401_a_token_that_is_not_a_jwt_is_invalid_not_missing(client: FlaskClient) -> None:
    response = get(client, Authorization="Bearer not-a-jwt")
    assert error(response, 401, "invalid_token") == "Token is malformed"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_401_comes_before_400(client: FlaskClient) -> None:
    assert error(get(client, "contact_limit=x"), 401, "missing_token") == (
        "Missing authorization header"
    )


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("", "batch_id", "batch_id query parameter is required"),
        ("batch_id=", "batch_id", "batch_id query parameter is required"),
        ("batch_id=nope", "batch_id", "batch_id must be a UUID"),
        (f"batch_id={BATCH}&contact_status=done", "contact_status", "contact_status must be one "
         "of: pending, queued, in_progress, completed, failed, skipped"),
        (f"batch_id={BATCH}&contact_limit=ten", "contact_limit",
         "contact_limit must be an integer"),
        (f"batch_id={BATCH}&contact_limit=0", "contact_limit", "contact_limit must be at least 1"),
        (f"batch_id={BATCH}&contact_offset=-5", "contact_offset",
         "contact_offset must be at least 0"),
        (f"batch_id={BATCH}&contact_offset=2147483648", "contact_offset",
         "contact_offset must be at most 2147483647"),
        (f"batch_id={BATCH}&contact_offset=1&contact_offset=2", "contact_offset",
         "contact_offset query parameter is given more than once"),
        (f"batch_id={BATCH}&batch_id={BATCH}", "batch_id",
         "batch_id query parameter is given more than once"),
    ],
)
def test_400_query_parameters(
    client: FlaskClient,
    auth: dict[str, str],
    rest: respx.MockRouter,
    query: str,
    parameter: str,
    message: str,
) -> None:
    response = get(client, query, **auth)
    assert error(response, 400, "invalid_parameter") == message
    assert response.get_json()["parameter"] == parameter
    assert_common_headers(response)
    assert not rest.calls, "bad input never reaches the database"


def test_403_user_is_not_associated_with_an_agency(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest, agency_id=None, batch=None, contacts=[])
    response = get(client, **auth)
    assert error(response, 403, "no_agency") == "User is not associated with an agency"
    assert b"John" not in response.data


def test_404_batch_not_found(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest, batch=None, contacts=[])
    assert error(get(client, **auth), 404, "batch_not_found") == "Batch not found"


def test_404_batch_of_another_agency_is_indistinguishable(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    serve(rest, batch=None, contacts=[])
    missing = get(client, **auth)
    rest.routes.clear()
    serve(rest, batch=batch_row(agency_id=OTHER_AGENCY))
    foreign = get(client, **auth)
    assert (foreign.status_code, foreign.data) == (missing.status_code, missing.data)
    assert b"Q1 Outreach" not in foreign.data
    assert b"+1555" not in foreign.data


def test_500_failed_to_fetch_from_the_database(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    rest.get(READ).respond(
        500,
        json={"code": "XX000", "message": 'could not read block 7 in file "base/16384/2619"',
              "details": "secret detail", "hint": None},
    )
    response = get(client, **auth)
    assert error(response, 500, "database_error") == "Failed to fetch batch"
    assert b"block" not in response.data
    assert b"secret" not in response.data
    assert_common_headers(response)


def test_500_database_unreachable(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter
) -> None:
    rest.get(READ).mock(side_effect=httpx.ConnectError("refused"))
    assert error(get(client, **auth), 500, "database_error") == "Failed to fetch batch"


def test_500_key_service_down_is_not_a_401(
    client: FlaskClient, auth: dict[str, str], key_server: KeySetServer
) -> None:
    key_server.status, key_server.body = 503, b"down"
    response = get(client, **auth)
    assert error(response, 500, "auth_unavailable") == "Failed to verify token"
    assert "WWW-Authenticate" not in response.headers
    assert_common_headers(response)


def test_500_unexpected_failure_has_no_stack_trace(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter, log_lines: LogLines
) -> None:
    rest.get(READ).mock(side_effect=RuntimeError("boom at /srv/secret.py line 3"))
    response = get(client, **auth)
    assert error(response, 500, "internal_error") == "Internal server error"
    assert b"Traceback" not in response.data
    assert b"boom" not in response.data
    (line,) = log_lines()
    assert (line["error"], line["code"], line["cause"]) == (
        "Internal server error", "internal_error", "RuntimeError"
    )
    assert "boom" not in json.dumps(line)


# --- headers every response carries ------------------------------------------------------------


def test_request_id_from_the_caller_is_kept(client: FlaskClient) -> None:
    response = get(client, **{"X-Request-Id": "req-123"})
    assert response.headers["X-Request-Id"] == "req-123"


def test_request_id_is_made_when_absent_or_odd(client: FlaskClient) -> None:
    first = get(client, **{"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    second = get(client).headers["X-Request-Id"]
    assert first != "bad id with spaces"
    assert first != second


def test_cors_allow_list_echoes_the_origin_on_errors_too(make_app: AppFactory) -> None:
    client = make_app(CORS_ALLOW_ORIGINS="https://app.example.com,https://admin.example.com")
    allowed = get(client, Origin="https://admin.example.com")
    assert allowed.status_code == 401
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert allowed.headers["Vary"] == "Origin"
    other = get(client, Origin="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"


# --- one structured log line per request -------------------------------------------------------

LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> LogLines:
    """The JSON lines written to stdout since the test began."""
    capsys.readouterr()
    return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_one_json_log_line_per_request_without_secrets(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter, log_lines: LogLines
) -> None:
    serve(rest)
    started = time.perf_counter()
    get(client, **auth, **{"X-Request-Id": "trace-me"})
    get(client)
    elapsed = time.perf_counter() - started
    lines = log_lines()
    assert len(lines) == 2
    ok, denied = lines
    assert ok["severity"] == "INFO"
    assert (ok["method"], ok["status"], ok["request_id"], ok["user_id"]) == (
        "GET", 200, "trace-me", USER
    )
    assert isinstance(ok["latency_ms"], float)
    assert (ok["message"], denied["message"]) == ("GET 200", "GET 401")
    # The two spellings of one latency agree (milliseconds rounded to hundredths).
    for line in lines:
        seconds = float(line["httpRequest"]["latency"].removesuffix("s"))
        assert line["latency_ms"] > 0
        assert abs(line["latency_ms"] - seconds * 1000) <= 0.011
        assert line["latency_ms"] == round(line["latency_ms"], 2)
    # Each request's own time, as the caller saw it go by: no more than both took together.
    assert sum(line["latency_ms"] for line in lines) <= elapsed * 1000
    assert denied["severity"] == "WARNING"
    assert (denied["status"], denied["user_id"]) == (401, None)
    assert denied["error"] == "Missing authorization header"
    # The answer's code, which the log-based metrics count errors by; a success has none.
    assert denied["code"] == "missing_token"
    assert "code" not in ok
    # A caller's mistake has no cause to look into; nor has a success.
    assert "cause" not in denied
    assert "cause" not in ok
    text = json.dumps(lines)
    token = auth["Authorization"].split()[1]
    for secret in (token, "+1555", "john@example.com", ANON_KEY):
        assert secret not in text


def test_log_line_of_a_500_names_the_cause_type_not_its_text(
    client: FlaskClient, auth: dict[str, str], rest: respx.MockRouter, log_lines: LogLines
) -> None:
    rest.get(READ).mock(side_effect=httpx.ReadTimeout("read timed out"))
    get(client, **auth)
    (line,) = log_lines()
    assert line["severity"] == "ERROR"
    assert line["status"] == 500
    assert line["error"] == "Failed to fetch batch"
    assert line["code"] == "database_error"
    assert line["cause"] == "httpx.ReadTimeout"


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("headers", "span"),
    [
        ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}, "00f067aa0ba902b7"),
        ({"X-Cloud-Trace-Context": f"{TRACE_ID}/255;o=1"}, "00000000000000ff"),
    ],
    ids=["traceparent", "x-cloud-trace-context"],
)
def test_log_line_is_filed_under_its_trace_with_an_http_request(
    make_app: AppFactory,
    auth: dict[str, str],
    rest: respx.MockRouter,
    log_lines: LogLines,
    headers: dict[str, str],
    span: str,
) -> None:
    client = make_app(GOOGLE_CLOUD_PROJECT="my-project")
    serve(rest)
    client.get(
        f"/calls?batch_id={BATCH}&contact_limit=3",
        headers={**auth, **headers, "User-Agent": "batch-screen/1.0"},
    )
    (line,) = log_lines()
    assert line["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE_ID}"
    assert line["logging.googleapis.com/spanId"] == span
    assert line["logging.googleapis.com/trace_sampled"] is True
    request = line["httpRequest"]
    assert request["requestMethod"] == "GET"
    assert request["status"] == 200
    assert request["userAgent"] == "batch-screen/1.0"
    assert re.fullmatch(r"[0-9]+\.[0-9]{6}s", request["latency"])
    assert request["requestUrl"] == "/calls", "the query string stays out of the log"
    assert int(request["responseSize"]) > 0


def test_no_trace_fields_without_a_project_or_a_trace_header(
    make_app: AppFactory, log_lines: LogLines
) -> None:
    traced = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    make_app().get("/", headers=traced)
    make_app(GOOGLE_CLOUD_PROJECT="my-project").get("/")
    for line in log_lines():
        assert not [key for key in line if key.startswith("logging.googleapis.com/")]
        assert line["httpRequest"]["status"] == 401


# --- start-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "line"),
    [
        ("SUPABASE_URL", "calls-batch-get: configuration error: SUPABASE_URL is not set"),
        ("SUPABASE_ANON_KEY", "calls-batch-get: configuration error: "
         "SUPABASE_ANON_KEY is not set (it is needed unless DATABASE_URL is set)"),
    ],
)
def test_missing_setting_stops_the_process_with_one_line(
    env: dict[str, str], missing: str, line: str
) -> None:
    child_env = {k: v for k, v in env.items() if k != missing}
    result = subprocess.run(
        [sys.executable, "-m", "functions_framework", "--target", "calls_batch_get",
         "--source", str(ROOT / "main.py"), "--port", "0"],
        env={"PATH": "/usr/bin:/bin", **child_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [line]
