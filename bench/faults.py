"""Benchmark: the function under faults, with 8 concurrent clients.

The real ``functions-framework`` process serves the function over an embedded PostgreSQL
reached through a loopback proxy, with the key set on a loopback server. Eight clients ask for
pages of the demo batches (and, now and then, another agency's batch) without pause while each
fault lasts ``--seconds``; every 200 is checked against the database, every 404 must be the other
agency's batch. Per fault: the error rate during it, the longest request, the recovery time after
it (until requests stop failing), the function's connections left once it is over, and wrong
answers. Goal: longest <= budget + 1 s, recovery <= 1 s, 0 wrong, 0 leaked.

    .venv/bin/python -m bench.faults [--seconds 15] [--budget 2]
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from calls_batch_get.store.postgres import APPLICATION_NAME, DEFAULT_MAX_CONNECTIONS
from scripts import demo_data
from scripts.localdb import (
    apply_migrations,
    embedded_postgres,
    enable_function_role,
    supabase_default_privileges,
    supabase_roles,
)
from scripts.processes import server_processes, signal_all
from tests.database import backend_pids
from tests.function_process import FunctionProcess, functions_framework_for
from tests.tokens import KeySetServer, SigningKey, TokenFactory
from tests.wire_proxy import WireProxy, proxied_url, upstream_of

CLIENTS = 8
PAGE = 20
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class Call:
    """One request and the answer the database says it must get."""

    url: str
    expected_status: int
    expected_ids: list[str] = field(default_factory=list)
    expected_total: int = 0


@dataclass
class Sample:
    started: float
    ended: float
    ok: bool
    wrong: bool


def expected_calls(conn: psycopg.Connection[Any], data: demo_data.DemoData) -> list[Call]:
    mine, theirs = data.agencies[0]["id"], data.agencies[1]["id"]
    calls = []
    for batch in data.batches_of(mine):
        for status in (None, "completed"):
            for offset in (0, PAGE):
                where = "batch_id = %s" + (" and status = %s" if status else "")
                args: list[Any] = [batch["id"], *([status] if status else [])]
                ids = [
                    str(row[0])
                    for row in conn.execute(
                        f"select id from public.campaign_contacts where {where}"  # noqa: S608
                        " order by created_at, id limit %s offset %s",
                        [*args, PAGE, offset],
                    )
                ]
                total_row = conn.execute(
                    f"select count(*) from public.campaign_contacts where {where}",  # noqa: S608
                    args,
                ).fetchone()
                assert total_row is not None
                query = f"batch_id={batch['id']}&contact_limit={PAGE}&contact_offset={offset}"
                if status:
                    query += f"&contact_status={status}"
                calls.append(Call(query, 200, ids, total_row[0]))
    calls += [Call(f"batch_id={b['id']}", 404) for b in data.batches_of(theirs)]
    return calls


def is_wrong(call: Call, response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return False  # a failure, counted as an error, not a wrong answer
    if response.status_code != call.expected_status:
        return True
    if call.expected_status != 200:
        return False
    body = response.json()
    ids = [contact["id"] for contact in body["contacts"]]
    return ids != call.expected_ids or body["contact_pagination"]["total"] != call.expected_total


class Load:
    """CLIENTS threads sending requests back to back, each noting its samples."""

    def __init__(self, base_url: str, token: str, calls: list[Call]) -> None:
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._calls = calls
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(headers=self._headers, timeout=60) as client:
            while not self._stop.is_set():
                call = rng.choice(self._calls)
                started = time.monotonic()
                try:
                    response = client.get(f"{self._base_url}?{call.url}")
                    ok, wrong = response.status_code < 500, is_wrong(call, response)
                except httpx.HTTPError:
                    ok, wrong = False, False
                with self._lock:
                    self.samples.append(Sample(started, time.monotonic(), ok, wrong))

    def between(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start <= s.started < end]


@dataclass(frozen=True)
class Fault:
    name: str
    begin: Callable[[], None]
    end: Callable[[], None]
    during: Callable[[], None] = lambda: None


def faults(
    url: str, data_dir: Path, proxy: WireProxy, keys: KeySetServer, admin: psycopg.Connection[Any]
) -> list[Fault]:
    lock: list[psycopg.Connection[Any]] = []

    def lock_begin() -> None:
        conn = psycopg.connect(url)
        conn.execute("lock table public.campaign_contacts in access exclusive mode")
        lock.append(conn)

    def lock_end() -> None:
        conn = lock.pop()
        conn.rollback()
        conn.close()

    def set_hanging(value: bool) -> None:
        keys.hanging = value

    def signal_server(sig: signal.Signals) -> None:
        signal_all(server_processes(data_dir), sig)

    def drop_connections() -> None:
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (APPLICATION_NAME,),
        )

    return [
        Fault("network partition (proxy stops forwarding)", proxy.freeze, proxy.thaw),
        Fault("server frozen (SIGSTOP)", lambda: signal_server(signal.SIGSTOP),
              lambda: signal_server(signal.SIGCONT)),
        Fault("contacts table locked", lock_begin, lock_end),
        Fault("key service hanging", lambda: set_hanging(True), lambda: set_hanging(False)),
        Fault("connections dropped every second", lambda: None, lambda: None, drop_connections),
    ]


@dataclass(frozen=True)
class Row:
    fault: str
    requests: int
    error_rate: float
    longest: float
    recovery: float
    connections: int
    wrong: int


def measure(
    load: Load, fault: Fault, seconds: float, admin: psycopg.Connection[Any]
) -> Row:
    fault.begin()
    # Counted from when the fault is in place: a request already answered as it was being set
    # up is not one that met it.
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        fault.during()
        time.sleep(1.0)
    end = time.monotonic()
    fault.end()
    time.sleep(SETTLE_SECONDS)
    during = load.between(start, end)
    after = load.between(end, time.monotonic())
    failed_after = [s.ended for s in after if not s.ok]
    connections = len(backend_pids(admin))
    both = during + after
    return Row(
        fault=fault.name,
        requests=len(during),
        error_rate=sum(not s.ok for s in during) / max(1, len(during)),
        longest=max((s.ended - s.started for s in both), default=0.0),
        recovery=max(failed_after, default=end) - end,
        connections=connections,
        wrong=sum(s.wrong for s in both),
    )


def print_table(rows: list[Row], budget: float) -> None:
    print(f"\n8 clients, DB_TIMEOUT_SECONDS={budget:g}; goal: longest <= {budget + 1:g} s,"
          f" recovery <= 1 s, 0 wrong, connections <= {DEFAULT_MAX_CONNECTIONS}\n")
    header = ("fault", "requests", "errors during", "longest s", "recovery s", "connections",
              "wrong")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r.fault} | {r.requests} | {r.error_rate:.0%} | {r.longest:.2f} |"
              f" {r.recovery:.2f} | {r.connections} | {r.wrong} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--budget", type=float, default=2.0)
    args = parser.parse_args()

    data = demo_data.generate(2025)
    key = SigningKey.ec()
    keys = KeySetServer(keys=[key.public_jwk()]).start()
    with embedded_postgres() as server, psycopg.connect(server.url, autocommit=True) as admin:
        supabase_roles(server.url)
        supabase_default_privileges(server.url)
        apply_migrations(server.url)
        function_url = enable_function_role(server.url, "bench-faults-password")
        with admin.transaction():
            demo_data.load(admin, data)
        calls = expected_calls(admin, data)
        proxy = WireProxy(*upstream_of(server.url)).start()
        tokens = TokenFactory(issuer=f"{keys.url}/auth/v1", ec_key=key, rsa_key=key)
        user = data.users_of(data.agencies[0]["id"])[0]["id"]
        function = FunctionProcess(
            functions_framework_for("3.11"),
            {"SUPABASE_URL": keys.url, "DATABASE_URL": proxied_url(function_url, proxy.port),
             "DB_TIMEOUT_SECONDS": str(args.budget)},
        )
        rows = []
        try:
            function.wait_until_serving()
            with Load(function.url, tokens.es256(UUID(str(user))), calls) as load:
                time.sleep(SETTLE_SECONDS)
                for fault in faults(server.url, server.data_dir, proxy, keys, admin):
                    rows.append(measure(load, fault, args.seconds, admin))
                    print(f"done: {fault.name}", flush=True)
            seconds = function.terminate()
            print(f"SIGTERM to exit: {seconds:.2f} s; connections left after exit:"
                  f" {len(backend_pids(admin))}")
        finally:
            function.kill()
            proxy.stop()
            keys.stop()
        print_table(rows, args.budget)


if __name__ == "__main__":
    main()
