"""Benchmark: the function next to the TypeScript Edge Function it replaces, on the same upstream.

Four subjects, each in processes of its own, answer the same requests in one run:

- ``supabase-py``: the function on the supabase-py store (one request to PostgREST per poll);
- ``direct``: the function on the direct store (one round trip to PostgreSQL per poll);
- ``original``: bench/original, the Edge Function as the specification describes it, on the Deno
  CLI with supabase-js (``auth.getUser``, then ``users``, the view and the contacts, one after
  another: four upstream requests per poll);
- ``bare``: bench/bare_function.py, a functions-framework function running the direct store's read
  with nothing around it (no token, no models, no log line): what Python and the Functions
  Framework cost by themselves.

The upstream (bench/upstream.py, a process of its own) is the PostgREST and Auth stand-ins over
real HTTP, answering from the real embedded PostgreSQL as the caller, and a proxy in front of
PostgreSQL for the two subjects that connect to it; each upstream request (an API request, a
database round trip) is held for the same added delay. Tokens are ES256, verified by each subject
as it does in production (our function with the key set it fetches, the original by asking Auth).

It checks first that the three real subjects give the same answers to the same requests (and
lists where they differ by design), then prints side by side, alternating the subjects: latency
p50/p95 at 1 client with 0, 2 and 10 ms added per upstream request (1k batch) and with none on a
200k batch; requests/s at 8 keep-alive clients; CPU per request of each subject's own processes
(and what the upstream and the load generator spent on it); cold start, process start to first
200 (median of 5); resident memory after 1,000 requests. The load comes from wrk (Debian's
``wrk``), a C program whose own CPU is printed next to the figures.

    .venv/bin/python -m bench.peer [--seconds 3] [--rounds 3] [--starts 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from bench import scale_data as data
from scripts.localdb import embedded_postgres, supabase_project
from scripts.processes import group_cpu_seconds, group_rss_bytes
from tests.function_process import VENVS, deployment_venv, free_port
from tests.tokens import SigningKey, TokenFactory
from tests.wire_proxy import proxied_url

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL = ROOT / "bench" / "original"
DENO = ORIGINAL / "node_modules" / ".bin" / "deno"
WRK_SCRIPT = ROOT / "bench" / "wrk_report.lua"
PASSWORD = "bench-password"
ANON_KEY = "sb_publishable_peer"
SERVICE_KEY = "sb_secret_peer"
SMALL, LARGE = 1_000, 200_000
# A batch whose contacts each have their own created_at: the one order every subject agrees on.
OWN_TIMES = uuid.UUID(int=0xC100_0000)
OWN_TIMES_SIZE = 300
DELAYS_MS = (0, 2, 10)
CLIENTS = 8
MEMORY_AFTER = 1_000
SUBJECTS = ("supabase-py", "direct", "original", "bare")
# Goals of issue 12, as ratios to the original (CPU, requests/s) and to the bare function.
CPU_GOALS = {"direct": 1.0, "supabase-py": 1.3}
COLD_START_GOAL = 1.2
MEMORY_GOAL = 1.2


# --- subjects -------------------------------------------------------------------------------


@dataclass
class Subject:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def start(self) -> float:
        """Starts a new instance on a free port; the seconds from its start to its first 200."""
        self.port = free_port()
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=self.cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env, "PORT": str(self.port)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = started + 60
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            with contextlib.suppress(OSError):
                if first_status(self.port, self.path(SMALL), self.headers) == 200:
                    return time.perf_counter() - started
            time.sleep(0.005)
        raise TimeoutError(f"{self.name} did not answer 200 within 60 s")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        self.process = None

    @property
    def group(self) -> int:
        assert self.process is not None
        return self.process.pid

    headers: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @staticmethod
    def path(batch: int | uuid.UUID, **params: str | int) -> str:
        batch_id = data.batch_id(batch) if isinstance(batch, int) else batch
        return "/?" + urlencode({"batch_id": str(batch_id), **params})


def first_status(port: int, path: str, headers: dict[str, str]) -> int:
    """One GET on a new connection, as a cold instance's first caller sends it: its status."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


