"""The store read straight from PostgreSQL (psycopg 3), one read statement and one round trip a
request.

Built to sit behind Supabase's transaction-mode pooler: no server-side prepared statements and no
session state; the statement timeout is a ``set_config(..., is_local => true)`` that travels in
the same pipeline as the read and dies with the implicit transaction the two run in.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool
from pydantic import TypeAdapter, ValidationError

from calls_batch_get.deadline import Deadline, Watchdog
from calls_batch_get.models import BATCH_COLUMNS, CONTACT_COLUMNS, Batch, Contact
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead, ContactsPage, StoreError

FETCH_FAILED = "Failed to fetch batch"
APPLICATION_NAME = "calls-batch-get"

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

# The statement timeout, and no parallel workers: a poll reads a few rows by index, and launching
# workers (which the planner may cost as cheaper on a large table) would cost more than it saves.
SESSION_SETTINGS = (
    "select set_config('statement_timeout', %s, true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def _columns(alias: str, names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, name) for name in names)


def read_statement(with_status: bool, with_cursor: bool = False) -> sql.Composed:
    """The one statement of a request; public so that tests can EXPLAIN exactly what runs.

    Parameters: user_id, batch_id, limit, then offset, or after_created_at and after_id
    (``with_cursor``), and status (``with_status``). The contacts are only read once the batch is
    known to be in the caller's agency (``exists (select 1 from batch)`` is evaluated once, as a
    one-time filter), so another agency's batch costs no scan. The total is not counted here: it
    is the batch's own counter, read in the same snapshot as the page.

    Every page is an index range of ``limit + 1`` rows (the extra one says whether more follow)
    starting at a position: the cursor's, or for an offset the position of the offset's row,
    found on the index alone (``start``), so a deep offset skips index entries, not table rows.
    Rows are handed over as JSON, the representation PostgREST serves, so both stores validate
    the same values into the models.
    """
    contacts_filter = sql.SQL(
        "cc.batch_id = %(batch_id)s and exists (select 1 from batch){status}"
    ).format(status=sql.SQL(" and cc.status = %(status)s") if with_status else sql.SQL(""))
    start: sql.Composable
    if with_cursor:
        start = sql.SQL("")
        position = sql.SQL("(cc.created_at, cc.id) > (%(after_created_at)s, %(after_id)s)")
    else:
        start = sql.SQL(
            """,
start as (
  select cc.created_at, cc.id
  from public.campaign_contacts cc
  where {contacts_filter}
  order by cc.created_at, cc.id
  offset %(offset)s limit 1
)"""
        ).format(contacts_filter=contacts_filter)
        position = sql.SQL(
            "(cc.created_at, cc.id) >= ((select s.created_at from start s),"
            " (select s.id from start s))"
        )
    return sql.SQL(
        """
with caller as (
  select u.agency_id from public.users u where u.id = %(user_id)s
),
batch as (
  select {batch_columns}
  from public.v_call_batch_summary v
  where v.id = %(batch_id)s and v.agency_id = (select c.agency_id from caller c)
){start}
select
  (select c.agency_id from caller c) as agency_id,
  (select row_to_json(b)::text from batch b) as batch,
  (
    select coalesce(json_agg(p order by p.created_at, p.id), '[]'::json)::text
    from (
      select {contact_columns}
      from public.campaign_contacts cc
      where {contacts_filter} and {position}
      order by cc.created_at, cc.id
      limit %(limit)s + 1
    ) p
  ) as contacts
