"""Runs the function locally on real PostgreSQL with demo data, and prints requests to try.

    ./run.sh [--port 8080] [--screen-port 8081] [--host 127.0.0.1] [--seed 2025]

Reads a .env beside run.sh first, if there is one (the environment wins over it). Uses
DATABASE_URL when set, else starts a throwaway embedded PostgreSQL (deleted on exit). Serves
examples/ (the batch screen) on a second origin, both on 127.0.0.1 unless --host says otherwise.
Checks both ports before it starts anything, and says Ready only once the function it started
holds the port and has answered through it. Prints a token for each caller state (the batch's
user, a user of no agency, an expired session), signed by a secret kept in .dev-jwt-secret so
that they survive restarts. Ctrl-C or SIGTERM at any moment stops it all and leaves nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
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

import httpx  # noqa: E402
import jwt  # noqa: E402
import psycopg  # noqa: E402

from scripts import demo_data, ports  # noqa: E402
from scripts.localdb import (  # noqa: E402
    FUNCTION_ROLE,
    EmbeddedPostgres,
    apply_migrations,
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
# The signing secret of this checkout's runs (git-ignored): tokens printed by one run still
# verify after a restart.
SECRET_FILE = REPO_ROOT / ".dev-jwt-secret"
SCREEN = "batch-screen.html"
# How long the function's processes get to finish running requests before they are killed.
STOP_GRACE_SECONDS = 5.0
# The demo tokens' lifetime: a week (Supabase's longest), so that a pasted $TOKEN outlives
# restarts; the expired one lapsed a few minutes ago, well past the function's leeway.
TOKEN_LIFETIME = timedelta(days=7)
EXPIRED_AGO = timedelta(minutes=5)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=(
            "With DATABASE_URL set (an administrator's URL: the migrations and the demo data are"
            " applied with it where missing), say how the function connects: --function-url, or"
            " --reset-function-password. Without DATABASE_URL the throwaway server's"
            f" {FUNCTION_ROLE} gets a new password at each start, which harms no one."
        ),
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "8080")),
        help="port of the function (default $PORT, else 8080)",
    )
    parser.add_argument(
        "--screen-port", type=int, default=8081, help="port of the batch screen's own origin"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the function and the screen listen on (default 127.0.0.1, this machine"
        " only; 0.0.0.0 opens both to the network)",
    )
    parser.add_argument("--seed", type=int, default=2025, help="demo data seed")
    parser.add_argument(
        "--secret-file",
        type=Path,
        default=SECRET_FILE,
        help="where the tokens' signing secret is kept across restarts, made on the first run"
        " (default .dev-jwt-secret in the checkout; SUPABASE_JWT_SECRET, if set, wins)",
    )
    parser.add_argument(
        "--function-url",
        default=None,
        help=f"with DATABASE_URL: the URL the function connects with, as {FUNCTION_ROLE} with the"
        " password it already has (default $FUNCTION_DATABASE_URL); the role is left as it is",
    )
    parser.add_argument(
        "--reset-function-password",
        action="store_true",
        help=f"with DATABASE_URL: give {FUNCTION_ROLE} a new random password on that server at"
        " each start and connect the function with it. Anything else that logs in as"
        f" {FUNCTION_ROLE} there (a deployed function) fails to connect from then on",
    )
    return parser.parse_args(argv)


def _stop_exception(signum: int) -> BaseException:
    # Ctrl-C unwinds as Python's own KeyboardInterrupt, SIGTERM as an exit with its status;
    # either way every clean-up armed so far runs.
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return SystemExit(128 + signum)


class Interrupts:
    """Ctrl-C and SIGTERM, turned into an exception where the start is, except inside
    ``deferred()``, where the exception waits for the end of the block: what starts a process
    and arms its clean-up must not be cut between the two."""

    def __init__(self) -> None:
        self._deferring = False
        self._pending: int | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only the first one stops the start: a second must not cut short the clean-up it began.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self._deferring:
            self._pending = signum
            return
        raise _stop_exception(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending is not None:
            raise _stop_exception(self._pending)


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


def mint_token(
    user_id: UUID, secret: str, *, issued: datetime | None = None,
    lifetime: timedelta = TOKEN_LIFETIME,
) -> str:
    """A Supabase-style access token, as the local auth server would sign it (HS256)."""
    iat = issued or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iss": f"{SUPABASE_URL}/auth/v1",
        "iat": iat,
        "exp": iat + lifetime,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def checkout_secret(path: Path) -> str:
    """The signing secret kept in ``path``, made (readable by this user only) when missing."""
    with contextlib.suppress(FileNotFoundError):
        if secret := path.read_text().strip():
            return secret
    draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    try:
        # A link never replaces: of two first runs at once, both end up with the one secret.
        os.link(draft, path)
    except FileExistsError:
        if not path.read_text().strip():
            os.replace(draft, path)  # an emptied file holds no secret to keep
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text().strip()


def url_host(host: str) -> str:
    """How the printed URLs name ``host``: localhost for this machine's addresses (what the
    README's lines use), else the address itself."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_loopback or address.is_unspecified:
        return "localhost"
    return f"[{host}]" if address.version == 6 else host