def subjects(
    project_url: str, database_port: int, function_url: str, token: str, deno_dir: str
) -> list[Subject]:
    # As deployed: the pinned requirements alone (the development tools in .venv make some
    # imports dearer: httpx loads its command line, rich and all, when rich is installed).
    venv = deployment_venv(sys.executable, VENVS / f"peer-{platform.python_version()}")
    functions_framework = str(venv / "bin" / "functions-framework")
    function = [functions_framework, "--target", "calls_batch_get", "--source",
                str(ROOT / "main.py"), "--host", "127.0.0.1", "--port", "{port}"]
    database = proxied_url(function_url, database_port)
    headers = {"Authorization": f"Bearer {token}"}
    return [
        Subject("supabase-py", function, {"SUPABASE_URL": project_url,
                                          "SUPABASE_ANON_KEY": ANON_KEY}, headers=headers),
        Subject("direct", function, {"SUPABASE_URL": project_url, "DATABASE_URL": database},
                headers=headers),
        Subject("original", [str(DENO), "run", "--allow-net", "--allow-env", "--no-remote",
                             "--cached-only", "index.ts"],
                {"SUPABASE_URL": project_url, "SUPABASE_ANON_KEY": ANON_KEY,
                 "DENO_NO_UPDATE_CHECK": "1", "DENO_DIR": deno_dir}, cwd=ORIGINAL,
                headers=headers),
        Subject("bare", [functions_framework, "--target", "bare", "--source",
                         str(ROOT / "bench" / "bare_function.py"), "--host", "127.0.0.1",
                         "--port", "{port}"], {"DATABASE_URL": database}, headers=headers),
    ]


# --- the upstream ---------------------------------------------------------------------------


class Upstream:
    """bench/upstream.py in a process of its own."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", json.dumps(config)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert self.process.stdout is not None
        where = json.loads(self.process.stdout.readline())
        self.project_url: str = where["project_url"]
        self.database_port: int = where["database_port"]

    def delay(self, ms: float) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"delay {ms}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


# --- the load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What wrk reported of one run, with the CPU it and the subject (and the upstream) used."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    cpu_ms_per_request: float
    upstream_cpu_ms_per_request: float
    wrk_cpu_ms_per_request: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(subject: Subject, upstream: Upstream, path: str, clients: int, seconds: float) -> Load:
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", str(WRK_SCRIPT),
               *(arg for k, v in subject.headers.items() for arg in ("-H", f"{k}: {v}")),
               subject.url(path)]
    cpu, upstream_cpu = group_cpu_seconds(subject.group), upstream.cpu_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    # wrk's own CPU, from the kernel's account of it as it is reaped.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = group_cpu_seconds(subject.group) - cpu
    upstream_cpu = upstream.cpu_seconds() - upstream_cpu
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"wrk said: {out}") from None
    failed = report["bad_status"] or report["socket_errors"] or not report["requests"]
    if process.returncode or failed:
        raise RuntimeError(f"{subject.name}: {report}")
    requests = report["requests"]
    wrk_cpu = usage.ru_utime + usage.ru_stime
    return Load(
        requests=requests,
        seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1000,
        p95_ms=report["p95_us"] / 1000,
        cpu_ms_per_request=cpu * 1000 / requests,
        upstream_cpu_ms_per_request=upstream_cpu * 1000 / requests,
        wrk_cpu_ms_per_request=wrk_cpu * 1000 / requests,
    )


def warm(subject: Subject, count: int) -> None:
    """``count`` requests of the kinds the benchmark sends, on one keep-alive connection."""
    paths = [subject.path(SMALL), subject.path(LARGE), subject.path(SMALL, contact_status="queued"),
             subject.path(OWN_TIMES, contact_offset=100)]
    with httpx.Client(headers=subject.headers) as client:
        for n in range(count):
            response = client.get(subject.url(paths[n % len(paths)]))
            assert response.status_code == 200, (subject.name, response.text)


# --- the same answers -------------------------------------------------------------------------

# Where our function differs from the original by design (DESIGN.md), checked as such below.
BY_DESIGN = (
    "contact_pagination.next_cursor: ours hands out a cursor for the next page (the original has"
    " none)",
    "timestamps: ours end in Z, the original passes on PostgREST's +00:00 (compared as instants)",
    "error bodies: the texts are ours, and ours add a machine-readable `code` (and `parameter`)"
    " beside `error` (compared: the status and that there is an `error`)",
    "the order among contacts that share a created_at: ours breaks ties by id, the original leaves"
    " it to the plan (compared on the 200k batch as the page's created_at values, in order)",
)


Compared = tuple[str, str, str, dict[str, str] | None]


def requests_to_compare(other_batch: uuid.UUID, stranger: str) -> list[Compared]:
    """(what, method, path, headers if not the subject's) of each request the subjects must
    answer alike; ``stranger`` is a valid token of a user with no agency."""
    p = Subject.path
    requests: list[tuple[str, str, str]] = [
        ("first page", "GET", p(OWN_TIMES)),
        ("status filter", "GET", p(OWN_TIMES, contact_status="completed", contact_limit=20)),
        ("offset", "GET", p(OWN_TIMES, contact_offset=280, contact_limit=50)),
        ("offset at the end", "GET", p(OWN_TIMES, contact_offset=300)),
        ("limit 200", "GET", p(OWN_TIMES, contact_limit=200)),
        ("limit above 200", "GET", p(OWN_TIMES, contact_limit=500)),
        ("200k batch, first page", "GET", p(LARGE)),
        ("200k batch, offset 150000", "GET", p(LARGE, contact_offset=150_000)),
        ("another agency's batch", "GET", p(other_batch)),
        ("unknown batch", "GET", p(uuid.UUID(int=1))),
        ("bad status", "GET", p(OWN_TIMES, contact_status="done")),
        ("no batch_id", "GET", "/"),
        ("POST", "POST", p(OWN_TIMES)),
    ]
    return [
        *((what, method, path, None) for what, method, path in requests),
        ("no token", "GET", p(OWN_TIMES), {}),
        ("not a bearer token", "GET", p(OWN_TIMES), {"Authorization": "Basic dXNlcjpwdw=="}),
        ("a forged token", "GET", p(OWN_TIMES), {"Authorization": f"Bearer {stranger[:-4]}AAAA"}),
        ("a user with no agency", "GET", p(OWN_TIMES), {"Authorization": f"Bearer {stranger}"}),
    ]


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _comparable(body: Any, ties_by_time: bool) -> Any:
    """What must be equal: timestamps as instants (ours are written with Z, PostgREST's with
    +00:00), an error as its presence (the texts are ours), no cursor."""
    if isinstance(body, str) and _TIMESTAMP.fullmatch(body):
        return datetime.fromisoformat(body).astimezone(UTC)
    if isinstance(body, list):
        return [_comparable(item, ties_by_time) for item in body]
    if not isinstance(body, dict):
        return body
    if "error" in body:
        return {"error": "..."}
    body = {key: _comparable(value, ties_by_time) for key, value in body.items()}
    if "contact_pagination" in body:
        body["contact_pagination"] = {
            k: v for k, v in body["contact_pagination"].items() if k != "next_cursor"
        }
    if ties_by_time and "contacts" in body:
        body["contacts"] = [c["created_at"] for c in body["contacts"]]
    return body


def differing_paths(ours: Any, theirs: Any, at: str = "") -> list[str]:
    """Where two JSON values differ, as paths (``batch.started_at``, ``contacts[3].email``),
    each with the two values."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [path for key in sorted(set(ours) | set(theirs), key=str)
                for path in differing_paths(ours.get(key, "<absent>"), theirs.get(key, "<absent>"),
                                            f"{at}.{key}" if at else str(key))]
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple) \
            and len(ours) == len(theirs):
        return [path for n, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for path in differing_paths(a, b, f"{at}[{n}]")]
    return [] if ours == theirs else [f"{at or 'body'} ({ours!r:.60} vs {theirs!r:.60})"]


