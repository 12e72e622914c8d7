"""The store read straight from PostgreSQL (psycopg 3): the read function, as the caller, in one
round trip a request.

The function connects as a role of its own (``calls_batch_get`` in the migrations) that owns
nothing, bypasses nothing and may only act as ``authenticated``: each read sets the role and the
verified token's claims, as PostgREST does, so that it runs under row-level security.

Built to sit behind Supabase's transaction-mode pooler: no server-side prepared statements and no
session state; the role, the claims and the statement timeout are ``set_config(..., is_local =>
true)`` that travel in the same message as the read and die with the implicit transaction the
two run in.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import ValidationError

from calls_batch_get.auth import Caller
from calls_batch_get.deadline import Deadline, Watchdog
from calls_batch_get.log import LOGGER_NAME
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import READ_FUNCTION, BatchRead, StoreError, parse_read

FETCH_FAILED = "Failed to fetch batch"
APPLICATION_NAME = "calls-batch-get"
# The role every read acts as: the one PostgREST gives a signed-in user's requests.
READ_ROLE = "authenticated"

# A Cloud Functions instance serves a bounded number of concurrent requests; a few connections
# cover it without crowding the pooler's client limit when many instances run.
DEFAULT_MAX_CONNECTIONS = 4
# Below the idle timeouts of poolers and load balancers, so that an idle connection is retired by
# us rather than found dead by a request.
MAX_IDLE_SECONDS = 120.0
# How long after the request's deadline the client stops waiting for a server that sent nothing:
# the server's own statement timeout (set to the time left) normally answers first, with an error
# that keeps the connection usable; the client only cuts a connection whose server is silent.
CLIENT_GRACE_SECONDS = 0.5
# Below the request path: TCP gives up on a peer that stopped acknowledging (tcp_user_timeout) and
# probes idle pooled connections (keepalives), so that the kernel notices a dead network too.
KEEPALIVE_IDLE_SECONDS = 15
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 3
# Closing the pool on shutdown waits this long for its worker threads (an instance has seconds).
CLOSE_TIMEOUT_SECONDS = 1.0

# What PostgREST sets for a request with a user's token: the role and the token's claims (the
# legacy per-claim setting emptied, so that only this request's claims say who is calling), and
# the statement timeout of the time left.
SESSION_SETTINGS = (
    "select set_config('statement_timeout', %(statement_timeout)s, true),"
    f" set_config('role', '{READ_ROLE}', true),"
    " set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('request.jwt.claim.sub', '', true)"
)

# The one read statement; public so that tests can run exactly what runs.
READ_STATEMENT = (
    f"select public.{READ_FUNCTION}(%(batch_id)s, %(contact_status)s::text,"
    " %(contact_limit)s::integer, %(contact_offset)s::integer,"
    " %(after_created_at)s::timestamptz, %(after_id)s::uuid)::text as document"
)

# The health check's statement: the database answered, and nothing was read.
PING_STATEMENT = "select 1"

Connection = psycopg.Connection[DictRow]
T = TypeVar("T")
# What runs on a connection: given it, and whether the role check was just asked on it.
_Work = Callable[[Connection, bool], T]

# Whether the connection's role may read as it must: under row-level security, as
# authenticated. Run once per store, on its first connection.
ROLE_CHECK = """
select r.rolname, r.rolsuper, r.rolbypassrls,
  exists (
    select 1 from pg_class c
    where c.oid in ('public.campaign_contacts'::regclass, 'public.call_batches'::regclass,
                    'public.users'::regclass)
      and pg_has_role(r.oid, c.relowner, 'MEMBER')
  ) as owner,
  (
    select min(p.rolname) from pg_roles p
    where (p.rolsuper or p.rolbypassrls) and p.oid <> r.oid
      and pg_has_role(r.oid, p.oid, 'MEMBER')
  ) as privileged_member_of,
  pg_has_role(r.oid, %s, 'MEMBER') as reader
from pg_roles r where r.rolname = current_user
"""

_log = logging.getLogger(LOGGER_NAME)


def read_parameters(query: BatchQuery) -> dict[str, Any]:
    return {
        "batch_id": query.batch_id,
        # The plain value: an Enum may otherwise be adapted by its member name.
        "contact_status": None if query.contact_status is None else query.contact_status.value,
        "contact_limit": query.limit,
        "contact_offset": 0 if query.after is not None else query.offset,
        "after_created_at": None if query.after is None else query.after.created_at,
        "after_id": None if query.after is None else query.after.id,
    }


class RoleRefused(Exception):
    """The connection's role could read past row-level security; the message says how."""


