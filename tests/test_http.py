from __future__ import annotations

import uuid

import pytest

from calls_batch_get.http import Cors, request_id


def test_request_id_kept_when_sane() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"


@pytest.mark.parametrize("sent", [None, "", "a b", "x" * 129, "id\r\nSet-Cookie: a=b", "-lead"])
def test_request_id_replaced_when_absent_or_odd(sent: str | None) -> None:
    rid = request_id(sent)
    assert rid != sent
    assert uuid.UUID(rid).version == 4


def test_cors_any_origin() -> None:
    headers = Cors(("*",)).headers("https://evil.example")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Expose-Headers"] == "X-Request-Id, ETag"
    assert "Vary" not in headers


def test_cors_list_echoes_a_listed_origin() -> None:
    cors = Cors(("https://app.example.com", "https://admin.example.com"))
    headers = cors.headers("https://admin.example.com")
    assert headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert headers["Vary"] == "Origin"


def test_cors_list_echoes_a_listed_origin_sent_with_a_trailing_slash() -> None:
    # Browsers send none; some proxies and hand-written clients do.
    headers = Cors(("https://app.example.com",)).headers("https://app.example.com/")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com/"


@pytest.mark.parametrize("origin", [None, "https://evil.example", "https://app.example.com.evil"])
def test_cors_list_refuses_other_origins(origin: str | None) -> None:
    headers = Cors(("https://app.example.com",)).headers(origin)
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == "Origin"
