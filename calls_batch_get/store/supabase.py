"""The read through supabase-py: one GET of the read function over PostgREST, as the caller.

The client holds only the project's anon (publishable) key; each request carries the caller's
own access token, so PostgREST runs the read as that user, under row-level security. The key
alone reads nothing: the policies admit only ``authenticated``.

The client is supabase-py's own PostgREST client (``postgrest``, what ``supabase.Client.rpc``
calls), made with the headers ``create_client`` gives it: the rest of supabase-py (Auth,
Storage, Realtime, Functions) is never used here, and importing it would cost every cold start
a tenth of a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
from postgrest import SyncPostgrestClient
from pydantic import BaseModel, ValidationError

from calls_batch_get.auth import AuthError, Caller
from calls_batch_get.deadline import Deadline
from calls_batch_get.errors import ErrorCode
from calls_batch_get.log import LOGGER_NAME
from calls_batch_get.models import rfc3339
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import READ_FUNCTION, BatchRead, StoreError, parse_read

FETCH_FAILED = "Failed to fetch batch"
# PostgREST's answer to a token whose exp has passed (its errors reference, "JWT errors"); the
# same code also covers other claims it finds invalid (an iat in the future, ...).
JWT_CLAIMS_INVALID = "PGRST303"
JWT_EXPIRED = "JWT expired"

_log = logging.getLogger(LOGGER_NAME)


class _RemainingTimeouts(dict[str, float]):
    """httpcore reads each phase's timeout (pool, connect, write, read) when that phase starts;
    this mapping answers with what is left of one deadline at that moment."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def get(self, key: str, default: Any = None) -> float:
        return self._deadline.remaining()


