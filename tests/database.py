"""Helpers for tests on a real PostgreSQL: concise inserts, row-level-security sessions, plans."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from calls_batch_get.store.postgres import APPLICATION_NAME
from scripts.localdb import TABLES

Conn = psycopg.Connection[Any]
T0 = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


def insert(conn: Conn, table: str, **values: Any) -> UUID:
    """One row with the given columns (dicts become jsonb); returns its id."""
    values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in values.items()}
    statement = sql.SQL("insert into {} ({}) values ({}) returning id").format(
        sql.Identifier("public", table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder(k) for k in values),
    )
    row = conn.execute(statement, values).fetchone()
    assert row is not None
    result: UUID = row[0]
    return result


def truncate_all(conn: Conn) -> None:
    conn.execute(
        sql.SQL("truncate {} cascade").format(
            sql.SQL(", ").join(sql.Identifier("public", t) for t in TABLES)
        )
    )


class Seeder:
    """Rows with sensible defaults, so that a test spells out only what it is about."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def agency(self, name: str = "Agency") -> UUID:
        return insert(self.conn, "agencies", name=name)

    def user(self, agency_id: UUID | None, user_id: UUID | None = None) -> UUID:
        return insert(self.conn, "users", id=user_id or uuid4(), agency_id=agency_id)

    def campaign(self, agency_id: UUID, name: str = "Q1 Outreach") -> UUID:
        return insert(self.conn, "campaigns", agency_id=agency_id, name=name)

    def agent_mapping(self, agency_id: UUID, name: str = "Sales Agent") -> UUID:
        return insert(self.conn, "agent_mappings", agency_id=agency_id, name=name)

    def batch(self, agency_id: UUID, **columns: Any) -> UUID:
        return insert(self.conn, "call_batches", agency_id=agency_id, **columns)

    def contact(self, batch_id: UUID, **columns: Any) -> UUID:
        columns.setdefault("phone_number", "+15550000000")
        return insert(self.conn, "campaign_contacts", batch_id=batch_id, **columns)

    def contacts(
        self, batch_id: UUID, count: int, *, step: timedelta = timedelta(0), **columns: Any
    ) -> list[UUID]:
        """``count`` contacts created ``step`` apart from T0 (a zero step makes them all tie)."""
        start = columns.pop("created_at", T0)
        return [
            self.contact(
                batch_id, phone_number=f"+1555{n:07d}", created_at=start + n * step, **columns
            )
            for n in range(count)
        ]

    def agency_with_user(self, name: str = "Agency") -> tuple[UUID, UUID]:
        agency_id = self.agency(name)
        return agency_id, self.user(agency_id)


@contextlib.contextmanager
def as_authenticated(conn: Conn, user_id: UUID) -> Iterator[Conn]:
    """What PostgREST does for a request bearing a user's token: the role and the claims, for
    one transaction (rolled back, so that the role never leaks into the next statement)."""
    tx = conn.transaction(force_rollback=True)
    with tx:
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user_id), "role": "authenticated"}),),
        )
        yield conn


@contextlib.contextmanager
def as_replica(conn: Conn) -> Iterator[Conn]:
    """Writes as a logical-replication subscriber applies them (and as a restore that sets it):
    for one transaction, no ordinary trigger fires."""
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        yield conn


def explain(
    conn: Conn, statement: sql.Composable, params: Any = None, *, analyze: bool = False
) -> dict[str, Any]:
    """The plan's root node, as EXPLAIN (FORMAT JSON) gives it."""
    options = sql.SQL("analyze, format json" if analyze else "format json")
    row = conn.execute(sql.SQL("explain ({}) ").format(options) + statement, params).fetchone()
    assert row is not None
    document = row[0]
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


@contextlib.contextmanager
def nested_plans(conn: Conn) -> Iterator[list[dict[str, Any]]]:
    """The analysed plans of the statements run inside functions (the read function's body)
    while in the block, as auto_explain hands them to the client (a superuser's session)."""
    plans: list[dict[str, Any]] = []

    def collect(notice: psycopg.errors.Diagnostic) -> None:
        message = notice.message_primary or ""
        _, marker, document = message.partition("plan:\n")
        if marker:
            plans.append(json.loads(document))

    conn.execute("load 'auto_explain'")
    settings = {
        "log_min_duration": "0", "log_analyze": "on", "log_nested_statements": "on",
        "log_format": "json", "log_level": "notice", "log_timing": "off",
    }
    for name, value in settings.items():
        conn.execute("select set_config(%s, %s, false)", (f"auto_explain.{name}", value))
    conn.add_notice_handler(collect)
    try:
        yield plans
    finally:
        conn.remove_notice_handler(collect)
        conn.execute("select set_config('auto_explain.log_min_duration', '-1', false)")


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def scans_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """The plan's reads of ``relation``; of an analysed plan, those that ran (a part of a
    query that its parameters made needless is planned but never executed)."""
    return [
        node for node in plan_nodes(plan)
        if node.get("Relation Name") == relation and node.get("Actual Loops", 1) > 0
    ]


def backend_pids(conn: Conn) -> set[int]:
    """The server processes of the function's connections (its application_name) to this
    database."""
    rows = conn.execute(
        "select pid from pg_stat_activity where application_name = %s"
        " and datname = current_database()",
        (APPLICATION_NAME,),
    ).fetchall()
    return {row[0] for row in rows}


def poll(condition: Callable[[], object], timeout: float = 10.0) -> float | None:
    """Seconds until ``condition`` held, or None when it did not within ``timeout``: for what
    happens asynchronously (a server process exiting), without guessing a sleep."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    return None
