"""The flow of one request, top to bottom, in the order of DESIGN.md's checks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from uuid import UUID

from flask import Request, Response

from calls_batch_get import cursor
from calls_batch_get.auth import TokenVerifier, bearer_token
from calls_batch_get.cursor import Position
from calls_batch_get.errors import ApiError, ErrorCode
from calls_batch_get.health import HEALTH_PATH, HealthCheck
from calls_batch_get.http import (
    Cors,
    conditional,
    error_response,
    finish,
    json_response,
    preflight_response,
    request_id,
)
from calls_batch_get.lazy import Lazy
from calls_batch_get.log import severity
from calls_batch_get.models import BatchDetail, ContactPagination
from calls_batch_get.params import BatchQuery, parse_query
from calls_batch_get.store import BatchRead, Store
from calls_batch_get.trace import http_request_field, trace_fields


@dataclass
class _Outcome:
    """What the log line says about a request, filled in as the request goes."""

    user_id: UUID | None = None
    error: str | None = None
    code: ErrorCode | None = None
    cause: str | None = None


class Handler:
    def __init__(
        self,
        cors: Cors,
        verifier: Lazy[TokenVerifier],
        store: Lazy[Store],
        logger: logging.Logger,
        project: str | None = None,
    ) -> None:
        self._cors = cors
        self._verifier = verifier
        self._store = store
        self._logger = logger
        self._project = project
        # Its own parts only: the store's ping and the key set, neither built anew for it.
        self.health = HealthCheck(
            database=lambda: store.get().ping(),
            key_set=lambda: verifier.get().key_set.usable(),
        )

    def warm(self) -> None:
        """What the first request would otherwise wait for, done now: the key set's first fetch
        started and the store's first connection opened (each bounded; a failure is logged and
        left for that request to try again)."""
        self._verifier.get().key_set.prefetch()
        self._store.get().warm()

    def close(self) -> None:
        """Shuts down what the instance built (its pool above all), if it built it."""
        store = self._store.built()
        if store is not None:
            store.close()

    def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        rid = request_id(request.headers.get("X-Request-Id"))
        outcome = _Outcome()
        try:
            response = self._respond(request, outcome)
        except ApiError as error:
            outcome.error, outcome.code = error.message, error.code
            outcome.cause = _cause(error)
            response = error_response(error)
        except Exception as error:  # the caller gets a fixed 500; the log, the type
            fixed = ApiError("Internal server error")
            outcome.error, outcome.code = fixed.message, fixed.code
            outcome.cause = type(error).__name__
            response = error_response(fixed)
        finish(response, rid, self._cors.headers(request.headers.get("Origin")))
        self._log(request, response, rid, outcome, time.perf_counter() - started)
        return response

    def _respond(self, request: Request, outcome: _Outcome) -> Response:
        if request.method == "OPTIONS":
            return preflight_response()
        if request.method != "GET":
            raise ApiError("Method not allowed", status=405, code=ErrorCode.METHOD_NOT_ALLOWED)
        if request.path == HEALTH_PATH:
            report = self.health.report()
            outcome.error = report.error
            return report.response()
        token = bearer_token(request.headers.get("Authorization"))
        caller = self._verifier.get().verify(token)
        outcome.user_id = caller.user_id
        query = parse_query(request.args)
        read = self._store.get().read(caller, query)
        if read.agency_id is None:
            raise ApiError(
                "User is not associated with an agency", status=403, code=ErrorCode.NO_AGENCY
            )
        if read.batch is None:
            raise ApiError("Batch not found", status=404, code=ErrorCode.BATCH_NOT_FOUND)
        return conditional(
            json_response(200, _detail(read, query).model_dump_json()), request.if_none_match
        )

    def _log(
        self, request: Request, response: Response, rid: str, outcome: _Outcome, seconds: float
    ) -> None:
        fields: dict[str, object] = {
            "method": request.method,
            "status": response.status_code,
            "latency_ms": round(seconds * 1000, 2),
            "request_id": rid,
            "user_id": str(outcome.user_id) if outcome.user_id else None,
        }
        if outcome.error is not None:
            fields["error"] = outcome.error
        if outcome.code is not None:
            # What a log-based metric counts the errors by: the answer's own code.
            fields["code"] = outcome.code.value
        if outcome.cause is not None:
            fields["cause"] = outcome.cause
        fields["httpRequest"] = http_request_field(request, response, seconds)
        fields.update(trace_fields(request, self._project))
        self._logger.log(
            severity(response.status_code),
            "%s %s",
            request.method,
            response.status_code,
            extra={"fields": fields},
        )


def _detail(read: BatchRead, query: BatchQuery) -> BatchDetail:
    assert read.batch is not None
    page = read.page
    next_cursor = None
    if page.has_more:  # so the page holds at least one contact
        last = page.contacts[-1]
        next_cursor = cursor.encode(
            query.batch_id,
            query.contact_status,
            Position(last.created_at, last.id, tie_follows=page.tie_follows),
        )
    return BatchDetail(
        batch=read.batch,
        contacts=page.contacts,
        contact_pagination=ContactPagination(
            total=page.total,
            limit=query.limit,
            offset=None if query.after is not None else query.offset,
            next_cursor=next_cursor,
            has_more=page.has_more,
        ),
    )


def _cause(error: ApiError) -> str | None:
    """The class of what went wrong underneath, for the log; its text may hold data, so not that."""
    cause = error.__cause__
    return None if cause is None else f"{type(cause).__module__}.{type(cause).__name__}"
