"""Checks a deployed calls-batch-get end to end, as a browser and a client library use it.

    .venv/bin/python scripts/smoke.py [--origin ORIGIN] URL TOKEN BATCH_ID

URL is the service's (``gcloud run services describe calls-batch-get --region=$REGION
--format='value(status.url)'``), TOKEN a user's Supabase access token, BATCH_ID a batch of that
user's agency, ORIGIN the origin of the page that calls the function (``https://app.example.com``).
Checks the health check, the CORS preflight, a 401 with its code and challenge, the 200's shape
(validated by the response models) and headers, and a 304 for the ETag just received; with
--origin every answer must carry the ``Access-Control-Allow-Origin`` a browser on that origin
needs. Prints one line per check; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

# Run as a file (python scripts/smoke.py), the repository root is not on the path by itself.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from calls_batch_get.errors import ErrorBody  # noqa: E402
from calls_batch_get.health import HEALTH_PATH, HealthBody, Part  # noqa: E402
from calls_batch_get.http import EXPOSED_HEADERS  # noqa: E402
from calls_batch_get.models import BatchDetail  # noqa: E402

# The preflight's origin when none is given: only the preflight's own rules are checked then.
ORIGIN = "https://smoke-test.example"
TIMEOUT_SECONDS = 30.0


class SmokeFailure(Exception):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeFailure(what)


def expect_status(response: httpx.Response, status: int) -> None:
    expect(
        response.status_code == status,
        f"expected {status}, got {response.status_code}: {response.text[:300]}",
    )


def origin_argument(value: str) -> str:
    """An origin as a browser sends it: scheme, host and port, nothing after."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or value != (
        f"{parts.scheme}://{parts.netloc}"
    ):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an origin (scheme://host[:port], no path or trailing slash)"
        )
    return value


class Smoke:
    def __init__(
        self, client: httpx.Client, url: str, token: str, batch_id: str, origin: str | None = None
    ) -> None:
        self.client, self.url, self.token, self.batch_id = client, url, token, batch_id
        self.origin = origin
        self.etag = ""

    def get(self, **headers: str) -> httpx.Response:
        if self.origin is not None:
            headers["Origin"] = self.origin
        return self.client.get(self.url, params={"batch_id": self.batch_id}, headers=headers)

    def expect_allowed_origin(self, response: httpx.Response) -> None:
        """With --origin, what a browser on it needs to read the answer at all."""
        if self.origin is None:
            return
        allowed = response.headers.get("Access-Control-Allow-Origin")
        expect(
            allowed in ("*", self.origin),
            f"Access-Control-Allow-Origin is {allowed!r}, not {self.origin!r} or '*': a browser"
            f" on {self.origin} is refused (CORS_ALLOW_ORIGINS must list it)",
        )

    def expect_common_headers(self, response: httpx.Response) -> None:
        expect(
            response.headers.get("Cache-Control") == "no-store", "Cache-Control is not no-store"
        )
        expect(bool(response.headers.get("X-Request-Id")), "no X-Request-Id")
        exposed = response.headers.get("Access-Control-Expose-Headers")
        expect(exposed == EXPOSED_HEADERS, f"Access-Control-Expose-Headers is {exposed!r}")
        self.expect_allowed_origin(response)

    def health(self) -> str:
        headers = {} if self.origin is None else {"Origin": self.origin}
        response = self.client.get(self.url.rstrip("/") + HEALTH_PATH, headers=headers)
        expect_status(response, 200)
        body = HealthBody.model_validate_json(response.content)
        expect(body.status is Part.OK, f"health: {body.model_dump_json()}")
        self.expect_common_headers(response)
        return f"200 database {body.database}, key set {body.key_set}"

    def preflight(self) -> str:
        response = self.client.options(
            self.url,
            headers={
                "Origin": self.origin or ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, if-none-match",
            },
        )
        expect_status(response, 204)
        self.expect_allowed_origin(response)
        methods = response.headers.get("Access-Control-Allow-Methods", "")
        allowed = response.headers.get("Access-Control-Allow-Headers", "")
        names = {name.strip().lower() for name in allowed.split(",")}
        expect("GET" in methods, f"preflight does not allow GET: {methods!r}")
        expect({"authorization", "if-none-match"} <= names, f"preflight headers: {allowed!r}")
        origin = (
            "(no --origin: no browser's origin checked)" if self.origin is None
            else f"for {self.origin}"
        )
        return f"204, allows GET with Authorization and If-None-Match {origin}"

    def unauthenticated(self) -> str:
        response = self.get()
        expect_status(response, 401)
        body = ErrorBody.model_validate_json(response.content)
        expect(body.code == "missing_token", f"code {body.code!r}, not missing_token")
        challenge = response.headers.get("WWW-Authenticate", "")
        expect(challenge.startswith("Bearer "), f"WWW-Authenticate: {challenge!r}")
        self.expect_common_headers(response)
        return f"401 {body.code}, {challenge}"

    def batch(self) -> str:
        response = self.get(Authorization=f"Bearer {self.token}")
        expect_status(response, 200)
        detail = BatchDetail.model_validate_json(response.content)
        expect(str(detail.batch.id) == self.batch_id.lower(), "another batch came back")
        self.etag = response.headers.get("ETag", "")
        expect(self.etag.startswith('"') and self.etag.endswith('"'), f"ETag {self.etag!r}")
        self.expect_common_headers(response)
        return (
            f"200 {detail.batch.status}, {detail.batch.progress_percentage}% done,"
            f" {len(detail.contacts)} of {detail.contact_pagination.total} contacts,"
            f" ETag {self.etag}"
        )

    def not_modified(self) -> str:
        response = self.get(Authorization=f"Bearer {self.token}", **{"If-None-Match": self.etag})
        expect_status(response, 304)
        expect(response.content == b"", "a 304 with a body")
        expect(response.headers.get("ETag") == self.etag, "the 304's ETag is another")
        self.expect_common_headers(response)
        return "304 for the ETag just received"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("batch_id")
    parser.add_argument(
        "--origin", type=origin_argument,
        help="the origin of the page that calls the function: every answer must allow it",
    )
    args = parser.parse_args(argv)
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        smoke = Smoke(client, args.url, args.token, args.batch_id, args.origin)
        checks: tuple[tuple[str, Callable[[], str]], ...] = (
            ("health", smoke.health),
            ("preflight", smoke.preflight),
            ("unauthenticated", smoke.unauthenticated),
            ("batch", smoke.batch),
            ("not-modified", smoke.not_modified),
        )
        for name, check in checks:
            try:
                print(f"ok   {name}: {check()}")
            except (SmokeFailure, ValueError, httpx.HTTPError) as failure:
                print(f"FAIL {name}: {failure}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
