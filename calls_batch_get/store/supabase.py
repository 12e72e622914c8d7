"""The three reads through supabase-py (PostgREST), sent concurrently."""

from __future__ import annotations

from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TypeVar
from uuid import UUID

import httpx
from postgrest import APIError, CountMethod, SyncSelectRequestBuilder
from pydantic import BaseModel, ValidationError
from supabase import Client, ClientOptions, create_client

from calls_batch_get.deadline import Deadline
from calls_batch_get.models import BATCH_COLUMNS, CONTACT_COLUMNS, Batch, Contact
from calls_batch_get.params import BatchQuery
from calls_batch_get.settings import DEFAULT_DB_TIMEOUT_SECONDS
from calls_batch_get.store import BatchRead, ContactsPage, StoreError

T = TypeVar("T")

# PostgREST's answer to a counted request whose offset is past the last row.
RANGE_NOT_SATISFIABLE = "PGRST103"
# Three reads per request; enough threads for Cloud Run's default concurrency of a gen2 function.
MAX_THREADS = 64
# What a read can fail with: PostgREST errors (also non-JSON ones, which postgrest-py wraps),
# transport errors and timeouts, and rows that do not fit the response models.
_READ_ERRORS = (APIError, httpx.HTTPError, ValidationError, ValueError, TypeError, KeyError)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx counts its timeouts per phase (pool, connect, write, and each read); here every
    phase of a request gets only what is left of one deadline set when the request starts."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self._timeout_seconds = timeout_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = Deadline(self._timeout_seconds)
        request.extensions["timeout"] = dict.fromkeys(
            ("pool", "connect", "write", "read"), deadline.remaining()
        )
        return super().handle_request(request)


def create_supabase_client(url: str, key: str, timeout_seconds: float) -> Client:
    return create_client(
        url,
        key,
        options=ClientOptions(
            # One connection pool for the instance; supabase-py's own default timeout is 120 s.
            httpx_client=httpx.Client(
                timeout=timeout_seconds, transport=_DeadlineTransport(timeout_seconds)
            ),
            # Its retries sleep 1, 2, 4... seconds on a 503/520 or a dropped connection: far past
            # what a person watching a screen waits for. A failed read is a 500 they can retry.
            postgrest_client_retry=False,
            # A server-side key has no session to refresh or keep.
            auto_refresh_token=False,
            persist_session=False,
        ),
    )


class SupabaseStore:
    """The three reads over PostgREST. ``timeout_seconds`` bounds a read as a whole: past it the
    request fails, whatever its HTTP calls are still waiting for."""

    def __init__(
        self,
        client: Client,
        threads: ThreadPoolExecutor | None = None,
        timeout_seconds: float = DEFAULT_DB_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._timeout_seconds = timeout_seconds
        self._threads = threads or ThreadPoolExecutor(
            max_workers=MAX_THREADS, thread_name_prefix="supabase-read"
        )

    def close(self) -> None:
        # Reads still running end by their own deadline; nothing new starts.
        self._threads.shutdown(wait=False, cancel_futures=True)

    def read(self, user_id: UUID, query: BatchQuery) -> BatchRead:
        # All three go out at once; what the caller may see is decided only when they are back.
        agency = self._threads.submit(self._agency_of, user_id)
        batch = self._threads.submit(self._batch, query.batch_id)
        page = self._threads.submit(self._contacts, query)
        deadline = Deadline(self._timeout_seconds)
        try:
            agency_id = _result(agency, "Failed to fetch user", deadline)
            if agency_id is None:
                return BatchRead(agency_id=None)
            found = _result(batch, "Failed to fetch batch", deadline)
            if found is None or found.agency_id != agency_id:
                return BatchRead(agency_id=agency_id)
            contacts = _result(page, "Failed to fetch contacts", deadline)
            return BatchRead(agency_id=agency_id, batch=found, page=contacts)
        finally:
            for future in (agency, batch, page):
                future.cancel()  # those not started yet (threads all busy) never will be

    def _agency_of(self, user_id: UUID) -> UUID | None:
        rows = _rows(
            self._client.table("users")
            .select("agency_id")
            .eq("id", str(user_id))
            .limit(1)
            .execute()
            .data
        )
        return _UserRow.model_validate(rows[0]).agency_id if rows else None

    def _batch(self, batch_id: UUID) -> Batch | None:
        rows = _rows(
            self._client.table("v_call_batch_summary")
            .select(",".join(BATCH_COLUMNS))
            .eq("id", str(batch_id))
            .limit(1)
            .execute()
            .data
        )
        return Batch.model_validate(rows[0]) if rows else None

    def _contacts(self, query: BatchQuery) -> ContactsPage:
        request = self._matching_contacts(query, ",".join(CONTACT_COLUMNS))
        try:
            response = (
                request.order("created_at").order("id").limit(query.limit).offset(query.offset)
            ).execute()
        except APIError as error:
            if error.code != RANGE_NOT_SATISFIABLE:
                raise
            # postgrest-py drops the 416's Content-Range, so the total is asked for on its own.
            total = self._matching_contacts(query, "id", head=True).execute().count
            return ContactsPage(contacts=[], total=_count_of(total))
        return ContactsPage(
            contacts=[Contact.model_validate(row) for row in _rows(response.data)],
            total=_count_of(response.count),
        )

    def _matching_contacts(
        self, query: BatchQuery, columns: str, *, head: bool = False
    ) -> SyncSelectRequestBuilder:
        request = (
            self._client.table("campaign_contacts")
            .select(columns, count=CountMethod.exact, head=head)
            .eq("batch_id", str(query.batch_id))
        )
        if query.contact_status is not None:
            request = request.eq("status", query.contact_status.value)
        return request


class _UserRow(BaseModel):
    agency_id: UUID | None


def _rows(data: object) -> list[object]:
    # postgrest-py hands over a body that is not JSON as a plain string instead of failing.
    if not isinstance(data, list):
        raise TypeError("PostgREST answered without a list of rows")
    return data


def _count_of(count: int | None) -> int:
    if count is None:
        raise ValueError("PostgREST answered without a count")
    return count


def _result(future: Future[T], failure: str, deadline: Deadline) -> T:
    try:
        return future.result(timeout=deadline.remaining())
    except (*_READ_ERRORS, TimeoutError, CancelledError) as error:
        raise StoreError(failure) from error