def probe_host(host: str) -> str:
    """Where a request of this machine reaches a server listening on ``host``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


def start_function(host: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The console script of the interpreter's own environment (the project's venv).
    executable = Path(sys.executable).parent / "functions-framework"
    command = [str(executable), "--target", "calls_batch_get", "--source", "main.py"]
    # A process group of its own (gunicorn's arbiter and its worker), stopped as a whole: a
    # terminal's Ctrl-C reaches only this runner, which then stops the group in order, and a
    # worker whose arbiter died cannot survive on the port.
    return subprocess.Popen(
        [*command, "--host", host, "--port", str(port)], cwd=REPO_ROOT, env=env,
        start_new_session=True,
    )


class Probe:
    """A read of the demo batch as its user: answered with that batch, it shows the function
    up with this run's secret and database."""

    def __init__(self, host: str, port: int, batch_id: UUID, token: str) -> None:
        host = probe_host(host)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        self.batch_id = str(batch_id)
        self.token = token
        self.last = "no answer yet"

    def __call__(self) -> bool:
        try:
            response = httpx.get(
                self.url, params={"batch_id": self.batch_id, "contact_limit": 1},
                headers={"Authorization": f"Bearer {self.token}"}, timeout=5,
            )
            ok = response.status_code == 200 and response.json()["batch"]["id"] == self.batch_id
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            self.last = f"{type(error).__name__}: {error}"
            return False
        self.last = f"{response.status_code} {response.text[:200]}"
        return ok


def wait_until_ready(
    process: subprocess.Popen[bytes], host: str, port: int, probe: Callable[[], bool]
) -> None:
    """Back once the function's own processes hold every socket a request to the port could
    reach, and it answered the probe through them: a program that took the port after the
    check at the start (or shares it) would answer instead, and this never says Ready then."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS

    def ours() -> bool:
        return ports.answered_by(host, port, group_members(process.pid))

    while time.monotonic() < deadline:
        if process.poll() is not None:
            reason = ports.taken(host, port)
            raise SystemExit(
                f"calls-batch-get: the function exited during start-up (code {process.returncode})"
                + (f": port {port} {reason}" if reason else "")
            )
        if ours() and probe() and ours():
            return
        time.sleep(0.2)
    last = getattr(probe, "last", "")
    raise SystemExit(
        f"calls-batch-get: the function did not answer on port {port} within"
        f" {READY_TIMEOUT_SECONDS:.0f}s" + (f" (last: {last})" if last else "")
    )


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


class _ScreenServer(ThreadingHTTPServer):
    def __init__(self, host: str, port: int, handler: Callable[..., Any]) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)


@contextlib.contextmanager
def screen_server(port: int, host: str = "127.0.0.1") -> Iterator[ThreadingHTTPServer]:
    """examples/ over HTTP on its own port: another origin than the function's, as the real
    screen is, so that the page's requests go through CORS."""
    handler = functools.partial(_QuietFiles, directory=str(REPO_ROOT / "examples"))
    server = _ScreenServer(host, port, handler)
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


