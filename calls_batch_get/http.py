"""JSON responses and the headers every response carries: CORS, request id, no caching."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

from flask import Response
from werkzeug.datastructures import ETags

from calls_batch_get.errors import ApiError

ALLOWED_METHODS = "GET, OPTIONS"
# Supabase's client headers plus our request id, the trace context browsers may send, and the
# ETag a polling page sends back.
ALLOWED_HEADERS = (
    "authorization, x-client-info, apikey, content-type, x-request-id, "
    "traceparent, tracestate, baggage, if-none-match"
)
# A page quotes the request id in a bug report and keeps the ETag for its next poll.
EXPOSED_HEADERS = "X-Request-Id, ETag"
PREFLIGHT_MAX_AGE_SECONDS = "3600"
# What we accept back as a caller's request id: enough for UUIDs, ULIDs and trace ids,
# nothing that could forge a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id(sent: str | None) -> str:
    if sent is not None and _SANE_REQUEST_ID.fullmatch(sent):
        return sent
    return str(uuid.uuid4())


class Cors:
    def __init__(self, allowed_origins: tuple[str, ...]) -> None:
        self._any = allowed_origins == ("*",)
        self._allowed = frozenset(allowed_origins)

    def headers(self, origin: str | None) -> dict[str, str]:
        headers = {"Access-Control-Expose-Headers": EXPOSED_HEADERS}
        if self._any:
            headers["Access-Control-Allow-Origin"] = "*"
            return headers
        # The answer depends on Origin, so caches between us and browsers must key on it.
        headers["Vary"] = "Origin"
        if origin is not None and origin.rstrip("/") in self._allowed:
            headers["Access-Control-Allow-Origin"] = origin
        return headers


JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def json_response(status: int, body: str) -> Response:
    return Response(body, status=status, content_type=JSON_CONTENT_TYPE)


def error_response(error: ApiError) -> Response:
    response = json_response(error.status, error.body().model_dump_json())
    response.headers.update(error.headers())
    if error.status == 405:
        response.headers["Allow"] = ALLOWED_METHODS
    return response


def strong_etag(body: bytes) -> str:
    """A strong validator of exactly these bytes: two bodies share it only if they are equal."""
    digest = hashlib.sha256(body).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def conditional(response: Response, if_none_match: ETags) -> Response:
    """Tags a 200 and answers 304 instead when the caller already holds that body: If-None-Match
    uses the weak comparison (RFC 9110 §13.1.2), so a W/ tag matches, and so does '*'."""
    etag = strong_etag(response.get_data())
    if if_none_match.contains_weak(etag.strip('"')):
        response = _empty(304)
    response.headers["ETag"] = etag
    return response


def _empty(status: int) -> Response:
    response = Response(status=status)
    # Flask gives every response a text/html type; an empty answer has no body to describe.
    del response.headers["Content-Type"]
    return response


def preflight_response() -> Response:
    response = _empty(204)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_SECONDS
    return response


def finish(response: Response, request_id: str, cors_headers: dict[str, str]) -> Response:
    response.headers.update(cors_headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Request-Id"] = request_id
    # A browser must never guess another type for a body (an error echoing input, say).
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
