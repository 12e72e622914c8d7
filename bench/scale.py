"""Benchmark: a poll at 1k to 1M contacts, read as the caller under row-level security.

Loads batches of 1k, 10k, 100k and 1M contacts into an embedded PostgreSQL through the
migrations (bench/scale_data.py), in an agency that also has 1,000 small batches. Then:

- reads: for each size and case, the read as the caller under the policies next to the same read
  as the tables' owner, past them (the direct store's client path on one owner's connection, the
  role and claims set or not), request by request in alternation, with the median of the pairs'
  ratios (goal <= 1.2); the direct store as it ships (its own role); and supabase-py through the
  PostgREST stand-in (as the caller); with each case's growth from the smallest size;
- writes: status-update throughput by 4 writers on one batch with every trigger, without the
  ledger's batch check, and without the counters' update trigger (alternating rounds);
- HTTP: requests per second and the server's CPU per request, 8 keep-alive clients polling the
  100k batch's first page, of the function on each store (supabase-py through the stand-in over
  real HTTP) and of a bare functions-framework function running the same read
  (bench/bare_function.py), in alternating rounds.

    .venv/bin/python -m bench.scale [--sizes 1000,10000,100000,1000000] [--rounds 40]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
from psycopg_pool import ConnectionPool

from bench import scale_data as data
from bench.scale_data import Case
from calls_batch_get.auth import Caller
from calls_batch_get.models import ContactStatus
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead
from calls_batch_get.store.postgres import SESSION_SETTINGS, PostgresStore
from calls_batch_get.store.supabase import SupabaseStore, create_supabase_store
from scripts.localdb import embedded_postgres, supabase_project
from scripts.processes import group_cpu_seconds
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys, mounted
from tests.standin_server import serving as serving_standin

ROOT = Path(__file__).resolve().parent.parent
SUPABASE_URL = "http://127.0.0.1:54321"
ANON_KEY = "sb_publishable_bench"
SERVICE_KEY = "sb_secret_bench"
JWT_SECRET = "bench-jwt-secret-that-is-long-enough-for-hs256"
PASSWORD = "bench-password"
KEYS = ProjectKeys(anon_key=ANON_KEY, service_key=SERVICE_KEY, jwt_secret=JWT_SECRET)
TIMEOUT_SECONDS = 30.0
LIMIT = 50
# Issue 6: a poll costs the same at any size; issue 11: the policies cost almost nothing.
GROWTH_GOAL = 1.5
RLS_GOAL = 1.2
# What PostgreSQL is told when the store reads as the owner: the same statement timeout and
# claims, no role.
OWNER_SETTINGS = (
    "select set_config('statement_timeout', %(statement_timeout)s, true),"
    " set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('request.jwt.claim.sub', '', true)"
)

Read = Callable[[], BatchRead]
# Reads of each pair before it is timed.
WARM_READS = 20


class OwnerConnection(PostgresStore):
    """The direct store's whole client path on one connection of the tables' owner, reading
    either past the policies (no role set) or under them (the role and claims set as the store
    sets them): the same function and statement on the same server process, so that the ratio
    is the policies' cost alone. (The role check would refuse the owner: it is skipped.)"""

    def __init__(self, database_url: str, timeout_seconds: float) -> None:
        super().__init__(database_url, timeout_seconds, max_connections=1)
        self._role_checked = True

    def read_as(self, caller: Caller, query: BatchQuery, *, owner: bool) -> BatchRead:
        self.session_settings = OWNER_SETTINGS if owner else SESSION_SETTINGS
        return self.read(caller, query)


