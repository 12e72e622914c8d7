"""supabase-py at the wire: the exact PostgREST request, and PostgREST's answers replayed."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import respx
from pydantic import ValidationError

from calls_batch_get.auth import AuthError, Caller
from calls_batch_get.cursor import Position
from calls_batch_get.errors import ErrorCode
from calls_batch_get.log import configure
from calls_batch_get.models import ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import StoreError
from calls_batch_get.store.supabase import SupabaseStore, TokenRefused, create_supabase_store
from tests.rows import AGENCY, BATCH, OTHER_AGENCY, USER, batch_row, contact_row

URL = "https://project-ref.supabase.co"
KEY = "sb_publishable_test_key_0123456789"
QUERY = BatchQuery(batch_id=UUID(BATCH), contact_status=ContactStatus.COMPLETED, limit=2, offset=4)
READ_PATH = "/rpc/calls_batch_get"


CALLERS_TOKEN = "the-callers-own-access-token"


def caller(token: str = CALLERS_TOKEN) -> Caller:
    return Caller(UUID(USER), token, json.dumps({"sub": USER, "role": "authenticated"}))


@pytest.fixture
def rest() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{URL}/rest/v1", assert_all_called=False) as router:
        yield router


@pytest.fixture
def store() -> SupabaseStore:
    return create_supabase_store(URL, KEY, timeout_seconds=1.0)


def document(
    agency_id: str | None = AGENCY,
    batch: dict[str, Any] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The read function's value, as PostgREST serves it."""
    return {
        "agency_id": agency_id,
        "batch": batch_row() if batch is None and agency_id is not None else batch,
        "contacts": [contact_row(), contact_row()] if contacts is None else contacts,
    }


def answer(rest: respx.MockRouter, *responses: httpx.Response | Exception) -> respx.Route:
    return rest.get(READ_PATH).mock(side_effect=list(responses))


def ok(rest: respx.MockRouter, **fields: Any) -> respx.Route:
    return answer(rest, httpx.Response(200, json=document(**fields)))


def postgrest_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"code": code, "message": message, "details": None, "hint": None}
    )


def test_one_get_of_the_read_function_with_the_callers_token(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    route = ok(rest)
    store.read(caller(), QUERY)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.params.multi_items() == [
        ("batch_id", BATCH),
        ("contact_limit", "2"),
        ("contact_status", "completed"),
        ("contact_offset", "4"),
    ]
    # The project's publishable key for the gateway; the caller's own token for PostgREST,
    # which then reads as that user. Nothing is counted.
    assert request.headers["apikey"] == KEY
    assert request.headers["authorization"] == "Bearer the-callers-own-access-token"
    assert "prefer" not in request.headers


def test_defaults_are_left_out_and_a_cursor_sends_its_position(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    route = rest.get(READ_PATH).mock(return_value=httpx.Response(200, json=document()))
    store.read(caller(), BatchQuery(batch_id=UUID(BATCH)))
    assert route.calls.last.request.url.params.multi_items() == [
        ("batch_id", BATCH), ("contact_limit", "50")
    ]
    after = Position(datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC), UUID(int=7))
    store.read(caller(), BatchQuery(batch_id=UUID(BATCH), after=after))
    assert route.calls.last.request.url.params.multi_items() == [
        ("batch_id", BATCH),
        ("contact_limit", "50"),
        ("after_created_at", "2025-01-15T10:30:00.123456Z"),
        ("after_id", str(after.id)),
    ]


def test_concurrent_callers_each_send_their_own_token_and_the_client_keeps_none(
    rest: respx.MockRouter,
) -> None:
    store = create_supabase_store(URL, KEY, timeout_seconds=1.0)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def respond(request: httpx.Request) -> httpx.Response:
        time.sleep(0.01)  # so that the threads' requests interleave
        with lock:
            seen.append((request.url.params["contact_limit"], request.headers["authorization"]))
        return httpx.Response(200, json=document())

    rest.get(READ_PATH).mock(side_effect=respond)

    def poll(n: int) -> None:
        for _ in range(5):
            store.read(caller(f"token-{n}"), QUERY.model_copy(update={"limit": n}))

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 40
    assert all(auth == f"Bearer token-{limit}" for limit, auth in seen), seen
    # The shared client still holds the key alone: no caller's token stays behind on it.
    assert store.client.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("status", "total"),
    [
        (None, 1000),
        (ContactStatus.QUEUED, 500),
        (ContactStatus.IN_PROGRESS, 5),
        (ContactStatus.COMPLETED, 400),
        (ContactStatus.FAILED, 10),
        (ContactStatus.SKIPPED, 0),
        # The specification's batch: 1000 - 500 - 5 - 400 - 10 - 0
        (ContactStatus.PENDING, 85),
    ],
)
def test_the_total_is_the_batchs_counter_for_the_filter(
    rest: respx.MockRouter, store: SupabaseStore, status: ContactStatus | None, total: int
) -> None:
    ok(rest)
    read = store.read(caller(), QUERY.model_copy(update={"contact_status": status}))
    assert read.agency_id == UUID(AGENCY)
    assert read.batch is not None
    assert read.batch.progress_percentage == 41.0
    assert read.page.total == total


