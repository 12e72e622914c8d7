"""Benchmark: the three PostgREST reads of a request sent concurrently vs one after another.

A local HTTP server plays PostgREST with a fixed delay per request (a stand-in for the round trip
from a Cloud Functions region to Supabase). The same SupabaseStore runs with its thread pool and
with a single worker (which sends the same three reads in sequence); rounds alternate so that
machine noise hits both alike. Prints the latencies and their ratio.

    .venv/bin/python -m bench.concurrent_reads [--rounds 40] [--delay-ms 25]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

from calls_batch_get.params import BatchQuery
from calls_batch_get.store.supabase import SupabaseStore, create_supabase_client
from tests.rows import AGENCY, BATCH, USER, batch_row, contact_row


def serve(delay_seconds: float) -> ThreadingHTTPServer:
    contacts = [contact_row() for _ in range(50)]
    bodies = {
        "/rest/v1/users": ([{"agency_id": AGENCY}], "0-0/*"),
        "/rest/v1/v_call_batch_summary": ([batch_row()], "0-0/*"),
        "/rest/v1/campaign_contacts": (contacts, "0-49/1000"),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle on, delayed ACKs would add 40 ms.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            rows, content_range = bodies[self.path.split("?")[0]]
            payload = json.dumps(rows).encode()
            time.sleep(delay_seconds)
            self.send_response(206 if content_range.endswith("1000") else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Range", content_range)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def timed(store: SupabaseStore, query: BatchQuery) -> float:
    started = time.perf_counter()
    read = store.read(UUID(USER), query)
    elapsed = time.perf_counter() - started
    if read.batch is None or len(read.page.contacts) != 50:
        raise SystemExit("the stand-in's answer did not come through: the figures would be void")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--delay-ms", type=float, default=25.0)
    args = parser.parse_args()

    server = serve(args.delay_ms / 1000)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    concurrent = SupabaseStore(create_supabase_client(url, "bench-key", 5.0))
    sequential = SupabaseStore(
        create_supabase_client(url, "bench-key", 5.0), threads=ThreadPoolExecutor(max_workers=1)
    )
    query = BatchQuery(batch_id=UUID(BATCH))
    for store in (concurrent, sequential):  # warm the connection pools
        timed(store, query)

    samples: dict[str, list[float]] = {"concurrent": [], "sequential": []}
    for _ in range(args.rounds):
        samples["concurrent"].append(timed(concurrent, query))
        samples["sequential"].append(timed(sequential, query))
    server.shutdown()

    print(f"PostgREST stand-in delay per request: {args.delay_ms:.1f} ms, rounds: {args.rounds}")
    for name, values in samples.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(
            f"{name:>10}: median {statistics.median(values) * 1000:7.1f} ms"
            f"   p90 {p90 * 1000:7.1f} ms"
        )
    ratio = statistics.median(samples["sequential"]) / statistics.median(samples["concurrent"])
    print(f"sequential / concurrent (median): {ratio:.2f}x")


if __name__ == "__main__":
    main()