def cases(url: str, size: int) -> list[Case]:
    batch = data.batch_id(size)
    deep = size - 100
    before_deep = data.position_at(url, size, deep - 1)
    return [
        Case("first page", data.USER, BatchQuery(batch_id=batch, limit=LIMIT)),
        Case("common status", data.USER,
             BatchQuery(batch_id=batch, contact_status=ContactStatus.COMPLETED, limit=LIMIT)),
        Case("rare status", data.USER,
             BatchQuery(batch_id=batch, contact_status=ContactStatus.IN_PROGRESS, limit=LIMIT)),
        Case("limit 200", data.USER, BatchQuery(batch_id=batch, limit=200)),
        Case("deep cursor", data.USER,
             BatchQuery(batch_id=batch, limit=LIMIT, after=before_deep)),
        Case("deep offset", data.USER,
             BatchQuery(batch_id=batch, limit=LIMIT, offset=deep)),
        Case("other agency", data.OTHER_USER, BatchQuery(batch_id=batch, limit=LIMIT)),
    ]


def timed(read: Read) -> float:
    started = time.perf_counter()
    read()
    return (time.perf_counter() - started) * 1000


def percentile_95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def side_by_side(store: Read, reference: Read, rounds: int) -> tuple[list[float], list[float]]:
    """``rounds`` timings of each, taken in pairs (one right after the other)."""
    for _ in range(WARM_READS):  # warm: pool connections, catalog caches, buffers
        store()
        reference()
    ours: list[float] = []
    theirs: list[float] = []
    for n in range(rounds):
        # Alternate who goes first, so neither always follows the other's cache effects.
        first, second = (store, reference) if n % 2 == 0 else (reference, store)
        a, b = timed(first), timed(second)
        ours.append(a if first is store else b)
        theirs.append(b if first is store else a)
    return ours, theirs


def caller(user: Any) -> Caller:
    """The caller the function makes of a token for ``user``: the token and its claims."""
    token = bench_token(user)
    claims = jwt.decode(token, options={"verify_signature": False})
    return Caller(user, token, json.dumps(claims))


@contextlib.contextmanager
def supabase_store(authenticator_url: str) -> Iterator[SupabaseStore]:
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        authenticator_url, min_size=4, max_size=8,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
    )
    standin = PostgrestStandIn(authenticator_url, KEYS, connection=pool.connection)
    with pool, mounted(standin, SUPABASE_URL):
        yield create_supabase_store(SUPABASE_URL, ANON_KEY, TIMEOUT_SECONDS)


