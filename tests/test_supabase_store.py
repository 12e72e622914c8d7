"""supabase-py at the wire: the exact PostgREST requests, and PostgREST's answers replayed."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import httpx
import pytest
import respx

from calls_batch_get.models import BATCH_COLUMNS, CONTACT_COLUMNS, ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import StoreError
from calls_batch_get.store.supabase import SupabaseStore, create_supabase_client
from tests.rows import AGENCY, BATCH, OTHER_AGENCY, USER, batch_row, contact_row

URL = "https://project-ref.supabase.co"
KEY = "sb_secret_test_key_0123456789"
QUERY = BatchQuery(batch_id=UUID(BATCH), contact_status=ContactStatus.COMPLETED, limit=2, offset=4)


@pytest.fixture
def rest() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{URL}/rest/v1", assert_all_called=False) as router:
        yield router


@pytest.fixture
def store() -> SupabaseStore:
    return SupabaseStore(create_supabase_client(URL, KEY, timeout_seconds=1.0))


def answer(
    rest: respx.MockRouter,
    users: httpx.Response | Exception,
    batch: httpx.Response | Exception,
    contacts: httpx.Response | Exception,
) -> dict[str, respx.Route]:
    return {
        "users": rest.get("/users").mock(side_effect=[users]),
        "batch": rest.get("/v_call_batch_summary").mock(side_effect=[batch]),
        "contacts": rest.get("/campaign_contacts").mock(side_effect=[contacts]),
    }


def ok_answers(rest: respx.MockRouter, **overrides: httpx.Response | Exception) -> dict[
    str, respx.Route
]:
    defaults: dict[str, httpx.Response | Exception] = {
        "users": httpx.Response(200, json=[{"agency_id": AGENCY}]),
        "batch": httpx.Response(200, json=[batch_row()]),
        "contacts": httpx.Response(
            206,
            json=[contact_row(), contact_row()],
            headers={"Content-Range": "4-5/1000"},
        ),
    }
    return answer(rest, **{**defaults, **overrides})


def postgrest_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"code": code, "message": message, "details": None, "hint": None}
    )


def sent(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


def test_exact_requests_and_headers(rest: respx.MockRouter, store: SupabaseStore) -> None:
    routes = ok_answers(rest)
    store.read(UUID(USER), QUERY)

    users = sent(routes["users"])
    assert users.url.params.multi_items() == [
        ("select", "agency_id"), ("id", f"eq.{USER}"), ("limit", "1")
    ]
    batch = sent(routes["batch"])
    assert batch.url.params.multi_items() == [
        ("select", ",".join(BATCH_COLUMNS)), ("id", f"eq.{BATCH}"), ("limit", "1")
    ]
    contacts = sent(routes["contacts"])
    assert contacts.url.params.multi_items() == [
        ("select", ",".join(CONTACT_COLUMNS)),
        ("batch_id", f"eq.{BATCH}"),
        ("status", "eq.completed"),
        ("order", "created_at.asc,id.asc"),
        ("limit", "2"),
        ("offset", "4"),
    ]
    assert contacts.headers["prefer"] == "count=exact"
    for request in (users, batch, contacts):
        assert request.method == "GET"
        assert request.headers["apikey"] == KEY
        assert request.headers["authorization"] == f"Bearer {KEY}"


def test_no_status_filter_when_none_is_asked(rest: respx.MockRouter, store: SupabaseStore) -> None:
    routes = ok_answers(rest)
    store.read(UUID(USER), QUERY.model_copy(update={"contact_status": None}))
    assert "status" not in sent(routes["contacts"]).url.params


def test_partial_content_gives_rows_and_total(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(rest)
    read = store.read(UUID(USER), QUERY)
    assert read.agency_id == UUID(AGENCY)
    assert read.batch is not None
    assert read.batch.progress_percentage == 41.0
    assert len(read.page.contacts) == 2
    assert read.page.total == 1000


def test_whole_set_in_a_200(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(
        rest,
        contacts=httpx.Response(200, json=[contact_row()], headers={"Content-Range": "0-0/1"}),
    )
    assert store.read(UUID(USER), QUERY).page.total == 1


def test_empty_page_content_range_star(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(rest, contacts=httpx.Response(200, json=[], headers={"Content-Range": "*/0"}))
    page = store.read(UUID(USER), QUERY).page
    assert (page.contacts, page.total) == ([], 0)


def test_offset_past_the_end_416_is_an_empty_page(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    routes = ok_answers(
        rest,
        contacts=httpx.Response(
            416,
            json={
                "code": "PGRST103",
                "message": "Requested range not satisfiable",
                "details": "An offset of 4 was requested, but there are only 3 rows.",
                "hint": None,
            },
            headers={"Content-Range": "*/3"},
        ),
    )
    count = rest.head("/campaign_contacts").mock(
        return_value=httpx.Response(200, headers={"Content-Range": "*/3"})
    )
    page = store.read(UUID(USER), QUERY).page
    assert (page.contacts, page.total) == ([], 3)
    counted = sent(count)
    assert counted.url.params.multi_items() == [
        ("select", "id"), ("batch_id", f"eq.{BATCH}"), ("status", "eq.completed")
    ]
    assert counted.headers["prefer"] == "count=exact"
    assert routes["contacts"].call_count == 1


def test_user_without_a_row(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(rest, users=httpx.Response(200, json=[]))
    read = store.read(UUID(USER), QUERY)
    assert (read.agency_id, read.batch, read.page.contacts) == (None, None, [])


def test_user_with_null_agency(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(rest, users=httpx.Response(200, json=[{"agency_id": None}]))
    assert store.read(UUID(USER), QUERY).agency_id is None


def test_batch_of_another_agency_is_not_returned(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest, batch=httpx.Response(200, json=[batch_row(agency_id=OTHER_AGENCY)]))
    read = store.read(UUID(USER), QUERY)
    assert read.agency_id == UUID(AGENCY)
    assert read.batch is None
    assert read.page.contacts == []


def test_missing_batch(rest: respx.MockRouter, store: SupabaseStore) -> None:
    ok_answers(rest, batch=httpx.Response(200, json=[]))
    assert store.read(UUID(USER), QUERY).batch is None


@pytest.mark.parametrize(
    ("failing", "message"),
    [("users", "Failed to fetch user"), ("batch", "Failed to fetch batch"),
     ("contacts", "Failed to fetch contacts")],
)
@pytest.mark.parametrize(
    "failure",
    [
        lambda: postgrest_error(500, "XX000", 'relation "secret_table" does not exist'),
        lambda: postgrest_error(400, "22P02", 'invalid input syntax for type uuid: "x"'),
        lambda: postgrest_error(401, "PGRST301", "JWT expired"),
        lambda: httpx.Response(502, text="<html>Bad gateway</html>"),
        lambda: httpx.Response(503, text=""),
        lambda: httpx.Response(200, text="not json at all"),
        lambda: httpx.Response(200, json={"agency_id": AGENCY}),
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.ConnectError("connection refused"),
        lambda: httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["pg-error", "bad-uuid", "jwt", "502-html", "503", "200-garbage", "200-object", "timeout",
         "connect", "dropped"],
)
def test_failures_become_a_fixed_store_error(
    rest: respx.MockRouter,
    store: SupabaseStore,
    failing: str,
    message: str,
    failure: Callable[[], httpx.Response | Exception],
) -> None:
    ok_answers(rest, **{failing: failure()})
    with pytest.raises(StoreError) as caught:
        store.read(UUID(USER), QUERY)
    assert caught.value.message == message
    assert caught.value.status == 500


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
    routes = ok_answers(rest, batch=failure())
    started = time.monotonic()
    with pytest.raises(StoreError):
        store.read(UUID(USER), QUERY)
    assert routes["batch"].call_count == 1
    # supabase-py's default would sleep 1 s before its first retry.
    assert time.monotonic() - started < 0.9


def test_rows_that_do_not_fit_the_model_are_a_failure(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest, contacts=httpx.Response(
        200, json=[contact_row(status="exploded")], headers={"Content-Range": "0-0/1"}
    ))
    with pytest.raises(StoreError) as caught:
        store.read(UUID(USER), QUERY)
    assert caught.value.message == "Failed to fetch contacts"


def test_the_three_reads_overlap(rest: respx.MockRouter, store: SupabaseStore) -> None:
    windows: dict[str, tuple[float, float]] = {}

    def slow(name: str, response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            started = time.monotonic()
            time.sleep(0.2)
            windows[name] = (started, time.monotonic())
            return response

        return respond

    answers = {
        "/users": httpx.Response(200, json=[{"agency_id": AGENCY}]),
        "/v_call_batch_summary": httpx.Response(200, json=[batch_row()]),
        "/campaign_contacts": httpx.Response(200, json=[], headers={"Content-Range": "*/0"}),
    }
    for path, response in answers.items():
        rest.get(path).mock(side_effect=slow(path, response))
    store.read(UUID(USER), QUERY)
    latest_start = max(start for start, _ in windows.values())
    earliest_end = min(end for _, end in windows.values())
    assert latest_start < earliest_end, "all three reads were in flight at the same moment"


def test_timeout_is_explicit_and_enforced_on_a_real_socket() -> None:
    """A PostgREST that never answers: the read fails after DB_TIMEOUT_SECONDS, not 120 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        port = silent.getsockname()[1]
        store = SupabaseStore(create_supabase_client(f"http://127.0.0.1:{port}", KEY, 0.3))
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.read(UUID(USER), QUERY)
        elapsed = time.monotonic() - started
    assert caught.value.message == "Failed to fetch user"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert 0.25 < elapsed < 2.0