@dataclass(frozen=True)
class Callers:
    """The demo rows a screen is tried with: the batch's user and one of no agency, the batch
    shown, another agency's."""

    user: demo_data.Row
    no_agency: demo_data.Row
    batch: demo_data.Row
    other_batch: demo_data.Row

    @classmethod
    def of(cls, data: demo_data.DemoData) -> Callers:
        mine, theirs = data.agencies[0]["id"], data.agencies[1]["id"]
        return cls(
            user=data.users_of(mine)[0],
            no_agency=data.users_of(None)[0],
            batch=max(data.batches_of(mine), key=lambda b: len(data.contacts_of(b["id"]))),
            other_batch=data.batches_of(theirs)[0],
        )


def demo_tokens(callers: Callers, secret: str) -> dict[str, str]:
    """A token for each caller state a screen must handle, by the variable it is exported as."""
    expired_issue = datetime.now(UTC) - TOKEN_LIFETIME - EXPIRED_AGO
    return {
        "TOKEN": mint_token(callers.user["id"], secret),
        "NO_AGENCY_TOKEN": mint_token(callers.no_agency["id"], secret),
        "EXPIRED_TOKEN": mint_token(callers.user["id"], secret, issued=expired_issue),
    }


def _reach(host: str) -> str:
    try:
        everywhere = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        everywhere = False
    if everywhere or url_host(host) != "localhost":
        return f"listening on {host}: reachable from the network"
    return f"listening on {host} only"


def print_ready(
    host: str, ports_: tuple[int, int], data: demo_data.DemoData, callers: Callers,
    secret: str, pid: int,
) -> None:
    port, screen_port = ports_
    user, no_agency, batch = callers.user, callers.no_agency, callers.batch
    tokens = demo_tokens(callers, secret)
    api = f"http://{url_host(host)}:{port}/"

    def curl(token: str, query: str, status: str) -> str:
        return f'  curl -sS -i -H "Authorization: Bearer ${token}" "{api}{query}"  # {status}'

    def screen(token: str) -> str:
        fragment = urlencode({"api": api, "batch_id": str(batch["id"]), "token": tokens[token]})
        return f"  http://{url_host(host)}:{screen_port}/{SCREEN}#{fragment}"

    print(
        f"\nReady: calls-batch-get (pid {pid}) answers on {api} ({_reach(host)}).\n"
        "Paste these into your shell; the README's curl lines then work as written:\n\n"
        f"  export TOKEN={tokens['TOKEN']}  # {user['email']}, of the batch's agency\n"
        f"  export NO_AGENCY_TOKEN={tokens['NO_AGENCY_TOKEN']}  # {no_agency['email']},"
        " of no agency\n"
        f"  export EXPIRED_TOKEN={tokens['EXPIRED_TOKEN']}  # {user['email']}'s, expired\n"
        f"  export BATCH_ID={batch['id']}  # your agency's, {batch['status']},"
        f" {len(data.contacts_of(batch['id']))} contacts\n"
        f"  export OTHER_BATCH_ID={callers.other_batch['id']}  # another agency's: 404\n\n"
        f"The tokens stay valid for {TOKEN_LIFETIME.days} days, across restarts (the signing"
        " secret is kept). What a screen must handle:\n\n"
        f"{curl('TOKEN', '?batch_id=$BATCH_ID&contact_limit=5', '200')}\n"
        f"{curl('TOKEN', '?batch_id=$OTHER_BATCH_ID', '404 batch_not_found')}\n"
        f"{curl('NO_AGENCY_TOKEN', '?batch_id=$BATCH_ID', '403 no_agency')}\n"
        f"{curl('EXPIRED_TOKEN', '?batch_id=$BATCH_ID', '401 token_expired')}\n\n"
        "The batch screen (its own origin, the token in the URL fragment) as the batch's user,"
        " as a user of no agency, with an expired token:\n"
        f"{screen('TOKEN')}\n{screen('NO_AGENCY_TOKEN')}\n{screen('EXPIRED_TOKEN')}\n\n"
        "Ctrl-C stops the function, the screen and the database.\n",
        flush=True,
    )