def measure_reads(
    owner_url: str, function_url: str, authenticator_url: str, sizes: tuple[int, ...],
    rounds: int,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    direct = PostgresStore(function_url, TIMEOUT_SECONDS)
    owner = OwnerConnection(owner_url, TIMEOUT_SECONDS)
    callers = {user: caller(user) for user in (data.USER, data.OTHER_USER)}
    with supabase_store(authenticator_url) as supabase:
        for size in sizes:
            for case in cases(owner_url, size):
                who = callers[case.user]

                def shipped(c: Case = case, w: Caller = who) -> BatchRead:
                    return direct.read(w, c.query)

                def under_policies(c: Case = case, w: Caller = who) -> BatchRead:
                    return owner.read_as(w, c.query, owner=False)

                def past_policies(c: Case = case, w: Caller = who) -> BatchRead:
                    return owner.read_as(w, c.query, owner=True)

                def postgrest(c: Case = case, w: Caller = who) -> BatchRead:
                    return supabase.read(w, c.query)

                for read in (shipped, under_policies, postgrest):
                    check_same_read(read(), past_policies(), case)
                as_caller, as_owner = side_by_side(under_policies, past_policies, rounds)
                as_shipped, _ = side_by_side(shipped, past_policies, rounds)
                # Alone: the stand-in's threads would otherwise slow whatever read follows.
                via_postgrest = [timed(postgrest) for _ in range(WARM_READS + rounds)][WARM_READS:]
                rows.append({"size": size, "case": case.name,
                             **summary(as_caller, as_owner),
                             "shipped": statistics.median(as_shipped),
                             "postgrest": statistics.median(via_postgrest)})
                print_row(rows, rows[-1], flush=True)
    direct.close()
    owner.close()
    return rows


def summary(ours: list[float], owner: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(ours), "p95": percentile_95(ours),
        "owner": statistics.median(owner), "owner_p95": percentile_95(owner),
        # The median of the pairs' ratios: noise that hits both of a pair (another process on
        # this shared machine) cancels out.
        "x_owner": statistics.median(a / b for a, b in zip(ours, owner, strict=True)),
    }


def check_same_read(ours: BatchRead, owner: BatchRead, case: Case) -> None:
    """The owner's read is only a reference if it answers the same."""
    assert ours == owner, case.name


HEADER = (f"{'size':>9} {'case':<14} {'caller':>8} {'p95':>8} {'owner':>8} {'p95':>8}"
          f" {'x owner':>8} {'shipped':>8} {'x 1k':>6} {'postgrest':>9} {'x 1k':>6}")


def print_row(rows: list[dict[str, Any]], row: dict[str, Any], *, flush: bool = False) -> None:
    if len(rows) == 1:
        print(HEADER)
    small = next(r for r in rows if r["case"] == row["case"])
    print(
        f"{row['size']:>9} {row['case']:<14} {row['median']:>8.2f} {row['p95']:>8.2f}"
        f" {row['owner']:>8.2f} {row['owner_p95']:>8.2f} {row['x_owner']:>8.2f}"
        f" {row['shipped']:>8.2f} {row['shipped'] / small['shipped']:>6.2f}"
        f" {row['postgrest']:>9.2f} {row['postgrest'] / small['postgrest']:>6.2f}",
        flush=flush,
    )


def goals(rows: list[dict[str, Any]]) -> list[str]:
    """Each goal, as a line saying whether it holds."""
    lines = []
    worst = max(rows, key=lambda r: r["x_owner"])
    lines.append(f"row-level security: worst x owner {worst['x_owner']:.2f} ({worst['case']},"
                 f" {worst['size']}) {'ok' if worst['x_owner'] <= RLS_GOAL else 'MISSED'}")
    smallest, largest = min(r["size"] for r in rows), max(r["size"] for r in rows)
    steady = [r for r in rows if r["case"] != "deep offset"]
    for store, key in (("postgres", "shipped"), ("supabase", "postgrest")):
        by_case = {(r["case"], r["size"]): r[key] for r in steady}
        growth = max(
            (by_case[c, largest] / by_case[c, smallest], c) for c in {r["case"] for r in steady}
        )
        lines.append(f"{store}: worst {largest} vs {smallest} {growth[0]:.2f} ({growth[1]})"
                     f" {'ok' if growth[0] <= GROWTH_GOAL else 'MISSED'}")
        cursor = by_case["deep cursor", largest] / by_case["first page", largest]
        lines.append(f"{store}: deep cursor vs first page at {largest} {cursor:.2f}"
                     f" {'ok' if cursor <= GROWTH_GOAL else 'MISSED'}")
    return lines


# --- writes ----------------------------------------------------------------------------------


_REBOOK = """
insert into public.call_batch_counters (batch_id, agency_id, status, delta)
select batch_id, agency_id, status, count(*) from public.campaign_contacts
where batch_id = %(batch)s group by batch_id, agency_id, status
"""


# Works until the event is set; returns how much it did.
Worker = Callable[[threading.Event], int]


def for_a_while(seconds: float, workers: list[Worker]) -> tuple[int, float]:
    """Runs the workers side by side for ``seconds``: the work they did in all, and the time
    from their start to the last one's end."""
    stop = threading.Event()
    done: list[int] = []
    threads = [threading.Thread(target=lambda w=w: done.append(w(stop))) for w in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - started


# The write benchmark's modes, alternated round by round: the triggers disabled in each.
WRITE_MODES: dict[str, tuple[str, ...]] = {
    "with triggers": (),
    "without the ledger's batch check": ("call_batch_counters.call_batch_counters_batch_exists",),
    "without triggers": ("campaign_contacts.call_batch_counters_update",),
}


def write_throughput(url: str, size: int, seconds: float, rounds: int) -> dict[str, float]:
    """Status updates per second by 4 writers on one batch in each of WRITE_MODES, in
    alternating rounds. The batch's counters are rebuilt afterwards."""
    batch = data.batch_id(size)
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute(
            "select id from public.campaign_contacts where batch_id = %s", (batch,)
        ).fetchall()]
    statuses = [s.value for s in ContactStatus]
    totals = dict.fromkeys(WRITE_MODES, 0)
    elapsed = dict.fromkeys(WRITE_MODES, 0.0)

    def writer(seed: int) -> Worker:
        def work(stop: threading.Event) -> int:
            rng = random.Random(seed)
            count = 0
            with psycopg.connect(url, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute(
                        "update public.campaign_contacts set status = %s where id = %s",
                        (rng.choice(statuses), rng.choice(ids)),
                    )
                    count += 1
            return count

        return work

    def set_triggers(admin: psycopg.Connection[Any], disabled: tuple[str, ...]) -> None:
        for table in ("campaign_contacts", "call_batch_counters"):
            admin.execute(f"alter table public.{table} enable trigger all")
        for name in disabled:
            table, trigger = name.split(".")
            admin.execute(f"alter table public.{table} disable trigger {trigger}")

    with psycopg.connect(url, autocommit=True) as admin:
        n = 0
        for _ in range(rounds):
            for mode, disabled in WRITE_MODES.items():
                set_triggers(admin, disabled)
                done, took = for_a_while(seconds, [writer(n * 10 + w) for w in range(4)])
                n += 1
                elapsed[mode] += took
                totals[mode] += done
        set_triggers(admin, ())
        # The rounds without the trigger left the ledger behind: book the batch afresh.
        with admin.transaction():
            admin.execute("delete from public.call_batch_counters where batch_id = %s", (batch,))
            admin.execute(_REBOOK, {"batch": batch})
    return {mode: totals[mode] / elapsed[mode] for mode in WRITE_MODES}


# --- HTTP ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    port: int
    group: int


@contextlib.contextmanager
def serving(target: str, source: Path, env: dict[str, str]) -> Iterator[Served]:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "functions-framework"), "--target", target,
         "--source", str(source), "--port", str(port), "--host", "127.0.0.1"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.2)
        yield Served(port, process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(timeout=30)


def bench_token(user: Any = data.USER) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {"sub": str(user), "aud": "authenticated", "role": "authenticated",
         "iss": f"{SUPABASE_URL}/auth/v1", "iat": now, "exp": now + timedelta(hours=2)},
        JWT_SECRET, algorithm="HS256",
    )


