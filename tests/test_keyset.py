"""The key set cache on its own, against a real key service on loopback: who waits for a fetch,
who does not, and when it fetches again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from calls_batch_get.keyset import KeySetCache, KeySetUnavailable
from tests.database import poll
from tests.tokens import JWKS_PATH, KeySetServer, SigningKey

FETCH_TIMEOUT = 5.0


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.ec()


@pytest.fixture
def service(key: SigningKey) -> Iterator[KeySetServer]:
    server = KeySetServer(keys=[key.public_jwk()]).start()
    yield server
    server.stop()


def cache_of(service: KeySetServer, **overrides: float) -> KeySetCache:
    settings = {"lifespan": 300.0, "fetch_timeout": FETCH_TIMEOUT,
                "unknown_kid_cooldown": 30.0, **overrides}
    return KeySetCache(service.url + JWKS_PATH, backoff=(60.0, 600.0), **settings)


def test_a_request_during_the_first_fetch_waits_for_it(
    service: KeySetServer, key: SigningKey
) -> None:
    service.hanging = True
    cache = cache_of(service)
    cache.prefetch()
    assert poll(lambda: service.fetches == 1) is not None
    found: list[object] = []
    asking = threading.Thread(target=lambda: found.append(cache.key(key.kid)))
    asking.start()
    asking.join(0.3)
    assert asking.is_alive(), "the request should wait for the fetch under way"
    service.hanging = False
    asking.join(FETCH_TIMEOUT)
    assert [getattr(k, "key_id", None) for k in found] == [key.kid]
    assert cache.fetches == 1


def test_a_request_during_the_back_off_fails_at_once(service: KeySetServer) -> None:
    service.status = 500
    cache = cache_of(service)
    with pytest.raises(KeySetUnavailable):
        cache.key("any")
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="failed"):
        cache.key("any")
    # Not the fetch timeout's wait: nothing is fetching, and nothing may until the back-off ends.
    assert time.monotonic() - started < FETCH_TIMEOUT / 5
    assert service.fetches == 1


def test_a_fresh_set_answers_without_fetching_again(
    service: KeySetServer, key: SigningKey
) -> None:
    cache = cache_of(service)
    for _ in range(5):
        assert cache.key(key.kid) is not None
    assert cache.fetches == 1
    assert service.fetches == 1


def test_a_stale_set_answers_at_once_and_is_refreshed_behind(
    service: KeySetServer, key: SigningKey
) -> None:
    cache = cache_of(service, lifespan=0.0)
    assert cache.key(key.kid) is not None
    assert poll(lambda: not cache.fetching) is not None
    service.hanging = True  # the refresh hangs: the known key still answers
    started = time.monotonic()
    assert cache.key(key.kid) is not None
    assert time.monotonic() - started < FETCH_TIMEOUT / 5
    assert cache.fetches == 2
    service.hanging = False


def test_an_unknown_kid_refetches_once_per_cool_down(
    service: KeySetServer, key: SigningKey
) -> None:
    cache = cache_of(service)
    assert cache.key(key.kid) is not None
    for _ in range(3):
        assert cache.key("rotated-in-later") is None
    # The first unknown kid came within the cool-down of the first fetch: no refetch at all.
    assert cache.fetches == 1
    eager = cache_of(service, unknown_kid_cooldown=0.0)
    assert eager.key(key.kid) is not None
    assert eager.key("rotated-in-later") is None
    assert eager.fetches == 2


def test_a_key_set_larger_than_a_mebibyte_is_refused_even_if_it_is_one(
    service: KeySetServer, key: SigningKey
) -> None:
    # A project's key set is a few keys: one this large is not one, valid JSON or not.
    padding = " " * (1 << 20)  # the documented bound, not the constant: a mebibyte
    service.body = ('{"keys": [' + json.dumps(key.public_jwk()) + "]" + padding + "}").encode()
    cache = cache_of(service)
    with pytest.raises(KeySetUnavailable):
        cache.key(key.kid)
    # The same set, at its own size, is taken.
    service.body = json.dumps({"keys": [key.public_jwk()]}).encode()
    assert cache_of(service).key(key.kid) is not None