def role_refusal(row: Mapping[str, Any]) -> str | None:
    """Why ROLE_CHECK's answer rules the role out, or None when it may serve."""
    name, privileged_member_of = row["rolname"], row["privileged_member_of"]
    fix = "connect as the role the migrations create for it (README, Deployment)"
    if row["rolsuper"]:
        return f"the database role {name} is a superuser: {fix}"
    if row["rolbypassrls"]:
        return f"the database role {name} has BYPASSRLS: {fix}"
    if row["owner"]:
        return f"the database role {name} owns the tables it reads: {fix}"
    if privileged_member_of is not None:
        return (
            f"the database role {name} may act as {privileged_member_of}, which bypasses"
            f" row-level security: {fix}"
        )
    if not row["reader"]:
        return f"the database role {name} may not act as {READ_ROLE}: {fix}"
    return None


class PostgresStore:
    """A Store over a direct PostgreSQL connection pool, one per instance.

    ``timeout_seconds`` is the whole database part of a read: the wait for a pooled connection
    (and so for a new one to connect), the statement, and the wait for its answer, together.
    """

    # What each read sets first (a benchmark's reference reads with other settings).
    session_settings = SESSION_SETTINGS

    def __init__(
        self,
        database_url: str,
        timeout_seconds: float,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._max_connections = max_connections
        self._watchdog = Watchdog(f"{APPLICATION_NAME}-watchdog")
        # Checked by the first read; a refusal stands for the instance's life (the role of a
        # URL does not change under it).
        self._role_checked = False
        self._refusal: str | None = None
        # The instance builds its store on the first request (instance.Lazy), so the pool is
        # created on first use; with min_size=0 it connects only when a read needs a connection.
        self._pool = _open_pool(database_url, timeout_seconds, max_connections)

    def read(self, caller: Caller, query: BatchQuery) -> BatchRead:
        deadline = Deadline(self._timeout_seconds)
        try:
            row = self._fetch(read_parameters(query), caller, deadline)
            return parse_read(row["document"], query)
        except (psycopg.Error, ValidationError, RoleRefused) as exc:
            raise StoreError(FETCH_FAILED) from exc

    def warm(self) -> None:
        """Opens the pool's first connection and asks the role check on it, so that the first
        read needs neither; bounded by the store's timeout. A failure is only logged: the first
        read tries again (and a role refused stays refused)."""
        if self._role_checked or self._refusal is not None:
            return
        try:
            with self._pool.connection(timeout=self._timeout_seconds) as conn:
                alarm = self._watchdog.arm(
                    self._timeout_seconds + CLIENT_GRACE_SECONDS, lambda: _cut(conn)
                )
                try:
                    self._judge_role(conn.execute(ROLE_CHECK, (READ_ROLE,)).fetchone())
                finally:
                    if alarm.cancel():
                        conn.close()
        except RoleRefused:
            pass  # logged once, by the judgement itself
        except (psycopg.Error, PoolTimeout) as error:
            _log.warning(
                "could not open a database connection ahead of the first request",
                extra={"fields": {"cause": type(error).__name__}},
            )

    def ping(self) -> bool:
        """Whether the database answers a trivial statement on a pooled connection, within the
        store's timeout; a connection found dropped is tried again as a read's would be. A role
        refused (now, or by an earlier read) is no database to serve from: False."""
        try:
            self._on_a_connection(Deadline(self._timeout_seconds), _ping)
        except (psycopg.Error, RoleRefused):  # PoolTimeout and PoolClosed are psycopg errors
            return False
        return True

    def close(self) -> None:
        """Closes the pool; later reads fail (PoolClosed) instead of reconnecting."""
        self._pool.close(CLOSE_TIMEOUT_SECONDS)

    def _fetch(self, params: dict[str, Any], caller: Caller, deadline: Deadline) -> DictRow:
        def read(conn: Connection, _: bool) -> DictRow | None:
            # The settings and the read leave as one simple-query message: one flight, and
            # one implicit transaction for both (so the settings' set_config(..., true) hold
            # for the read, and no BEGIN or COMMIT need travel; the connection is in
            # autocommit mode so that psycopg sends none of its own). The values are bound
            # as literals by psycopg itself, which costs less than a pipeline's machinery.
            cursor = psycopg.ClientCursor(conn)
            cursor.execute(
                f"{self.session_settings}; {READ_STATEMENT}",
                {
                    **params,
                    "statement_timeout": _milliseconds(deadline.remaining()),
                    "claims": caller.claims,
                },
            )
            cursor.nextset()
            return cursor.fetchone()

        row = self._on_a_connection(deadline, read)
        if row is None or row["document"] is None:
            raise psycopg.InterfaceError("the read statement returned no document")
        return row

    def _on_a_connection(self, deadline: Deadline, work: _Work[T]) -> T:
        """``work`` on a pooled connection, under the watchdog, within ``deadline``. A pooled
        connection the server or a pooler dropped while idle (an instance's CPU is throttled
        between requests, so the pool cannot notice in time) fails at once, and the work has
        no side effects: the next one is tried. After a server restart every pooled connection
        is dead, so as many tries as the pool holds, and one on a fresh connection, all within
        the same deadline."""
        for _ in range(self._max_connections):
            with contextlib.suppress(_ConnectionDropped):
                return self._once(deadline, work)
        return self._once(deadline, work)

    def _once(self, deadline: Deadline, work: _Work[T]) -> T:
        if self._refusal is not None:
            raise RoleRefused(self._refusal)
        with self._pool.connection(timeout=deadline.remaining()) as conn:
            alarm = self._watchdog.arm(
                deadline.remaining() + CLIENT_GRACE_SECONDS, lambda: _cut(conn)
            )
            try:
                judged = not self._role_checked
                if judged:
                    # Whether this role may serve at all: asked once, by the instance's first
                    # use of the database, before its role is set (a role that may not act as
                    # authenticated would fail that with a message of the database's).
                    self._judge_role(conn.execute(ROLE_CHECK, (READ_ROLE,)).fetchone())
                return work(conn, judged)
            except psycopg.OperationalError as exc:
                # Cut by the watchdog: the deadline has passed, so no second try.
                if not alarm.cancel() and conn.broken and not isinstance(
                    exc, psycopg.errors.QueryCanceled
                ):
                    raise _ConnectionDropped from exc
                raise
            finally:
                if alarm.cancel():
                    # A cut connection, even one whose answer made it, never goes back.
                    conn.close()

    def _judge_role(self, row: DictRow | None) -> None:
        """Refuses, for good, a role that could read past the policies: a superuser, a role
        with BYPASSRLS, the tables' owner, or one that may act as any of them. The answer is the
        same on every connection of the URL, so only the first read asks."""
        assert row is not None, "pg_roles has a row for current_user"
        refusal = role_refusal(row)
        if refusal is not None:
            self._refusal = refusal
            _log.error("the direct store refuses to serve: %s", refusal)
            raise RoleRefused(refusal)
        self._role_checked = True


def _milliseconds(seconds: float) -> str:
    # At least 1: a statement_timeout of 0 would mean no timeout at all.
    return str(max(1, math.ceil(seconds * 1000)))


def _ping(conn: Connection, judged: bool) -> None:
    # The role check, when it was just asked, is the round trip that shows the database answers.
    if not judged:
        conn.execute(PING_STATEMENT)


def _cut(conn: psycopg.Connection[DictRow]) -> None:
    """Shuts the connection's socket down under a call waiting on it, which then fails at once
    (a cancel request would need the very server that stopped answering)."""
    with contextlib.suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


def _open_pool(
    database_url: str, timeout_seconds: float, max_connections: int
) -> ConnectionPool[psycopg.Connection[DictRow]]:
    connection_kwargs: dict[str, Any] = {
        # The transaction pooler hands each transaction to any server connection: a
        # statement prepared on one would be missing on the next.
        "prepare_threshold": None,
        "autocommit": True,
        "row_factory": dict_row,
        # libpq counts whole seconds (and at least 2).
        "connect_timeout": max(2, math.ceil(timeout_seconds)),
        "application_name": APPLICATION_NAME,
        # Ignored by libpq on a unix socket, where there is no network to lose.
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": int(_milliseconds(timeout_seconds)) + 1000,
    }
    return ConnectionPool(
        database_url,
        connection_class=psycopg.Connection[DictRow],
        kwargs=connection_kwargs,
        min_size=0,
        max_size=max_connections,
        # A request waits for a connection no longer than it would wait for the database.
        timeout=timeout_seconds,
        max_idle=MAX_IDLE_SECONDS,
        name=APPLICATION_NAME,
        # Not waiting: an unreachable database must fail a request, not the instance start.
        open=True,
    )


class _ConnectionDropped(psycopg.OperationalError):
    """The connection died under a statement, before any result: safe to try again."""
