"""Benchmark: the CPU of each piece of one request's Python path, in one process, no HTTP.

Each piece runs many times in a row and is timed by the process's CPU clock (not the wall: the
database's share of a read is not ours): the token check, the store's read (its client side:
pool, settings, the one flight, the row), the document's validation into the models, the
response's model and JSON, the ETag, the log line, and the whole handler on a Flask request
(what gunicorn and the Functions Framework add around it is bench/peer.py's business). Beside
the read, the bare function's (bench/bare_function.py) for reference. The batch is the 1k one,
first page of 50 contacts.

    .venv/bin/python -m bench.pieces [--repeat 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator

import flask
import psycopg

from bench import scale_data as data
from calls_batch_get.auth import TokenVerifier
from calls_batch_get.handler import _detail
from calls_batch_get.http import strong_etag
from calls_batch_get.instance import create_handler
from calls_batch_get.params import BatchQuery
from calls_batch_get.settings import load_settings
from calls_batch_get.store import parse_read
from calls_batch_get.store.postgres import READ_STATEMENT, SESSION_SETTINGS, read_parameters
from scripts.localdb import embedded_postgres, supabase_project
from tests.tokens import KeySetServer, SigningKey, TokenFactory

PASSWORD = "bench-password"
SIZE = 1_000


def cpu_us(piece: Callable[[], object], repeat: int) -> float:
    """Microseconds of process CPU per call, after a few calls to warm it."""
    for _ in range(20):
        piece()
    started = time.process_time()
    for _ in range(repeat):
        piece()
    return (time.process_time() - started) / repeat * 1e6


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The log lines go to a buffer that is emptied now and then, as a pipe would take them."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="and cProfile the whole handler")
    args = parser.parse_args(argv)
    signing = SigningKey.ec()
    keys = KeySetServer([signing.public_jwk()]).start()
    tokens = TokenFactory(f"{keys.url}/auth/v1", signing, SigningKey.ec())
    token = tokens.es256(data.USER)
    query = BatchQuery(batch_id=data.batch_id(SIZE))
    with embedded_postgres() as server:
        project = supabase_project(server.url, "bench_pieces", PASSWORD)
        function_url = project.function_url
        data.load(project.url, (SIZE,))
        settings = load_settings({"SUPABASE_URL": keys.url, "DATABASE_URL": function_url})
        handle = create_handler(settings)
        verifier = TokenVerifier(settings)
        caller = verifier.verify(token)
        store = handle._store.get()
        read = store.read(caller, query)
        with psycopg.connect(function_url, autocommit=True) as conn:
            claims = json.dumps({"sub": str(data.USER), "role": "authenticated"})

            def bare_read() -> object:
                cursor = psycopg.ClientCursor(conn)
                cursor.execute(f"{SESSION_SETTINGS}; {READ_STATEMENT}", {
                    **read_parameters(query), "statement_timeout": "10000", "claims": claims})
                cursor.nextset()
                return cursor.fetchone()

            row = bare_read()
            assert isinstance(row, tuple)
            document = row[0]
            detail = _detail(read, query)
            body = detail.model_dump_json().encode()
            app = flask.Flask("pieces")
            environ = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
            path = f"/?batch_id={query.batch_id}"
            logger = logging.getLogger("calls_batch_get")

            def whole() -> object:
                with app.test_request_context(path, environ_base=environ):
                    response = handle(flask.request)
                assert response.status_code == 200
                return response

            def context_only() -> object:
                with app.test_request_context(path, environ_base=environ):
                    return flask.request.args

            class Stub:
                def read(self, *_: object) -> object:
                    return read

                def verify(self, _: str) -> object:
                    return caller

            def stubbed() -> object:
                real = handle._store._value
                handle._store._value = Stub()  # type: ignore[assignment]
                try:
                    return whole()
                finally:
                    handle._store._value = real

            def stubbed_more() -> object:
                real = handle._verifier._value
                handle._verifier._value = Stub()  # type: ignore[assignment]
                try:
                    return stubbed()
                finally:
                    handle._verifier._value = real

            def log_line() -> None:
                logger.info("GET 200", extra={"fields": {"status": 200, "latency_ms": 1.0}})

            pieces: list[tuple[str, Callable[[], object]]] = [
                ("token check (ES256, keys cached)", lambda: verifier.verify(token)),
                ("store read, client side", lambda: store.read(caller, query)),
                ("  of which validation (parse_read)", lambda: parse_read(document, query)),
                ("bare read (pipeline, no models)", bare_read),
                ("response model (_detail)", lambda: _detail(read, query)),
                ("response JSON (model_dump_json)", detail.model_dump_json),
                ("ETag (sha256 of the body)", lambda: strong_etag(body)),
                ("log line", log_line),
                ("a Flask request context alone", context_only),
                ("whole handler on a Flask request", whole),
                ("store read, client side, again", lambda: store.read(caller, query)),
                ("whole handler, the read stubbed", stubbed),
                ("whole handler, the read and token stubbed", stubbed_more),
            ]
            print(f"{SIZE:,}-contact batch, first page of {query.limit}; CPU microseconds per"
                  f" call, {args.repeat} calls each:")
            with quiet_stdout():
                figures = [(name, cpu_us(piece, args.repeat)) for name, piece in pieces]
            for name, us in figures:
                print(f"  {name:<38} {us:8.1f}")
            if args.profile:
                import cProfile
                import pstats
                with quiet_stdout():
                    profiler = cProfile.Profile(time.process_time)
                    profiler.runcall(lambda: [stubbed_more() for _ in range(args.repeat)])
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        handle.close()
    keys.stop()


if __name__ == "__main__":
    main()
