"""Benchmark: how long the counters' rebuild holds its locks on a 1M-contact batch while writers
write, and whether it holds any writer up.

Loads batches of 1k and 1M contacts through the migrations (bench/scale_data.py), then runs 4
writers moving random contacts of the 1M batch between statuses and 1 on the 1k batch, in
rounds that alternate: with rebuilds of the 1M batch one after another (each committed at
once: its locks are held for the time the rebuild takes), and without. Prints the rebuild's
duration (median and longest), the writers' statements per second and their slowest statement
in each kind of round, and checks the counters against the contacts at the end.

    .venv/bin/python -m bench.repair [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from bench import scale_data as data
from bench.scale import Worker, for_a_while
from calls_batch_get.models import ContactStatus
from scripts.localdb import (
    apply_migrations,
    create_database,
    embedded_postgres,
    supabase_default_privileges,
    supabase_roles,
)

BIG, SMALL = 1_000_000, 1_000
STATUSES = [s.value for s in ContactStatus]


def writer(
    url: str, ids: list[UUID], seed: int, slowest: list[float], counts: list[int]
) -> Worker:
    """Status updates of random contacts of ``ids``; notes its count and slowest statement."""

    def work(stop: threading.Event) -> int:
        rng = random.Random(seed)
        count = 0
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                started = time.perf_counter()
                conn.execute(
                    "update public.campaign_contacts set status = %s where id = %s",
                    (rng.choice(STATUSES), rng.choice(ids)),
                )
                slowest[seed] = max(slowest[seed], time.perf_counter() - started)
                count += 1
        counts[seed] = count
        return count

    return work


def rebuilder(url: str, batch: UUID, durations: list[float]) -> Worker:
    """Rebuilds of ``batch`` one after another, each committed at once."""

    def work(stop: threading.Event) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                started = time.perf_counter()
                conn.execute("select public.call_batch_counters_rebuild(%s)", (batch,))
                durations.append(time.perf_counter() - started)
        return 0

    return work


def ids_of(url: str, size: int) -> list[UUID]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "select id from public.campaign_contacts where batch_id = %s", (data.batch_id(size),)
        ).fetchall()]


def drift_seconds(conn: psycopg.Connection[Any], batch: UUID | None, runs: int = 5) -> list[float]:
    """The wall time of ``runs`` drift checks of one batch (or, with None, of all)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute("select count(*) from public.call_batch_counters_drift(%s)", (batch,))
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs",
          flush=True)
    with embedded_postgres() as server:
        supabase_roles(server.url)
        url = create_database(server.url, "bench_repair")
        supabase_default_privileges(url)
        apply_migrations(url)
        data.load(url, (SMALL, BIG))
        big, small = ids_of(url, BIG), ids_of(url, SMALL)
        # Statements per second of the 1M batch's writers and the 1k batch's, and the slowest
        # statement of any, in rounds with rebuilds and without.
        rates: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        slowest = {True: [0.0] * 5, False: [0.0] * 5}
        durations: list[float] = []
        for n in range(args.rounds * 2):
            rebuilding = n % 2 == 0
            lanes, counts = slowest[rebuilding], [0] * 5
            rebuilds = [rebuilder(url, data.batch_id(BIG), durations)] if rebuilding else []
            _, seconds = for_a_while(args.seconds, [
                *(writer(url, big, w, lanes, counts) for w in range(4)),
                writer(url, small, 4, lanes, counts),
                *rebuilds,
            ])
            rates[rebuilding].append((sum(counts[:4]) / seconds, counts[4] / seconds))
        with psycopg.connect(url) as conn:
            drift = conn.execute("select count(*) from public.call_batch_counters_drift()")
            left = drift.fetchone()
            # How long the drift check takes, for the 1M batch alone and for every batch (the
            # operator's check after anything that bypassed the triggers), no writer running.
            checks = {
                f"the {BIG:,}-contact batch": drift_seconds(conn, data.batch_id(BIG)),
                "every batch": drift_seconds(conn, None),
            }
    print(f"rebuild of the {BIG:,}-contact batch among writers: {len(durations)} runs,"
          f" median {statistics.median(durations) * 1000:.0f} ms,"
          f" longest {max(durations) * 1000:.0f} ms (its locks are held that long)")
    for rebuilding in (True, False):
        big_rate = statistics.mean(r[0] for r in rates[rebuilding])
        small_rate = statistics.mean(r[1] for r in rates[rebuilding])
        print(f"{'with' if rebuilding else 'without'} rebuilds: writers of the 1M batch"
              f" {big_rate:,.0f}/s, of the 1k batch {small_rate:,.0f}/s, slowest statement"
              f" {max(slowest[rebuilding]) * 1000:.0f} ms")
    print(f"drift afterwards: {left[0] if left else '?'} rows (0 = exact)")
    for what, times in checks.items():
        print(f"drift check of {what}: median {statistics.median(times) * 1000:.0f} ms"
              f" of {len(times)}, longest {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