def same_answers(real: list[Subject], other_batch: uuid.UUID, stranger: str) -> list[str]:
    """The requests on which the subjects differ beyond BY_DESIGN (none, when all is well),
    after printing each request's status per subject."""
    differences = []
    with httpx.Client() as client:
        for what, method, path, headers in requests_to_compare(other_batch, stranger):
            answers = {}
            for subject in real:
                sent = subject.headers if headers is None else headers
                response = client.request(method, subject.url(path), headers=sent)
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                answers[subject.name] = (response.status_code,
                                         _comparable(body, ties_by_time="200k" in what))
            statuses = " ".join(f"{name}={status}" for name, (status, _) in answers.items())
            reference = answers["original"]
            differ = [name for name, answer in answers.items() if answer != reference]
            verdict = "DIFFERENT: " + ", ".join(differ) if differ else "same"
            print(f"  {what:<28} {statuses}  {verdict}")
            for name in differ:
                paths = ", ".join(differing_paths(answers[name], reference)[:4])
                differences.append(f"{what}: {name} differs from the original at {paths}")
    return differences


# --- the profile ----------------------------------------------------------------------------


def profile(subject: Subject, upstream: Upstream, seconds: int, out: Path) -> None:
    """py-spy on the subject's processes while wrk loads it: where its busy samples are."""
    spy_binary = Path(sys.executable).parent / "py-spy"
    subject.start()
    warm(subject, 200)
    spy = subprocess.Popen(
        [str(spy_binary), "record", "--pid", str(subject.group), "--subprocesses", "--rate", "250",
         "--gil", "--duration", str(seconds + 1), "--format", "raw", "--output", str(out),
         "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # attached
    load = wrk(subject, upstream, subject.path(SMALL), CLIENTS, seconds)
    spy.wait()
    print(f"{subject.name}: {load.rate:.0f} req/s, {load.cpu_ms_per_request:.2f} ms CPU/request"
          f" under the profiler; samples in {out}")
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += int(samples)
        own[frames[-1]] = own.get(frames[-1], 0) + int(samples)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(samples)
    for title, counts in (("own", own), ("inclusive", inclusive)):
        print(f"\ntop {title} samples (% of {total} busy samples):")
        for frame, count in sorted(counts.items(), key=lambda kv: -kv[1])[:30]:
            print(f"  {100 * count / total:5.1f}  {frame[:150]}")


# --- the run --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str, str]]:
    """The project's database, loaded: (owner URL, the function's role, authenticator)."""
    with embedded_postgres() as server:
        project = supabase_project(server.url, "bench_peer", PASSWORD)
        data.load(project.url, (SMALL, LARGE))
        with psycopg.connect(project.url, autocommit=True) as conn:
            data.add_batch(conn, OWN_TIMES, OWN_TIMES_SIZE, upload=1)
            conn.execute("vacuum analyze")
        yield project.url, project.function_url, project.authenticator_url


def other_agency_batch(url: str) -> uuid.UUID:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.call_batches (agency_id, status) values (%s, 'processing')"
            " returning id", (data.OTHER_AGENCY,),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def check_tools(original: bool) -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench/peer.py needs wrk: apt-get install wrk")
    if original and not DENO.exists():
        npm = shutil.which("npm") or "npm"
        subprocess.run([npm, "ci", "--prefix", str(ORIGINAL), "--no-audit", "--no-fund",
                        "--loglevel=error"], check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--starts", type=int, default=5, help="cold starts of each subject")
    parser.add_argument("--only", nargs="*", choices=SUBJECTS, default=list(SUBJECTS))
    parser.add_argument("--profile", choices=SUBJECTS,
                        help="instead: profile one subject under load (py-spy)")
    args = parser.parse_args(argv)
    with_original = "original" in (args.only if args.profile is None else [args.profile])
    check_tools(with_original)
    deno = ""
    if with_original:
        deno = ", " + subprocess.run(
            [str(DENO), "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs,"
          f" Python {platform.python_version()}{deno}", flush=True)

    signing = SigningKey.ec()
    # Deno's cache (V8's code cache among it) lives as long as the run, as a deployed
    # function's does; Python's bytecode caches are in the virtualenv.
    with database() as (url, function_url, authenticator_url), \
            tempfile.TemporaryDirectory(prefix="peer-deno-") as deno_dir:
        other = other_agency_batch(url)
        upstream = Upstream({
            "authenticator_url": authenticator_url, "database_url": function_url,
            "anon_key": ANON_KEY, "service_key": SERVICE_KEY, "jwks": [signing.public_jwk()],
        })
        everyone: list[Subject] = []
        try:
            tokens = TokenFactory(f"{upstream.project_url}/auth/v1", signing, SigningKey.ec())
            everyone = subjects(upstream.project_url, upstream.database_port, function_url,
                                tokens.es256(data.USER), deno_dir)
            if args.profile:
                (subject,) = (s for s in everyone if s.name == args.profile)
                profile(subject, upstream, args.seconds, ROOT / f".profile-{subject.name}.txt")
                return
            chosen = [s for s in everyone if s.name in args.only]
            run(chosen, upstream, other, tokens.es256(uuid.UUID(int=0xB9)), args)
        finally:
            for subject in everyone:
                subject.stop()
            upstream.stop()


def run(
    chosen: list[Subject], upstream: Upstream, other: uuid.UUID, stranger: str,
    args: argparse.Namespace,
) -> None:
    cold: dict[str, list[float]] = {s.name: [] for s in chosen}
    for subject in chosen:  # once unmeasured: caches filled, pages of the binaries read
        subject.start()
        subject.stop()
    for _ in range(args.starts):
        for subject in chosen:
            cold[subject.name].append(subject.start())
            subject.stop()

    memory: dict[str, int] = {}
    for subject in chosen:
        subject.start()
        warm(subject, MEMORY_AFTER)
        memory[subject.name] = group_rss_bytes(subject.group)

    real = [s for s in chosen if s.name != "bare"]
    if any(s.name == "original" for s in real):
        print("\nthe same requests, the same answers (bare answers its own shape: left out):")
        differences = same_answers(real, other, stranger)
        print("  differences by design, not counted: " + "; ".join(BY_DESIGN))
        for line in differences:
            print(f"  DIFFERENT {line}")

    latency: dict[tuple[str, str], list[Load]] = {}
    cases = [(f"1k batch, +{ms} ms upstream", SMALL, ms) for ms in DELAYS_MS]
    cases.append(("200k batch, +0 ms upstream", LARGE, 0))
    throughput: dict[str, list[Load]] = {s.name: [] for s in chosen}
    for round_ in range(args.rounds):
        order = chosen[round_ % len(chosen):] + chosen[:round_ % len(chosen)]
        for case, size, ms in cases:
            upstream.delay(ms)
            for subject in order:
                latency.setdefault((case, subject.name), []).append(
                    wrk(subject, upstream, subject.path(size), 1, args.seconds))
        upstream.delay(0)
        for subject in order:
            throughput[subject.name].append(
                wrk(subject, upstream, subject.path(SMALL), CLIENTS, args.seconds))

    report(chosen, cases, latency, throughput, cold, memory)


def per_round(
    throughput: dict[str, list[Load]], name: str, figure: Callable[[Load], float]
) -> list[float]:
    """``name``'s figure over the original's, round by round."""
    return [figure(ours) / figure(theirs)
            for ours, theirs in zip(throughput[name], throughput["original"], strict=True)]


def report(
    chosen: list[Subject], cases: list[tuple[str, int, int]],
    latency: dict[tuple[str, str], list[Load]], throughput: dict[str, list[Load]],
    cold: dict[str, list[float]], memory: dict[str, int],
) -> None:
    names = [s.name for s in chosen]
    print(f"\n{'figure':<46}" + "".join(f"{n:>13}" for n in names))

    def row(label: str, value: Callable[[str], str]) -> None:
        print(f"{label:<46}" + "".join(f"{value(n):>13}" for n in names))

    for case, _, _ in cases:
        p50 = {n: median([x.p50_ms for x in latency[(case, n)]]) for n in names}
        p95 = {n: median([x.p95_ms for x in latency[(case, n)]]) for n in names}
        row(f"p50 / p95 ms, 1 client, {case}",
            {n: f"{p50[n]:.2f}/{p95[n]:.2f}" for n in names}.__getitem__)
    rate = {n: median([x.rate for x in throughput[n]]) for n in names}
    cpu = {n: median([x.cpu_ms_per_request for x in throughput[n]]) for n in names}
    row(f"requests/s, {CLIENTS} clients, 1k batch", lambda n: f"{rate[n]:.0f}")
    row("CPU ms per request, the subject's processes", lambda n: f"{cpu[n]:.2f}")
    upstream = {n: median([x.upstream_cpu_ms_per_request for x in throughput[n]]) for n in names}
    load = {n: median([x.wrk_cpu_ms_per_request for x in throughput[n]]) for n in names}
    row("  the upstream's, per request", lambda n: f"{upstream[n]:.2f}")
    row("  wrk's, per request", lambda n: f"{load[n]:.3f}")
    starts = {n: median(cold[n]) * 1000 for n in names}
    row(f"cold start ms, start to first 200 (median of {len(cold[names[0]])})",
        lambda n: f"{starts[n]:.0f}")
    row(f"resident MB after {MEMORY_AFTER:,} requests", lambda n: f"{memory[n] / 2**20:.0f}")

    print("\ngoals (issue 12; a ratio is the median of the rounds' own ratios, each round's"
          " subjects measured one after another):")
    if "original" in names:
        for name, goal in CPU_GOALS.items():
            if name in names:
                ratios = per_round(throughput, name, lambda x: x.cpu_ms_per_request)
                ratio, spread = median(ratios), f"{min(ratios):.2f}-{max(ratios):.2f}"
                rates = per_round(throughput, name, lambda x: x.rate)
                print(f"  {name}: CPU x original {ratio:.2f} (rounds {spread}; goal <= {goal})"
                      f" {'met' if ratio <= goal else 'NOT MET'};"
                      f" requests/s x original {median(rates):.2f} (goal >= 1)"
                      f" {'met' if median(rates) >= 1 else 'NOT MET'}")
    if "bare" in names:
        for name in ("supabase-py", "direct"):
            if name in names:
                start_ratio = starts[name] / starts["bare"]
                memory_ratio = memory[name] / memory["bare"]
                print(f"  {name}: cold start x bare {start_ratio:.2f} (goal <= {COLD_START_GOAL})"
                      f" {'met' if start_ratio <= COLD_START_GOAL else 'NOT MET'};"
                      f" memory x bare {memory_ratio:.2f} (goal <= {MEMORY_GOAL})"
                      f" {'met' if memory_ratio <= MEMORY_GOAL else 'NOT MET'}")


if __name__ == "__main__":
    main()