class KeepAlive:
    """A minimal HTTP/1.1 keep-alive client: one prebuilt request, the response read by its
    Content-Length. http.client costs more CPU per request than the function under test would
    leave over on a 2-core machine; this one leaves the cores to the servers."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def get(self) -> int:
        """Sends the request, reads the whole response; its status."""
        self._sock.sendall(self._request)
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self._buffer) < length:
            self._receive()
        self._buffer = self._buffer[length:]
        return int(head.split(b" ", 2)[1])

    def _receive(self) -> None:
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._sock.close()


def poll(port: int, path: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    """Requests per second answered 200 by ``clients`` keep-alive connections."""

    def client(stop: threading.Event) -> int:
        conn = KeepAlive(port, path, headers)
        count = 0
        while not stop.is_set():
            status = conn.get()
            assert status == 200, status
            count += 1
        conn.close()
        return count

    done, took = for_a_while(seconds, [client] * clients)
    return done / took


def http_throughput(
    function_url: str, authenticator_url: str, size: int, seconds: float, rounds: int
) -> dict[str, tuple[float, float]]:
    """Requests per second and server CPU milliseconds per request of the function on each store
    and of the bare function, in alternating rounds."""
    path = f"/?batch_id={data.batch_id(size)}"
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        authenticator_url, min_size=4, max_size=8,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
    )
    standin = PostgrestStandIn(authenticator_url, KEYS, connection=pool.connection)
    common = {"SUPABASE_JWT_SECRET": JWT_SECRET, "DB_TIMEOUT_SECONDS": "10"}
    with pool, serving_standin(standin) as standin_url:
        # The functions verify tokens issued for SUPABASE_URL; the stand-in's is another.
        issuer = {"SUPABASE_JWT_ISSUER": f"{SUPABASE_URL}/auth/v1"}
        environments = {
            "direct": {"SUPABASE_URL": SUPABASE_URL, "DATABASE_URL": function_url, **common},
            "supabase-py": {"SUPABASE_URL": standin_url, "SUPABASE_ANON_KEY": ANON_KEY,
                            **issuer, **common},
        }
        totals = {name: [0.0, 0.0, 0.0] for name in (*environments, "bare")}
        with contextlib.ExitStack() as stack:
            servers = {
                name: stack.enter_context(serving("calls_batch_get", ROOT / "main.py", env))
                for name, env in environments.items()
            }
            servers["bare"] = stack.enter_context(
                serving("bare", ROOT / "bench" / "bare_function.py", {"DATABASE_URL": function_url})
            )
            headers = {"Authorization": f"Bearer {bench_token()}"}
            for server in servers.values():  # warm all: pools, imports, caches
                poll(server.port, path, headers, 1.0, 8)
            for _ in range(rounds):
                for name, server in servers.items():
                    cpu = group_cpu_seconds(server.group)
                    rate = poll(server.port, path, headers, seconds, 8)
                    totals[name][0] += rate
                    totals[name][1] += group_cpu_seconds(server.group) - cpu
                    totals[name][2] += rate * seconds
    return {
        name: (rate / rounds, cpu * 1000 / requests)
        for name, (rate, cpu, requests) in totals.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--write-seconds", type=float, default=3.0)
    parser.add_argument("--http-seconds", type=float, default=5.0)
    parser.add_argument(
        "--only", choices=("reads", "writes", "http"), help="run one part (default: all)"
    )
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs,"
          f" Python {platform.python_version()}", flush=True)
    with embedded_postgres() as server:
        project = supabase_project(server.url, "bench_scale", PASSWORD)
        url, function_url = project.url, project.function_url
        authenticator_url = project.authenticator_url
        started = time.perf_counter()
        data.load(url, sizes)
        seconds = time.perf_counter() - started
        print(f"loaded {sum(sizes):,} contacts in {seconds:.1f} s", flush=True)
        with psycopg.connect(url) as conn:
            version = conn.execute("show server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}; times in ms\n", flush=True)

        if args.only in (None, "reads"):
            rows = measure_reads(url, function_url, authenticator_url, sizes, args.rounds)
            print()
            for line in goals(rows):
                print(line)

        middle = sorted(sizes)[len(sizes) // 2]
        if args.only in (None, "writes"):
            rates = write_throughput(url, middle, args.write_seconds, 3)
            print(f"\nstatus updates, 4 writers, batch of {middle:,}:")
            for mode, rate in rates.items():
                print(f"  {mode:<34} {rate:7,.0f}/s", flush=True)
            with_triggers = rates["with triggers"]
            unchecked = rates["without the ledger's batch check"]
            print(f"  ratio with/without triggers {with_triggers / rates['without triggers']:.2f}"
                  f" (goal >= 0.5); with/without the batch check {with_triggers / unchecked:.2f}",
                  flush=True)

        if args.only in (None, "http"):
            http_size = 100_000 if 100_000 in sizes else middle
            served = http_throughput(
                function_url, authenticator_url, http_size, args.http_seconds, 3
            )
            bare, bare_cpu = served["bare"]
            print(f"\nHTTP, 8 keep-alive clients, first page of {http_size:,}:")
            for name, (rate, cpu) in served.items():
                print(f"  {name:<12} {rate:7,.0f} req/s  {cpu:5.2f} ms CPU/request"
                      f"  x bare: {rate / bare:.2f} req/s, {cpu / bare_cpu:.2f} CPU")


if __name__ == "__main__":
    main()