def _port_problem(args: argparse.Namespace) -> str | None:
    if args.port == args.screen_port:
        return f"calls-batch-get: --port and --screen-port are both {args.port}"
    for option, port in (("--port", args.port), ("--screen-port", args.screen_port)):
        if reason := ports.taken(args.host, port):
            return f"calls-batch-get: port {port} {reason}; stop it, or choose another {option}"
    return None


def _given_function_url(args: argparse.Namespace, admin_url: str | None) -> str | None:
    """The URL the function connects with, when the user gives it (None: the runner makes one,
    with a new password for the function's role)."""
    given = args.function_url or os.environ.get("FUNCTION_DATABASE_URL")
    if admin_url is None:
        if args.function_url:
            raise SystemExit("calls-batch-get: --function-url goes with DATABASE_URL")
        return None
    if given and args.reset_function_password:
        raise SystemExit(
            "calls-batch-get: --function-url (or FUNCTION_DATABASE_URL) and"
            " --reset-function-password exclude each other; pick one"
        )
    if not given and not args.reset_function_password:
        # Never a silent ALTER ROLE on someone's own database: a deployed function using the
        # role would lose its connection.
        raise SystemExit(
            "calls-batch-get: with DATABASE_URL set, say how the function connects:"
            f" --function-url URL (as {FUNCTION_ROLE}, with its password; the role is left"
            f" alone) or --reset-function-password (gives {FUNCTION_ROLE} a new password on that"
            " server at each start)"
        )
    return given


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    interrupts = Interrupts()
    interrupts.install()
    try:
        return _run(args, interrupts)
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, interrupts: Interrupts) -> int:
    # Nothing has started before these checks, and nothing starts when one fails.
    if problem := _port_problem(args):
        raise SystemExit(problem)
    load_dotenv(DOTENV, os.environ)
    admin_url = os.environ.get("DATABASE_URL")
    given_function_url = _given_function_url(args, admin_url)
    with interrupts.deferred():  # no half-written draft of the secret left in the checkout
        secret = os.environ.get("SUPABASE_JWT_SECRET") or checkout_secret(args.secret_file)
    with contextlib.ExitStack() as stack:
        try:
            url = admin_url
            if not url:
                server = EmbeddedPostgres()
                # Armed before the server's directory exists: a stop at any moment of the
                # start removes what it got to.
                stack.callback(server.stop)
                print(f"Starting an embedded PostgreSQL in {server.root}…", flush=True)
                server.start()
                url = server.url
            print(f"PostgreSQL: {url}", flush=True)
            data = prepare_database(url, args.seed)
            if given_function_url:
                print("The function connects with the URL given (its role left as is)…",
                      flush=True)
                function_url = given_function_url
            else:
                # The function reads as its own role, under row-level security, as deployed.
                print(f"The function connects as {FUNCTION_ROLE} (a new password)…", flush=True)
                function_url = enable_function_role(url, secrets.token_urlsafe(24))
            env = {
                **os.environ,
                "SUPABASE_URL": SUPABASE_URL,
                "SUPABASE_JWT_SECRET": secret,
                "DATABASE_URL": function_url,
            }
            screen_origin = f"http://{url_host(args.host)}:{args.screen_port}"
            origins = cors_origins_with(screen_origin, os.environ.get("CORS_ALLOW_ORIGINS"))
            if origins:
                env["CORS_ALLOW_ORIGINS"] = origins
            stack.enter_context(screen_server(args.screen_port, args.host))
            print(f"Starting the function on {args.host}:{args.port}…", flush=True)
            with interrupts.deferred():  # the process and its clean-up: both or neither
                function = start_function(args.host, args.port, env)
                stack.callback(stop, function)
            callers = Callers.of(data)
            token = mint_token(callers.user["id"], secret)
            probe = Probe(args.host, args.port, callers.batch["id"], token)
            wait_until_ready(function, args.host, args.port, probe)
            print_ready(
                args.host, (args.port, args.screen_port), data, callers, secret, function.pid
            )
            return function.wait()
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave a server behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("Stopping…", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
