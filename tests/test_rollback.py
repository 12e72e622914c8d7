"""The counters migration's down script (supabase/rollback/): a database at the counters migration
goes back to the previous schema with its data and the old view's answers, and the migration
applied again gives the same counters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts import demo_data
from scripts.localdb import (
    REPO_ROOT,
    apply_migrations,
    create_database,
    drop_database,
    migration_files,
    supabase_default_privileges,
)
from tests.test_recipes import run

DOWN = REPO_ROOT / "supabase" / "rollback" / "20261129000000_call_batch_counters.down.sql"
COUNTERS_MIGRATION = "20261129000000_call_batch_counters.sql"
SUMMARY = ("select id, total_contacts, queued, in_progress, completed, failed, skipped,"
           " progress_percentage, remaining_count from public.v_call_batch_summary order by id")


def migrations_through(name: str) -> list[Path]:
    files = migration_files()
    (index,) = [n for n, path in enumerate(files) if path.name == name]
    return files[: index + 1]


@pytest.fixture
def at_migration(db_server_url: str) -> Iterator[Any]:
    """Makes databases at a given migration (Supabase's default privileges first); drops them."""
    names: list[str] = []

    def make(files: list[Path]) -> str:
        name = f"calls_batch_get_rollback_{uuid.uuid4().hex[:12]}"
        names.append(name)
        url = create_database(db_server_url, name)
        supabase_default_privileges(url)
        apply_migrations(url, files)
        return url

    yield make
    for name in names:
        drop_database(db_server_url, name)


def schema(url: str) -> str:
    """The schema as pg_dump prints it, without its per-run \\restrict key."""
    done = run("pg_dump", "--dbname", url, "--schema-only", "--no-owner")
    assert done.returncode == 0, done.stderr
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def summary(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SUMMARY).fetchall()


def test_the_down_script_restores_the_previous_schema_data_and_answers(at_migration: Any) -> None:
    before = at_migration(migrations_through("20250101000000_call_batches.sql"))
    url = at_migration(migrations_through(COUNTERS_MIGRATION))
    with psycopg.connect(url, autocommit=True) as conn:
        demo_data.load(conn, demo_data.generate(seed=7, agencies=2, batches_per_agency=3))
        conn.execute("update public.campaign_contacts set status = 'completed'"
                     " where status = 'queued'")
        contacts = conn.execute("select count(*) from public.campaign_contacts").fetchone()
    answers = summary(url)
    assert any(row[1] for row in answers), "no counters: the test would prove nothing"

    done = run("psql", "--dbname", url, "--single-transaction", "--variable", "ON_ERROR_STOP=1",
               "--quiet", "--file", DOWN)
    assert done.returncode == 0, done.stderr

    assert schema(url) == schema(before)
    assert summary(url) == answers
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from public.campaign_contacts").fetchone() == contacts

    # Up again: the same counters, now from a ledger.
    apply_migrations(url, migrations_through(COUNTERS_MIGRATION)[-1:])
    assert summary(url) == answers
    with psycopg.connect(url) as conn:
        row = conn.execute("select count(*) from public.call_batch_counters").fetchone()
    assert row is not None
    assert row[0] > 0
