"""Benchmark: the first deploy on a live product database: how long each migration holds its
locks on a database that already has the product's tables and contacts, and how long a writer
of contacts waits meanwhile.

For each size (default 100k and 1M contacts, in one agency that also has 1,000 small batches),
a database at the first migration (Supabase's default privileges first) is loaded through
``INSERT ... SELECT generate_series`` (bench/scale_data.py); then every later migration is
applied in order, each in its own transaction, as ``supabase db push`` does, while one writer
keeps moving contacts of the big batch between statuses. Prints each migration's time (its
locks are held until its commit) and the writer's slowest statement during it; then checks
the counters with the drift function.

    .venv/bin/python -m bench.first_deploy [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import threading
import time
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from bench import scale_data as data
from calls_batch_get.models import ContactStatus
from scripts.localdb import (
    apply_migrations,
    create_database,
    embedded_postgres,
    migration_files,
    supabase_default_privileges,
    supabase_roles,
)

STATUSES = [s.value for s in ContactStatus]


class Writer:
    """Status updates of random contacts, one after another; the slowest since the last reset."""

    def __init__(self, url: str, ids: list[UUID]) -> None:
        self.url, self.ids = url, ids
        self.slowest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        rng = random.Random(1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("update public.campaign_contacts set status = %s where id = %s",
                             (rng.choice(STATUSES), rng.choice(self.ids)))
                self.slowest = max(self.slowest, time.perf_counter() - started)
                time.sleep(0.005)

    def take_slowest(self) -> float:
        slowest, self.slowest = self.slowest, 0.0
        return slowest


def deploy(server_url: str, size: int) -> None:
    name = f"bench_first_deploy_{size}"
    url = create_database(server_url, name)
    supabase_default_privileges(url)
    first, *later = migration_files()
    apply_migrations(url, [first])
    started = time.perf_counter()
    data.load(url, (size,))
    print(f"\n{size:,} contacts in the big batch (+5,000 in 1,000 small ones),"
          f" loaded in {time.perf_counter() - started:.1f} s", flush=True)
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute(
            "select id from public.campaign_contacts where batch_id = %s", (data.batch_id(size),)
        ).fetchall()]
    writer = Writer(url, ids)
    writer.thread.start()
    time.sleep(0.5)
    writer.take_slowest()
    print(f"  {'migration':<48} {'held (ms)':>10} {'writer waited (ms)':>19}")
    try:
        for path in later:
            started = time.perf_counter()
            apply_migrations(url, [path])
            took = time.perf_counter() - started
            time.sleep(0.05)  # the writer's statement that waited ends after the commit
            print(f"  {path.stem:<48} {took * 1000:10,.0f} {writer.take_slowest() * 1000:19,.0f}",
                  flush=True)
    finally:
        writer.stop.set()
        writer.thread.join()
    with psycopg.connect(url) as conn:
        drift = conn.execute("select count(*) from public.call_batch_counters_drift()").fetchone()
    print(f"  drift afterwards: {drift[0] if drift else '?'} (batch, status) pairs", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args(argv)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs,"
          f" Python {platform.python_version()}", flush=True)
    with embedded_postgres() as server:
        supabase_roles(server.url)
        for size in (int(s) for s in args.sizes.split(",")):
            deploy(server.url, size)


if __name__ == "__main__":
    main()
