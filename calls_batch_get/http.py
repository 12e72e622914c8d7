"""JSON responses and the headers every response carries: CORS, request id, no caching."""

from __future__ import annotations

import json
import re
import uuid

from flask import Response

ALLOWED_METHODS = "GET, OPTIONS"
# Supabase's client headers plus our request id and the trace context browsers may send.
ALLOWED_HEADERS = (
    "authorization, x-client-info, apikey, content-type, x-request-id, "
    "traceparent, tracestate, baggage"
)
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
        headers = {"Access-Control-Expose-Headers": "X-Request-Id"}
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


def error_response(status: int, message: str) -> Response:
    response = json_response(status, json.dumps({"error": message}, separators=(",", ":")))
    if status == 405:
        response.headers["Allow"] = ALLOWED_METHODS
    return response


def preflight_response() -> Response:
    response = Response(status=204)
    # Flask gives every response a text/html type; an empty 204 has no body to describe.
    del response.headers["Content-Type"]
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
