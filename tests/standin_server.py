"""The PostgREST (and Auth) stand-ins over real HTTP, for a function running in another process
(the benchmarks' servers): each request handed to a stand-in as the httpx request respx would give
it, its answer written back as is."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.auth_standin import AuthStandIn
from tests.postgrest_standin import PostgrestStandIn

Answer = Callable[[httpx.Request], httpx.Response]


def project(rest: PostgrestStandIn, auth: AuthStandIn) -> Answer:
    """One project's API: ``/auth/v1`` answered by Auth, the rest by PostgREST."""

    def answer(request: httpx.Request) -> httpx.Response:
        return (auth if request.url.path.startswith("/auth/v1/") else rest)(request)

    return answer


def _handler(standin: Answer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle on, delayed ACKs would add 40 ms.
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(
                self.command,
                f"http://{self.headers.get('Host', 'localhost')}{self.path}",
                headers=list(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            response = standin(request)
            body = response.content
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serving(standin: Answer) -> Iterator[str]:
    """The stand-in on a free loopback port; yields the project URL (``{url}/rest/v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="postgrest-standin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
