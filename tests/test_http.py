from __future__ import annotations

import uuid

import pytest
from flask import Response
from werkzeug.datastructures import ETags

from calls_batch_get.http import Cors, conditional, request_id


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


def test_a_held_body_is_a_304_whatever_its_etag_begins_with() -> None:
    # The tag's quotes come off for the comparison, and nothing of the tag itself with them:
    # walk bodies until tags beginning with each of the 64 base64url characters were compared.
    seen: set[str] = set()
    for n in range(5_000):
        body = f'{{"n": {n}}}'.encode()
        tag = conditional(Response(body), ETags()).headers["ETag"]
        held = ETags(strong_etags=[tag.strip('"')])
        answer = conditional(Response(body), held)
        assert (answer.status_code, answer.get_data(), answer.headers["ETag"]) == (304, b"", tag)
        assert "Content-Type" not in answer.headers
        seen.add(tag[1])
        if len(seen) == 64:
            break
    assert len(seen) == 64
