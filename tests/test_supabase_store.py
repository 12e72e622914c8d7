"""supabase-py at the wire: the exact PostgREST requests, and PostgREST's answers replayed."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import respx

from calls_batch_get.cursor import Position
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
        # One more than the limit: whether another page follows.
        ("limit", "3"),
        ("offset", "4"),
    ]
    for request in (users, batch, contacts):
        assert request.method == "GET"
        assert request.headers["apikey"] == KEY
        assert request.headers["authorization"] == f"Bearer {KEY}"
        # The total is the batch's counter: nothing is counted.
        assert "prefer" not in request.headers


def test_no_status_filter_when_none_is_asked(rest: respx.MockRouter, store: SupabaseStore) -> None:
    routes = ok_answers(rest)
    store.read(UUID(USER), QUERY.model_copy(update={"contact_status": None}))
    assert "status" not in sent(routes["contacts"]).url.params


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
    ok_answers(rest)
    read = store.read(UUID(USER), QUERY.model_copy(update={"contact_status": status}))
    assert read.agency_id == UUID(AGENCY)
    assert read.batch is not None
    assert read.batch.progress_percentage == 41.0
    assert read.page.total == total


@pytest.mark.parametrize(("rows", "kept", "has_more"), [(0, 0, False), (2, 2, False), (3, 2, True)])
def test_the_extra_row_says_whether_more_follow(
    rest: respx.MockRouter, store: SupabaseStore, rows: int, kept: int, has_more: bool
) -> None:
    ok_answers(rest, contacts=httpx.Response(200, json=[contact_row() for _ in range(rows)]))
    page = store.read(UUID(USER), QUERY).page
    assert (len(page.contacts), page.has_more) == (kept, has_more)


TIE = "2025-01-15T10:30:00.123456Z"
AFTER = Position(datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC), UUID(int=7))


def contacts_by_range(
    rest: respx.MockRouter, answers: dict[str, list[dict[str, Any]]]
) -> list[httpx.Request]:
    """/campaign_contacts answering each range from ``answers``, keyed by its filters: ``ties``
    (created_at=eq, id=gt/gte), ``later`` (created_at=gt) or ``locate`` (select=created_at,id)."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        params = request.url.params
        if params["select"] == "created_at,id":
            key = "locate"
        elif params["created_at"].startswith("eq."):
            key = "ties"
        else:
            key = "later"
        return httpx.Response(200, json=answers[key][: int(params["limit"])])

    rest.get("/campaign_contacts").mock(side_effect=answer)
    return requests


def test_a_cursor_reads_the_rest_of_its_tie_and_what_follows_at_once(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest)
    ties, later = [contact_row() for _ in range(2)], [contact_row() for _ in range(5)]
    requests = contacts_by_range(rest, {"ties": ties, "later": later})

    page = store.read(UUID(USER), QUERY.model_copy(update={"offset": 0, "after": AFTER})).page

    common = [("select", ",".join(CONTACT_COLUMNS)), ("batch_id", f"eq.{BATCH}"),
              ("status", "eq.completed")]
    ordering = [("order", "created_at.asc,id.asc"), ("limit", "3")]
    assert sorted(r.url.params.multi_items() for r in requests) == sorted([
        [*common, ("created_at", f"eq.{TIE}"), ("id", f"gt.{AFTER.id}"), *ordering],
        [*common, ("created_at", f"gt.{TIE}"), *ordering],
    ])
    # The tie first, then the later rows; limit + 1 of them decide has_more.
    assert [str(c.id) for c in page.contacts] == [ties[0]["id"], ties[1]["id"]]
    assert page.has_more


@pytest.mark.parametrize("tie_follows", [False, True])
def test_a_cursor_inside_a_long_tie_needs_nothing_later(
    rest: respx.MockRouter, store: SupabaseStore, tie_follows: bool
) -> None:
    ok_answers(rest)
    ties = [contact_row() for _ in range(5)]
    requests = contacts_by_range(rest, {"ties": ties, "later": [contact_row()]})
    after = Position(AFTER.created_at, AFTER.id, tie_follows=tie_follows)
    page = store.read(UUID(USER), QUERY.model_copy(update={"offset": 0, "after": after})).page
    assert [str(c.id) for c in page.contacts] == [t["id"] for t in ties[:2]]
    assert page.has_more
    # A cursor that knows its tie goes on reads it alone; it would read on only if it were short.
    assert len(requests) == (1 if tie_follows else 2)


def test_a_cursor_whose_tie_ends_short_reads_on_after_it(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest)
    ties, later = [contact_row()], [contact_row() for _ in range(5)]
    requests = contacts_by_range(rest, {"ties": ties, "later": later})
    after = Position(AFTER.created_at, AFTER.id, tie_follows=True)
    page = store.read(UUID(USER), QUERY.model_copy(update={"offset": 0, "after": after})).page
    assert [str(c.id) for c in page.contacts] == [ties[0]["id"], later[0]["id"]]
    assert [r.url.params["limit"] for r in requests] == ["3", "2"]


def test_a_deep_offset_locates_its_row_then_reads_from_it(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest)
    located = {"created_at": "2025-01-15T11:30:00.123456+01:00", "id": str(AFTER.id)}
    ties, later = [contact_row()], [contact_row() for _ in range(5)]
    requests = contacts_by_range(rest, {"locate": [located], "ties": ties, "later": later})

    page = store.read(UUID(USER), QUERY.model_copy(update={"offset": 5000})).page

    assert [r.url.params.multi_items()[-4:] for r in requests] == [
        [("status", "eq.completed"), ("order", "created_at.asc,id.asc"), ("limit", "1"),
         ("offset", "5000")],
        # From the located row itself (gte), in UTC whatever offset PostgREST gave it in.
        [("created_at", f"eq.{TIE}"), ("id", f"gte.{AFTER.id}"),
         ("order", "created_at.asc,id.asc"), ("limit", "3")],
        [("status", "eq.completed"), ("created_at", f"gt.{TIE}"),
         ("order", "created_at.asc,id.asc"), ("limit", "2")],
    ]
    assert requests[0].url.params["select"] == "created_at,id"
    assert [str(c.id) for c in page.contacts] == [ties[0]["id"], later[0]["id"]]
    assert page.has_more


def test_a_deep_offset_past_the_end_is_an_empty_page(
    rest: respx.MockRouter, store: SupabaseStore
) -> None:
    ok_answers(rest)
    requests = contacts_by_range(rest, {"locate": []})
    page = store.read(UUID(USER), QUERY.model_copy(update={"offset": 5000})).page
    assert (page.contacts, page.has_more, len(requests)) == ([], False, 1)


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
