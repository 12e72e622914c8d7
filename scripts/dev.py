"""Runs the function locally on real PostgreSQL with demo data, and prints requests to try.

    ./run.sh [--port 8080] [--screen-port 8081] [--seed 2025]

Reads a .env beside run.sh first, if there is one (the environment wins over it). Uses
DATABASE_URL when set, else starts a throwaway embedded PostgreSQL (deleted on exit). Serves
examples/ (the batch screen) on a second origin. Ctrl-C or SIGTERM stops it all.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

# Run as a file (python scripts/dev.py), the repository root is not on the path by itself.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import jwt  # noqa: E402
import psycopg  # noqa: E402

from scripts import demo_data  # noqa: E402
from scripts.localdb import (  # noqa: E402
    FUNCTION_ROLE,
    apply_migrations,
    embedded_postgres,
    enable_function_role,
    schema_present,
    supabase_default_privileges,
    supabase_roles,
)
from scripts.processes import group_members  # noqa: E402

# Placeholder: locally the function only derives the token issuer (and key-set URL) from it.
SUPABASE_URL = "http://127.0.0.1:54321"
READY_TIMEOUT_SECONDS = 60.0
DOTENV = REPO_ROOT / ".env"
SCREEN = "batch-screen.html"
# How long the function's processes get to finish running requests before they are killed.
STOP_GRACE_SECONDS = 5.0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument(
        "--screen-port", type=int, default=8081, help="port of the batch screen's own origin"
    )
    parser.add_argument("--seed", type=int, default=2025, help="demo data seed")
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwinds like Ctrl-C does, so that every cleanup below runs.
    raise SystemExit(128 + signum)


def prepare_database(url: str, seed: int) -> demo_data.DemoData:
    """Migrates an empty database and loads the demo rows, unless an earlier run did."""
    if not schema_present(url):
        # A bare server lacks the roles and grants a Supabase project has (a Supabase
        # database has them; applying them again changes nothing).
        supabase_roles(url)
        supabase_default_privileges(url)
        print("Applying migrations…", flush=True)
        apply_migrations(url)
    data = demo_data.generate(seed)
    with psycopg.connect(url) as conn:
        loaded = conn.execute(
            "select exists (select 1 from public.agencies where id = %s)",
            (data.agencies[0]["id"],),
        ).fetchone()
        if not (loaded and loaded[0]):
            print(f"Loading demo data ({len(data.contacts)} contacts)…", flush=True)
            demo_data.load(conn, data)
    return data


def mint_token(user_id: UUID, secret: str) -> str:
    """A Supabase-style access token, as the local auth server would sign it (HS256)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iss": f"{SUPABASE_URL}/auth/v1",
        "iat": now,
        "exp": now + timedelta(hours=24),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def start_function(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The console script of the interpreter's own environment (the project's venv).
    executable = Path(sys.executable).parent / "functions-framework"
    command = [str(executable), "--target", "calls_batch_get", "--source", "main.py"]
    # A process group of its own (gunicorn's arbiter and its worker), stopped as a whole: a
    # terminal's Ctrl-C reaches only this runner, which then stops the group in order, and a
    # worker whose arbiter died cannot survive on the port.
    return subprocess.Popen(
        [*command, "--port", str(port)], cwd=REPO_ROOT, env=env, start_new_session=True
    )


def wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the function exited during start-up (code {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise SystemExit(f"the function did not listen on port {port} within {READY_TIMEOUT_SECONDS}s")


def _group_ends(process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reaps the leader, which is our child
        if not group_members(process.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the function's whole group (running requests may finish), SIGKILL to what is
    left after a grace period, and back only when no process of the group is alive."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, STOP_GRACE_SECONDS)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        if _group_ends(process, wait):
            return


def load_dotenv(path: Path, environ: MutableMapping[str, str]) -> None:
    """``KEY=VALUE`` lines of a .env made from .env.example (comments, blanks and quotes
    allowed); a variable already in the environment wins over the file."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or name.startswith("#"):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        environ.setdefault(name, value)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the function's log is the one worth reading


@contextlib.contextmanager
def screen_server(port: int) -> Iterator[ThreadingHTTPServer]:
    """examples/ over HTTP on its own port: another origin than the function's, as the real
    screen is, so that the page's requests go through CORS."""
    handler = functools.partial(_QuietFiles, directory=str(REPO_ROOT / "examples"))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="batch-screen", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def cors_origins_with(origin: str, configured: str | None) -> str | None:
    """The configured CORS list plus the screen's origin, so that a .env's list keeps the
    screen working; "*" (or nothing) already allows it."""
    if not configured or configured.strip() == "*":
        return configured
    return f"{configured},{origin}"


def print_ready(port: int, screen_port: int, data: demo_data.DemoData, secret: str) -> None:
    mine, theirs = data.agencies[0]["id"], data.agencies[1]["id"]
    user = data.users_of(mine)[0]
    batch = max(data.batches_of(mine), key=lambda b: len(data.contacts_of(b["id"])))
    token = mint_token(user["id"], secret)
    api = f"http://localhost:{port}/"
    fragment = urlencode({"api": api, "batch_id": str(batch["id"]), "token": token})
    screen = f"http://localhost:{screen_port}/{SCREEN}#{fragment}"
    query = "?batch_id=$BATCH_ID&contact_limit=5"
    curl = f'curl -sS -i -H "Authorization: Bearer $TOKEN" "{api}{query}"'
    print(
        f"\nReady: calls-batch-get on {api} as {user['email']} (agency {mine}).\n"
        "Paste these into your shell; the README's curl lines then work as written:\n\n"
        f"  export TOKEN={token}\n"
        f"  export BATCH_ID={batch['id']}  # your agency's, {batch['status']},"
        f" {len(data.contacts_of(batch['id']))} contacts\n"
        f"  export OTHER_BATCH_ID={data.batches_of(theirs)[0]['id']}  # another agency's: 404\n\n"
        f"  {curl}\n\n"
        f"The batch screen (its own origin, the token in the URL fragment):\n  {screen}\n\n"
        "Ctrl-C stops the function, the screen and the database.\n",
        flush=True,
    )


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    load_dotenv(DOTENV, os.environ)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with contextlib.ExitStack() as stack:
        try:
            url = os.environ.get("DATABASE_URL")
            if not url:
                print("Starting an embedded PostgreSQL…", flush=True)
                url = stack.enter_context(embedded_postgres()).url
            print(f"PostgreSQL: {url}", flush=True)
            data = prepare_database(url, args.seed)
            # The function reads as its own role, under row-level security, as deployed; this
            # run gives the role a password of its own (README, "Run it").
            print(f"The function connects as {FUNCTION_ROLE} (a new password)…", flush=True)
            function_url = enable_function_role(url, secrets.token_urlsafe(24))
            secret = os.environ.get("SUPABASE_JWT_SECRET") or secrets.token_urlsafe(32)
            env = {
                **os.environ,
                "SUPABASE_URL": SUPABASE_URL,
                "SUPABASE_JWT_SECRET": secret,
                "DATABASE_URL": function_url,
            }
            origins = cors_origins_with(
                f"http://localhost:{args.screen_port}", os.environ.get("CORS_ALLOW_ORIGINS")
            )
            if origins:
                env["CORS_ALLOW_ORIGINS"] = origins
            stack.enter_context(screen_server(args.screen_port))
            function = start_function(args.port, env)
            stack.callback(stop, function)
            wait_until_listening(function, args.port)
            print_ready(args.port, args.screen_port, data, secret)
            return function.wait()
        except KeyboardInterrupt:
            return 130
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave a server behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("Stopping…", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