class _DeadlineStream(httpx.SyncByteStream):
    """A body read against the same deadline: a server that trickles bytes (each one inside the
    read timeout) still fails the read once the deadline has passed."""

    def __init__(self, stream: httpx.SyncByteStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if not self._deadline.remaining():
                raise httpx.ReadTimeout("the read's deadline passed during the body")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx counts its timeouts per phase and per socket read; here a request as a whole gets
    one deadline, set when it starts."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self._timeout_seconds = timeout_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = Deadline(self._timeout_seconds)
        request.extensions["timeout"] = _RemainingTimeouts(deadline)
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _DeadlineStream(response.stream, deadline)
        return response


def create_supabase_store(url: str, key: str, timeout_seconds: float) -> SupabaseStore:
    """The store of an instance: a client holding the project's anon or publishable ``key`` (as
    supabase-py's ``create_client(url, key).postgrest`` would), whose transport bounds each
    request by ``timeout_seconds`` as a whole."""
    transport = _DeadlineTransport(timeout_seconds)
    client = SyncPostgrestClient(
        f"{url.rstrip('/')}/rest/v1",
        headers={"apiKey": key, "Authorization": f"Bearer {key}"},
        # One connection pool for the instance; supabase-py's own default timeout is 120 s.
        http_client=httpx.Client(timeout=timeout_seconds, transport=transport),
        # Its retries sleep 1, 2, 4... seconds on a 503/520 or a dropped connection: far past
        # what a person watching a screen waits for. A failed read is a 500 they can retry.
        retry_enabled=False,
    )
    return SupabaseStore(client, transport)


class _PostgrestError(BaseModel):
    code: str | None = None
    message: str | None = None


class TokenRefused(Exception):
    """PostgREST answered 401 or 403 to a token the function had accepted."""


def rpc_params(query: BatchQuery) -> dict[str, str]:
    """The read function's arguments as a GET sends them; defaults are left out."""
    params = {"batch_id": str(query.batch_id), "contact_limit": str(query.limit)}
    if query.contact_status is not None:
        params["contact_status"] = query.contact_status.value
    if query.after is not None:
        params["after_created_at"] = rfc3339(query.after.created_at)
        params["after_id"] = str(query.after.id)
    elif query.offset:
        params["contact_offset"] = str(query.offset)
    return params


class SupabaseStore:
    """The read over PostgREST: each request built by supabase-py's PostgREST ``client`` and
    sent on ``transport``, the client's own (``create_supabase_store`` makes the two)."""

    def __init__(self, client: SyncPostgrestClient, transport: httpx.BaseTransport) -> None:
        self.client = client
        self._transport = transport

    def warm(self) -> None:
        """Opens the client's first connection to PostgREST (a HEAD of the API's root, whatever
        it answers), so that the first read does not pay for it; bounded by the client's
        timeout. A failure is only logged: the first read tries again."""
        try:
            self._head_of_the_root()
        except httpx.HTTPError as error:
            _log.warning(
                "could not open a connection to PostgREST ahead of the first request",
                extra={"fields": {"cause": type(error).__name__}},
            )

    def ping(self) -> bool:
        """Whether PostgREST answers the warm-up's HEAD of the API's root (the key alone, no
        user's token) with anything but a server error: PostgREST answers 503 while it cannot
        reach the database, the gateway 502 or 504 while PostgREST is down. Bounded by the
        client's timeout."""
        try:
            response = self._head_of_the_root()
        except httpx.HTTPError:
            return False
        return response.status_code < httpx.codes.INTERNAL_SERVER_ERROR

    def _head_of_the_root(self) -> httpx.Response:
        """A HEAD of the API's root with the key alone, on the client's connections."""
        return self.client.session.head(f"{self.client.base_url}/", headers=self.client.headers)

    def close(self) -> None:
        # The HTTP connections belong to the client, which lives as long as the instance.
        pass

    def read(self, caller: Caller, query: BatchQuery) -> BatchRead:
        # By GET: the function is stable, and read replicas answer only GETs of the REST API.
        built = self.client.rpc(READ_FUNCTION, rpc_params(query), get=True).request
        # On this request's own headers (a copy of the client's): the client, shared by every
        # thread, keeps only the anon key.
        built.headers["Authorization"] = f"Bearer {caller.token}"
        request = httpx.Request(
            built.http_method, httpx.URL(str(built.path), params=built.params),
            headers=built.headers,
        )
        try:
            # Sent as built, on the client's transport: the API sets no cookies, follows no
            # redirects and asks for no auth flow, and httpx's client would spend a sixth of a
            # request's CPU on them. The body is validated as the text it is, as the direct
            # store validates the same function's text (postgrest-py's execute() would parse it
            # into Python objects first).
            response = self._transport.handle_request(request)
            response.request = request
            try:
                body = response.read()
            finally:
                response.close()
            if response.status_code == httpx.codes.OK:
                return parse_read(body, query)
        except (httpx.HTTPError, ValidationError) as error:
            raise StoreError(FETCH_FAILED) from error
        raise _refusal(response)


def _refusal(response: httpx.Response) -> AuthError | StoreError:
    """What a non-200 answer becomes. A token PostgREST finds expired is expired for the
    database too: 401 token_expired, and the client refreshes its session (the function
    allows a little clock skew that PostgREST may not). Any other refusal of a token the
    function verified means the two disagree about the project's keys: the caller's fault it is
    not, so a 500, and the log names the cause."""
    try:
        body = _PostgrestError.model_validate_json(response.content)
    except ValidationError:
        body = _PostgrestError()
    code = body.code
    if response.status_code == httpx.codes.UNAUTHORIZED and (code, body.message) == (
        JWT_CLAIMS_INVALID,
        JWT_EXPIRED,
    ):
        return AuthError("Token has expired", code=ErrorCode.TOKEN_EXPIRED)
    error = StoreError(FETCH_FAILED)
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        error.__cause__ = TokenRefused(f"PostgREST answered {response.status_code} {code}")
    else:
        error.__cause__ = httpx.HTTPStatusError(
            f"PostgREST answered {response.status_code} {code}",
            request=response.request,
            response=response,
        )
    return error
