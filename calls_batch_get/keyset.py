"""The project's signing keys (JWKS), fetched once per instance and kept fresh off the request path.

PyJWT's PyJWKClient fetches on the caller's thread while holding its lock, so with a hanging key
service concurrent requests queue behind each other, and after a failure every request fetches
again. Here one fetch at a time runs on a thread of its own; requests that need its result wait
for it at most the fetch timeout, all together. A failed fetch is remembered and not retried
before a back-off has passed; and once a set is known, a request whose key is in it is answered
from it at once, even while a refresh of an expired set runs, fails or hangs.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from time import monotonic

from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from calls_batch_get.deadline import Deadline
from calls_batch_get.log import LOGGER_NAME

_log = logging.getLogger(f"{LOGGER_NAME}.keyset")
# A project's key set is a few keys; anything much larger is not one.
MAX_KEY_SET_BYTES = 1 << 20
READ_CHUNK_BYTES = 4096


class KeySetUnavailable(Exception):
    """No key set could be had: the fetch failed, hung past its timeout, or is backing off."""


class KeySetCache:
    def __init__(
        self,
        url: str,
        *,
        lifespan: float,
        fetch_timeout: float,
        unknown_kid_cooldown: float,
        backoff: tuple[float, float],
    ) -> None:
        self._url = url
        self._lifespan = lifespan
        self._fetch_timeout = fetch_timeout
        self._cooldown = unknown_kid_cooldown
        self._backoff_first, self._backoff_max = backoff
        self._cond = threading.Condition()
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = 0.0
        self._fetching = False
        # Bumped when a fetch ends, well or not: what a waiting request waits for.
        self._generation = 0
        self._last_attempt: float | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.fetches = 0
        """How many fetches (first fetch and refreshes) have been started, for tests and logs."""

    @property
    def fetching(self) -> bool:
        return self._fetching

    def prefetch(self) -> None:
        """Starts the first fetch now, off any request's path (an instance's start), unless a
        set is known or a fetch is under way; bounded as every fetch is."""
        with self._cond:
            if self._keys is None:
                self._start_fetch(monotonic())

    def usable(self) -> bool:
        """Whether tokens can be verified now: a set is held (whatever its age: requests are
        answered from it), or the first fetch, started here unless one runs or the back-off
        forbids it, brought one in time. Never refetches a set it holds."""
        with self._cond:
            if self._keys is not None:
                return True
            return self._fetch_and_wait(monotonic()) and self._keys is not None

    def key(self, kid: str) -> PyJWK | None:
        """The key ``kid`` names; None when a readable set does not hold it (the token's fault).

        Raises KeySetUnavailable when no set is known and none could be fetched in time.
        """
        with self._cond:
            now = monotonic()
            if self._keys is not None and kid in self._keys:
                if now - self._fetched_at >= self._lifespan:
                    self._start_fetch(now)  # stale while revalidating: answered from it anyway
                return self._keys[kid]
            if self._keys is not None and not self._may_refetch_for_unknown_kid(now):
                return None
            if not self._fetch_and_wait(now):
                if self._keys is None:
                    raise KeySetUnavailable("the last key set fetch failed")
                return None
            if self._keys is None:
                raise KeySetUnavailable("no key set could be fetched in time")
            return self._keys.get(kid)

    def _fetch_and_wait(self, now: float) -> bool:
        """Starts a fetch unless one runs, and waits for the one under way, at most the fetch
        timeout (called holding the lock). False at once while backing off after a failure:
        there is no fetch to wait for."""
        if not self._start_fetch(now) and not self._fetching:
            return False
        generation = self._generation
        self._cond.wait_for(lambda: self._generation != generation, self._fetch_timeout)
        return True

    def _may_refetch_for_unknown_kid(self, now: float) -> bool:
        # A rotated key appears under a new kid; garbage kids must not hammer Auth meanwhile.
        return self._last_attempt is None or now - self._last_attempt >= self._cooldown

    def _start_fetch(self, now: float) -> bool:
        """Starts a fetch unless one runs or the back-off forbids it; True when started."""
        if self._fetching or now < self._retry_at:
            return False
        self._fetching = True
        self._last_attempt = now
        self.fetches += 1
        threading.Thread(target=self._fetch, name="jwks-fetch", daemon=True).start()
        return True

    def _fetch(self) -> None:
        keys: dict[str, PyJWK] | None = None
        try:
            keys = self._download()
        except Exception as error:  # whatever broke, the set stays as it was; the log says what
            _log.warning(
                "key set fetch failed", extra={"fields": {"cause": type(error).__name__}}
            )
        with self._cond:
            now = monotonic()
            if keys is not None:
                self._keys, self._fetched_at, self._failures, self._retry_at = keys, now, 0, 0.0
            else:
                backoff = min(self._backoff_max, self._backoff_first * 2**self._failures)
                self._failures += 1
                self._retry_at = now + backoff
            self._fetching = False
            self._generation += 1
            self._cond.notify_all()

    def _download(self) -> dict[str, PyJWK]:
        # urllib, as PyJWT's own client: the HTTP stack of the stores (httpx) stays theirs.
        # The URL is an http(s) one, checked by load_settings.
        accept = {"Accept": "application/json"}
        request = urllib.request.Request(self._url, headers=accept)  # noqa: S310
        deadline = Deadline(self._fetch_timeout)
        with urllib.request.urlopen(request, timeout=self._fetch_timeout) as response:  # noqa: S310
            # Read in pieces (whatever has arrived) against one deadline: a socket timeout alone
            # restarts with every byte, so a body sent a byte at a time would hold the one fetch
            # for ever. (Headers sent so cannot be bounded here; the requests waiting for the
            # fetch still are, by their own wait.)
            body = b""
            while chunk := response.read1(READ_CHUNK_BYTES):
                body += chunk
                if len(body) > MAX_KEY_SET_BYTES or not deadline.remaining():
                    raise PyJWKSetError("the key set is too large or too slow to arrive")
        try:
            key_set = PyJWKSet.from_dict(json.loads(body))
        except (PyJWKError, PyJWKSetError, ValueError, TypeError, AttributeError) as error:
            raise PyJWKSetError(f"unusable key set: {type(error).__name__}") from None
        keys = {key.key_id: key for key in key_set.keys if key.key_id}
        if not keys:
            raise PyJWKSetError("the key set has no key with a kid")
        return keys
