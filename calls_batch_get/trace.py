"""What Cloud Logging needs to file a log line under its request: the trace and span the
request arrived with, and the ``httpRequest`` summary shown in the log viewer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Request, Response

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"

# W3C Trace Context: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
# Google's older header: TRACE_ID/SPAN_ID;o=OPTIONS, the span id in decimal.
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([0-9]+))?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_SPAN = 2**64 - 1


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str | None
    sampled: bool


def _from_traceparent(header: str) -> TraceContext | None:
    match = _TRACEPARENT.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    # Version ff is forbidden; version 00 has nothing after the flags.
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def _from_cloud_trace(header: str) -> TraceContext | None:
    match = _CLOUD_TRACE.fullmatch(header.strip())
    if match is None or match.group(1) == _ZERO_TRACE:
        return None
    trace_id, span, options = match.groups()
    span_number = int(span) if span else 0
    # Cloud Logging wants the span as 16 hex digits; 0 means "no span".
    span_id = f"{span_number:016x}" if 0 < span_number <= _MAX_SPAN else None
    return TraceContext(trace_id.lower(), span_id, options == "1")


def trace_context(traceparent: str | None, cloud_trace: str | None) -> TraceContext | None:
    """The W3C header wins: it is what current Google front ends and browsers send."""
    if traceparent:
        parsed = _from_traceparent(traceparent)
        if parsed is not None:
            return parsed
    return _from_cloud_trace(cloud_trace) if cloud_trace else None


def trace_fields(request: Request, project: str | None) -> dict[str, object]:
    """Cloud Logging's trace fields; none without a project, as the trace name needs one."""
    context = trace_context(
        request.headers.get("traceparent"), request.headers.get("X-Cloud-Trace-Context")
    )
    if project is None or context is None:
        return {}
    fields: dict[str, object] = {
        TRACE_FIELD: f"projects/{project}/traces/{context.trace_id}",
        SAMPLED_FIELD: context.sampled,
    }
    if context.span_id is not None:
        fields[SPAN_FIELD] = context.span_id
    return fields


def http_request_field(request: Request, response: Response, seconds: float) -> dict[str, object]:
    """Cloud Logging's ``httpRequest``. The URL is the path alone: a query string is the
    caller's, and need not end up in logs kept for months."""
    field: dict[str, object] = {
        "requestMethod": request.method,
        "requestUrl": request.path,
        "status": response.status_code,
        "latency": f"{seconds:.6f}s",
        "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
    }
    if response.content_length is not None:
        field["responseSize"] = str(response.content_length)
    user_agent = request.headers.get("User-Agent")
    if user_agent:
        field["userAgent"] = user_agent
    return field
