"""The three reads through supabase-py (PostgREST), sent concurrently."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TypeVar
from uuid import UUID

import httpx
from postgrest import APIError, SyncSelectRequestBuilder
from pydantic import BaseModel, ValidationError
from supabase import Client, ClientOptions, create_client

from calls_batch_get.cursor import Position
from calls_batch_get.deadline import Deadline
from calls_batch_get.models import (
    BATCH_COLUMNS,
    CONTACT_COLUMNS,
    Batch,
    Contact,
    UtcDatetime,
    rfc3339,
)
from calls_batch_get.params import BatchQuery
from calls_batch_get.settings import DEFAULT_DB_TIMEOUT_SECONDS
from calls_batch_get.store import BatchRead, ContactsPage, StoreError

T = TypeVar("T")

# Up to this offset, PostgreSQL skipping rows costs less than a second round trip to find where
# the page starts; past it, a page is found on the index first (see _deep_page).
MAX_PLAIN_OFFSET = 1000
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
    """The reads over PostgREST. ``timeout_seconds`` bounds a read as a whole: past it the
    request fails, whatever its HTTP calls are still waiting for."""

    # Where a batch and its counters are read.
    BATCH_SOURCE = "v_call_batch_summary"

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
        # All reads go out at once; what the caller may see is decided only when they are back.
        agency = self._threads.submit(self._agency_of, user_id)
        batch = self._threads.submit(self._batch, query.batch_id)
        pages: list[Future[list[Contact]]] = [
            self._threads.submit(part) for part in self._page_reads(query)
        ]
        deadline = Deadline(self._timeout_seconds)
        try:
            agency_id = _result(agency, "Failed to fetch user", deadline)
            if agency_id is None:
                return BatchRead(agency_id=None)
            found = _result(batch, "Failed to fetch batch", deadline)
            if found is None or found.agency_id != agency_id:
                return BatchRead(agency_id=agency_id)
            # One page, possibly read in two ranges: their rows in order, limit + 1 of them kept.
            contacts = [
                contact
                for page in pages
                for contact in _result(page, "Failed to fetch contacts", deadline)
            ]
            return BatchRead(
                agency_id=agency_id,
                batch=found,
                # The total is the batch's own counter: no second count of its contacts.
                page=ContactsPage.of(
                    contacts, query.limit, found.contacts_with(query.contact_status)
                ),
            )
        finally:
            # Those not started yet (threads all busy) never will be.
            agency.cancel()
            batch.cancel()
            for page in pages:
                page.cancel()

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
            self._client.table(self.BATCH_SOURCE)
            .select(",".join(BATCH_COLUMNS))
            .eq("id", str(batch_id))
            .limit(1)
            .execute()
            .data
        )
        return Batch.model_validate(rows[0]) if rows else None

    def _page_reads(self, query: BatchQuery) -> list[Callable[[], list[Contact]]]:
        """The reads of one page of ``limit + 1`` contacts (the extra one says whether more
        follow), each an index range; their rows, concatenated, are the page in order."""
        wanted = query.limit + 1
        if query.after is not None:
            after = query.after
            if after.tie_follows:
                # Inside an upload: the rest of its tie most likely fills the page by itself.
                return [lambda: self._from(query, after, wanted, inclusive=False)]
            return [
                lambda: self._ties(query, after, wanted, inclusive=False),
                lambda: self._later(query, after, wanted),
            ]
        if query.offset <= MAX_PLAIN_OFFSET:
            return [lambda: self._range(query, wanted, offset=query.offset)]
        return [lambda: self._deep_page(query, wanted)]

    def _ties(
        self, query: BatchQuery, after: Position, limit: int, *, inclusive: bool
    ) -> list[Contact]:
        # The contacts sharing the position's created_at (an upload's rows all do), past its id.
        return self._range(
            query,
            limit,
            ("created_at", "eq", rfc3339(after.created_at)),
            ("id", "gte" if inclusive else "gt", str(after.id)),
        )

    def _later(self, query: BatchQuery, after: Position, limit: int) -> list[Contact]:
        return self._range(query, limit, ("created_at", "gt", rfc3339(after.created_at)))

    def _deep_page(self, query: BatchQuery, limit: int) -> list[Contact]:
        """A deep offset: the offset's row is found on the index alone (two columns, one row),
        then the page is read from it like a cursor's, instead of PostgreSQL fetching every
        skipped row from the table."""
        located = _rows(
            self._matching_contacts(query, "created_at,id")
            .order("created_at")
            .order("id")
            .limit(1)
            .offset(query.offset)
            .execute()
            .data
        )
        if not located:
            return []
        start = _Located.model_validate(located[0])
        return self._from(query, Position(start.created_at, start.id), limit, inclusive=True)

    def _from(
        self, query: BatchQuery, position: Position, limit: int, *, inclusive: bool
    ) -> list[Contact]:
        """The rest of the position's tie, then, only if that is short of ``limit``, what
        follows it: one round trip when the tie fills the page, two when it does not."""
        ties = self._ties(query, position, limit, inclusive=inclusive)
        if len(ties) >= limit:
            return ties
        return ties + self._later(query, position, limit - len(ties))

    def _range(
        self, query: BatchQuery, limit: int, *filters: tuple[str, str, str], offset: int = 0
    ) -> list[Contact]:
        request = self._matching_contacts(query, ",".join(CONTACT_COLUMNS))
        for column, operator, value in filters:
            request = request.filter(column, operator, value)
        request = request.order("created_at").order("id").limit(limit)
        if offset:
            request = request.offset(offset)
        return [Contact.model_validate(row) for row in _rows(request.execute().data)]

    def _matching_contacts(self, query: BatchQuery, columns: str) -> SyncSelectRequestBuilder:
        request = (
            self._client.table("campaign_contacts")
            .select(columns)
            .eq("batch_id", str(query.batch_id))
        )
        if query.contact_status is not None:
            request = request.eq("status", query.contact_status.value)
        return request


class _UserRow(BaseModel):
    agency_id: UUID | None


class _Located(BaseModel):
    created_at: UtcDatetime
    id: UUID


def _rows(data: object) -> list[object]:
    # postgrest-py hands over a body that is not JSON as a plain string instead of failing.
    if not isinstance(data, list):
        raise TypeError("PostgREST answered without a list of rows")
    return data


def _result(future: Future[T], failure: str, deadline: Deadline) -> T:
    try:
        return future.result(timeout=deadline.remaining())
    except (*_READ_ERRORS, TimeoutError, CancelledError) as error:
        raise StoreError(failure) from error
