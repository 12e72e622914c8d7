"""The upstream of bench/peer.py, in a process of its own so that it shares no interpreter with
the load or the driver: the project's API (PostgREST and Auth stand-ins over real HTTP, answering
from the real embedded PostgreSQL as the caller) and a delaying proxy in front of PostgreSQL for
the subjects that connect to it directly. Every upstream request (an API request, a database round
trip) is held for the same delay, which the driver sets on stdin (``delay <ms>``, answered
``ok``); the first line out is where the two listen, as JSON.

    python -m bench.upstream '{"authenticator_url": ..., "database_url": ..., "anon_key": ...,
                               "service_key": ..., "jwks": [...]}'
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from bench.delay_proxy import DelayProxy
from tests.auth_standin import AuthStandIn
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys
from tests.standin_server import project, serving
from tests.wire_proxy import upstream_of


class Delay:
    seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def main(config: dict[str, Any]) -> None:
    delay = Delay()
    keys = ProjectKeys(
        anon_key=config["anon_key"], service_key=config["service_key"],
        public_jwks=tuple(config["jwks"]),
    )
    # PostgREST keeps a pool of its own (10 connections by default).
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        config["authenticator_url"], min_size=4, max_size=10,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
    )
    api = project(PostgrestStandIn(config["authenticator_url"], keys, connection=pool.connection),
                  AuthStandIn(keys))

    def delayed(request: httpx.Request) -> httpx.Response:
        response = api(request)
        time.sleep(delay.seconds)
        return response

    proxy = DelayProxy(*upstream_of(config["database_url"]), delay).start()
    with pool, serving(delayed) as url:
        print(json.dumps({"project_url": url, "database_port": proxy.port}), flush=True)
        for line in sys.stdin:
            command, _, value = line.partition(" ")
            if command == "delay":
                delay.seconds = float(value) / 1000
                print("ok", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