"""
    ).format(
        batch_columns=_columns("v", BATCH_COLUMNS),
        contact_columns=_columns("cc", CONTACT_COLUMNS),
        contacts_filter=contacts_filter,
        start=start,
        position=position,
    )


def read_parameters(user_id: UUID, query: BatchQuery) -> dict[str, Any]:
    params: dict[str, Any] = {
        "user_id": user_id,
        "batch_id": query.batch_id,
        "limit": query.limit,
    }
    if query.after is None:
        params["offset"] = query.offset
    else:
        params["after_created_at"] = query.after.created_at
        params["after_id"] = query.after.id
    if query.contact_status is not None:
        # The plain value: an Enum may otherwise be adapted by its member name.
        params["status"] = query.contact_status.value
    return params


def statement_for(query: BatchQuery) -> sql.SQL:
    return _STATEMENTS[query.contact_status is not None, query.after is not None]


# Rendered once: composing the statement is work a request need not repeat.
_STATEMENTS = {
    (with_status, with_cursor): sql.SQL(read_statement(with_status, with_cursor).as_string())
    for with_status in (False, True)
    for with_cursor in (False, True)
}


# Validated straight from the JSON text PostgreSQL sends (pydantic's own parser): no Python
# objects built only to be read once.
_CONTACTS = TypeAdapter(list[Contact])


def _to_read(row: DictRow, query: BatchQuery) -> BatchRead:
    if row["agency_id"] is None:
        return BatchRead(agency_id=None)
    if row["batch"] is None:
        return BatchRead(agency_id=row["agency_id"])
    batch = Batch.model_validate_json(row["batch"])
    return BatchRead(
        agency_id=row["agency_id"],
        batch=batch,
        page=ContactsPage.of(
            _CONTACTS.validate_json(row["contacts"]),
            query.limit,
            total=batch.contacts_with(query.contact_status),
        ),
    )


class PostgresStore:
    """A Store over a direct PostgreSQL connection pool, one per instance.

    ``timeout_seconds`` is the whole database part of a read: the wait for a pooled connection
    (and so for a new one to connect), the statement, and the wait for its answer, together.
    """

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
        # The instance builds its store on the first request (instance.Lazy), so the pool is
        # created on first use; with min_size=0 it connects only when a read needs a connection.
        self._pool = _open_pool(database_url, timeout_seconds, max_connections)

    def read(self, user_id: UUID, query: BatchQuery) -> BatchRead:
        return self.run(statement_for(query), read_parameters(user_id, query), query)

    def run(
        self, statement: sql.Composed | sql.SQL, params: dict[str, Any], query: BatchQuery
    ) -> BatchRead:
        """One read statement of the shape of read_statement's (also the benchmark's floor)."""
        deadline = Deadline(self._timeout_seconds)
        try:
            row = self._fetch(statement, params, deadline)
            return _to_read(row, query)
        except (psycopg.Error, ValidationError) as exc:
            raise StoreError(FETCH_FAILED) from exc

    def close(self) -> None:
        """Closes the pool; later reads fail (PoolClosed) instead of reconnecting."""
        self._pool.close(CLOSE_TIMEOUT_SECONDS)

    def _fetch(
        self, statement: sql.Composed | sql.SQL, params: dict[str, Any], deadline: Deadline
    ) -> DictRow:
        # A pooled connection the server or a pooler dropped while idle (an instance's CPU is
        # throttled between requests, so the pool cannot notice in time) fails at once, and the
        # read has no side effects: try the next one. After a server restart every pooled
        # connection is dead, so as many tries as the pool holds, and one on a fresh connection,
        # all within the same deadline.
        for _ in range(self._max_connections):
            with contextlib.suppress(_ConnectionDropped):
                return self._fetch_once(statement, params, deadline)
        return self._fetch_once(statement, params, deadline)

    def _fetch_once(
        self, statement: sql.Composed | sql.SQL, params: dict[str, Any], deadline: Deadline
    ) -> DictRow:
        with self._pool.connection(timeout=deadline.remaining()) as conn:
            alarm = self._watchdog.arm(
                deadline.remaining() + CLIENT_GRACE_SECONDS, lambda: _cut(conn)
            )
            try:
                # The settings and the query leave in one flight, answered by one Sync. Until that
                # Sync they run in one implicit transaction, the settings' (set_config(...,
                # true)) included, so no BEGIN or COMMIT need travel; the connection is in
                # autocommit mode so that psycopg sends none of its own.
                with conn.pipeline():
                    conn.execute(SESSION_SETTINGS, (_milliseconds(deadline.remaining()),))
                    cursor = conn.execute(statement, params)
                row = cursor.fetchone()
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
        if row is None:
            raise psycopg.InterfaceError("the read statement returned no row")
        return row


def _milliseconds(seconds: float) -> str:
    # At least 1: a statement_timeout of 0 would mean no timeout at all.
    return str(max(1, math.ceil(seconds * 1000)))


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