@pytest.mark.parametrize(("rows", "kept", "has_more"), [(0, 0, False), (2, 2, False), (3, 2, True)])
def test_the_extra_row_says_whether_more_follow(
    rest: respx.MockRouter, store: SupabaseStore, rows: int, kept: int, has_more: bool
) -> None:
    ok(rest, contacts=[contact_row() for _ in range(rows)])
    page = store.read(caller(), QUERY).page
    assert (len(page.contacts), page.has_more) == (kept, has_more)


def test_user_without_an_agency(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok(rest, agency_id=None, contacts=[])
    read = store.read(caller(), QUERY)
    assert (read.agency_id, read.batch, read.page.contacts) == (None, None, [])


def test_missing_batch(rest: respx.MockRouter, store: SupabaseStore) -> None:
    answer(rest, httpx.Response(200, json={"agency_id": AGENCY, "batch": None, "contacts": []}))
    read = store.read(caller(), QUERY)
    assert (read.agency_id, read.batch) == (UUID(AGENCY), None)


def test_a_batch_of_another_agency_in_the_answer_is_still_not_returned(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    # The database keeps it out twice over; should both fail, the function does not show it.
    ok(rest, batch=batch_row(agency_id=OTHER_AGENCY))
    read = store.read(caller(), QUERY)
    assert read.agency_id == UUID(AGENCY)
    assert (read.batch, read.page.contacts) == (None, [])


def test_a_token_postgrest_finds_expired_is_a_401_token_expired(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    answer(rest, postgrest_error(401, "PGRST303", "JWT expired"))
    with pytest.raises(AuthError) as caught:
        store.read(caller(), QUERY)
    assert (caught.value.status, caught.value.code) == (401, ErrorCode.TOKEN_EXPIRED)
    assert caught.value.message == "Token has expired"


@pytest.mark.parametrize(
    "refusal",
    [
        lambda: postgrest_error(401, "PGRST301", "No suitable key or wrong key type"),
        lambda: postgrest_error(401, "PGRST303", "JWT issued at future"),
        lambda: postgrest_error(403, "42501", "permission denied for function calls_batch_get"),
        lambda: httpx.Response(401, text="<html>Unauthorized</html>"),
    ],
    ids=["unknown-key", "issued-in-future", "no-grant", "401-html"],
)
def test_any_other_refusal_of_a_verified_token_is_a_500(
    rest: respx.MockRouter, store: SupabaseStore, refusal: Callable[[], httpx.Response]
) -> None:
    # The function verified the token: the two disagree about the project's keys or grants,
    # which is not the caller's fault, so no 401 that would sign them out.
    answer(rest, refusal())
    with pytest.raises(StoreError) as caught:
        store.read(caller(), QUERY)
    assert (caught.value.status, caught.value.message) == (500, "Failed to fetch batch")
    assert isinstance(caught.value.__cause__, TokenRefused)


@pytest.mark.parametrize(
    "failure",
    [
        lambda: postgrest_error(500, "XX000", 'relation "secret_table" does not exist'),
        lambda: postgrest_error(400, "22023", "contact_limit must be between 1 and 200"),
        lambda: postgrest_error(404, "PGRST202", "Could not find the function"),
        lambda: httpx.Response(502, text="<html>Bad gateway</html>"),
        lambda: httpx.Response(503, text=""),
        lambda: httpx.Response(200, text="not json at all"),
        lambda: httpx.Response(200, json=[document()]),
        lambda: httpx.Response(200, json={**document(), "extra": 1}),
        lambda: httpx.Response(200, json=document(contacts=[contact_row(status="exploded")])),
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.ConnectError("connection refused"),
        lambda: httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["pg-error", "bad-argument", "no-function", "502-html", "503", "200-garbage",
         "200-array", "200-extra-key", "200-bad-row", "timeout", "connect", "dropped"],
)
def test_failures_become_a_fixed_store_error(
    rest: respx.MockRouter,
    store: SupabaseStore,
    failure: Callable[[], httpx.Response | Exception],
) -> None:
    answer(rest, failure())
    with pytest.raises(StoreError) as caught:
        store.read(caller(), QUERY)
    assert caught.value.message == "Failed to fetch batch"
    assert caught.value.status == 500
    assert not isinstance(caught.value.__cause__, TokenRefused)


@pytest.mark.parametrize(
    "failure",
    [
        lambda: httpx.Response(503, text=""),
        lambda: httpx.Response(520, text=""),
        lambda: httpx.ConnectError("refused"),
    ],
    ids=["503", "520", "connect"],
)
def test_no_retries_that_sleep_the_request_thread(
    rest: respx.MockRouter,
    store: SupabaseStore,
    failure: Callable[[], httpx.Response | Exception],
) -> None:
    route = answer(rest, failure(), httpx.Response(200, json=document()))
    started = time.monotonic()
    with pytest.raises(StoreError):
        store.read(caller(), QUERY)
    assert route.call_count == 1
    # supabase-py's default would sleep 1 s before its first retry.
    assert time.monotonic() - started < 0.9


def test_timeout_is_explicit_and_enforced_on_a_real_socket() -> None:
    """A PostgREST that never answers: the read fails after DB_TIMEOUT_SECONDS, not 120 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        port = silent.getsockname()[1]
        store = create_supabase_store(f"http://127.0.0.1:{port}", KEY, 0.3)
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.read(caller(), QUERY)
        elapsed = time.monotonic() - started
    assert caught.value.message == "Failed to fetch batch"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert 0.25 < elapsed < 2.0


def test_warming_asks_the_api_once_with_the_key_alone(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    root = rest.head("/").respond(200)
    store.warm()
    assert root.call_count == 1
    sent = root.calls.last.request.headers
    assert (sent["apikey"], sent["authorization"]) == (KEY, f"Bearer {KEY}")


def test_warming_against_an_api_that_is_down_only_logs(
    rest: respx.MockRouter, store: SupabaseStore, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO")
    rest.head("/").mock(side_effect=httpx.ConnectError("refused"))
    store.warm()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "severity": "WARNING",
        "message": "could not open a connection to PostgREST ahead of the first request",
        "cause": "ConnectError",
    }


@pytest.mark.parametrize("field", ["batch", "contact"])
def test_a_timestamp_not_in_utc_fails_the_read(
    rest: respx.MockRouter, store: SupabaseStore, field: str
) -> None:
    # The read function renders UTC whatever the session's zone; anything else is not its text.
    shifted = "2025-01-15T11:31:00+01:00"
    body = (
        document(batch=batch_row(started_at=shifted)) if field == "batch"
        else document(contacts=[contact_row(created_at=shifted)])
    )
    rest.get(READ_PATH).respond(200, json=body)
    with pytest.raises(StoreError) as caught:
        store.read(caller(), QUERY)
    assert isinstance(caught.value.__cause__, ValidationError)
