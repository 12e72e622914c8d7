"""The counters migration's down script (supabase/rollback/): a database at the counters migration
goes back to the previous schema with its data and the old view's answers, and the migration
applied again gives the same counters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from scripts import demo_data
from scripts.localdb import REPO_ROOT, apply_migrations, migration_files
from tests.test_recipes import psql_file, run

DOWN = REPO_ROOT / "supabase" / "rollback" / "20261129000000_call_batch_counters.down.sql"
COUNTERS_MIGRATION = "20261129000000_call_batch_counters.sql"
SUMMARY = ("select id, total_contacts, queued, in_progress, completed, failed, skipped,"
           " progress_percentage, remaining_count from public.v_call_batch_summary order by id")


def migrations_through(name: str) -> list[Path]:
    files = migration_files()
    (index,) = [n for n, path in enumerate(files) if path.name == name]
    return files[: index + 1]


def schema(url: str) -> str:
    """The schema as pg_dump prints it, without its per-run \\restrict key."""
    done = run("pg_dump", "--dbname", url, "--schema-only", "--no-owner")
    assert done.returncode == 0, done.stderr
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def summary(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SUMMARY).fetchall()


def test_the_down_script_restores_the_previous_schema_data_and_answers(
    fresh_database: Callable[..., str],
) -> None:
    before = fresh_database(migrations_through("20250101000000_call_batches.sql"))
    url = fresh_database(migrations_through(COUNTERS_MIGRATION))
    with psycopg.connect(url, autocommit=True) as conn:
        demo_data.load(conn, demo_data.generate(seed=7, agencies=2, batches_per_agency=3))
        conn.execute("update public.campaign_contacts set status = 'completed'"
                     " where status = 'queued'")
        contacts = conn.execute("select count(*) from public.campaign_contacts").fetchone()
    answers = summary(url)
    assert any(row[1] for row in answers), "no counters: the test would prove nothing"

    done = psql_file(url, DOWN)
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
