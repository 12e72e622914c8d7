"""Trace context from either header, as Cloud Logging wants it."""

from __future__ import annotations

import pytest
from flask import Request, Response
from werkzeug.test import EnvironBuilder

from calls_batch_get.trace import TraceContext, http_request_field, trace_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TraceContext(TRACE, "00f067aa0ba902b7", True)),
        (f"00-{TRACE}-00f067aa0ba902b7-00", TraceContext(TRACE, "00f067aa0ba902b7", False)),
        # The flags are hex, and only their lowest bit says "sampled".
        (f"00-{TRACE}-00f067aa0ba902b7-0f", TraceContext(TRACE, "00f067aa0ba902b7", True)),
        (f"00-{TRACE}-00f067aa0ba902b7-10", TraceContext(TRACE, "00f067aa0ba902b7", False)),
        (f"00-{TRACE}-00f067aa0ba902b7-fe", TraceContext(TRACE, "00f067aa0ba902b7", False)),
        # A later version may add fields after the flags.
        (f"01-{TRACE}-00f067aa0ba902b7-03-extra", TraceContext(TRACE, "00f067aa0ba902b7", True)),
    ],
)
def test_traceparent(header: str, expected: TraceContext) -> None:
    assert trace_context(header, None) == expected


@pytest.mark.parametrize(
    "header",
    [
        f"ff-{TRACE}-00f067aa0ba902b7-01",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",
        f"00-{TRACE}-00f067aa0ba902b7-01-extra",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",
        "garbage",
    ],
)
def test_malformed_traceparent_is_ignored(header: str) -> None:
    assert trace_context(header, None) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{TRACE}/1;o=1", TraceContext(TRACE, "0000000000000001", True)),
        (f"{TRACE.upper()}/18446744073709551615;o=0",
         TraceContext(TRACE, "ffffffffffffffff", False)),
        (f"{TRACE}/0", TraceContext(TRACE, None, False)),
        (TRACE, TraceContext(TRACE, None, False)),
        # Past 64 bits the span is not a span id; the trace still groups the lines.
        (f"{TRACE}/18446744073709551616;o=1", TraceContext(TRACE, None, True)),
    ],
)
def test_x_cloud_trace_context(header: str, expected: TraceContext) -> None:
    assert trace_context(None, header) == expected


@pytest.mark.parametrize("header", [f"{'0' * 32}/1;o=1", "abc/1", f"{TRACE}/x", f"{TRACE};o=1;"])
def test_malformed_x_cloud_trace_context_is_ignored(header: str) -> None:
    assert trace_context(None, header) is None


def test_traceparent_wins_and_a_bad_one_falls_back() -> None:
    other = "0af7651916cd43dd8448eb211c80319c"
    good = f"00-{TRACE}-00f067aa0ba902b7-01"
    assert trace_context(good, f"{other}/5;o=1") == TraceContext(TRACE, "00f067aa0ba902b7", True)
    assert trace_context("bad", f"{other}/5;o=1") == TraceContext(other, "0000000000000005", True)


@pytest.mark.parametrize("protocol", ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"])
def test_the_request_log_names_the_protocol_it_came_by(protocol: str) -> None:
    request = Request(EnvironBuilder(path="/", environ_overrides={"SERVER_PROTOCOL": protocol})
                      .get_environ())
    field = http_request_field(request, Response("{}", status=200), 0.0123)
    assert field["protocol"] == protocol
    assert field["latency"] == "0.012300s"
    assert field["status"] == 200
