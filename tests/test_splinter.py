"""Supabase's own database linter, splinter, run against the migrated schema: no security finding
for our objects but the two the product needs (docs/decisions.md, "Grants as narrow as the
product needs").

``tests/splinter/splinter.sql`` is splinter's query of every lint, as the Supabase dashboard's
Advisors run it (github.com/supabase/splinter, ``splinter.sql`` at commit 55db5b1, 2026-04-27).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

SPLINTER = Path(__file__).with_name("splinter") / "splinter.sql"
# pg_graphql is installed in every Supabase project, not in the embedded server: its two lints
# run as if it were.
GRAPHQL_GUARD = "and exists (select 1 from graphql_installed)"
TABLES = ("agencies", "users", "campaigns", "agent_mappings", "call_batches",
          "campaign_contacts", "call_batch_counters", "v_call_batch_summary")
# What the product needs: authenticated reads the tables (under their policies; the read
# function runs as the caller), so pg_graphql shows them to a signed-in user; and the policies'
# helper is security definer (a policy on users that read users would recurse).
EXPECTED = {
    ("authenticated_security_definer_function_executable", "request_agency_id"),
    *(("pg_graphql_authenticated_table_exposed", table) for table in TABLES),
}


def splinter_query() -> tuple[str, str]:
    """Its setting (its own search_path) and its query, run one after the other."""
    setting, _, query = SPLINTER.read_text().partition(";\n")
    assert setting == "set local search_path = ''", "splinter.sql changed: update this test"
    assert query.count(GRAPHQL_GUARD) == 2, "splinter's GraphQL guard moved: update this test"
    return setting, query.replace(GRAPHQL_GUARD, "")


def findings(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.transaction():
        # The schemas PostgREST exposes, which the API-facing lints read (a project's default).
        conn.execute("select set_config('pgrst.db_schemas', 'public, graphql_public', true)")
        setting, query = splinter_query()
        conn.execute(setting.encode())
        cursor = conn.execute(query.encode())
        columns = [c.name for c in cursor.description or []]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def lints(fresh_database: Callable[[], str]) -> list[dict[str, Any]]:
    return findings(fresh_database())


def test_splinter_finds_nothing_but_what_the_product_needs(lints: list[dict[str, Any]]) -> None:
    security = {
        (lint["name"], lint["metadata"].get("name"))
        for lint in lints
        if "SECURITY" in lint["categories"]
        and lint["metadata"] and lint["metadata"].get("schema") == "public"
    }
    assert security == EXPECTED


def test_splinter_finds_only_the_composite_keys_a_leading_index_serves(
    lints: list[dict[str, Any]],
) -> None:
    """Lint 0001 asks for an index of exactly a key's columns. The composite keys that hold a
    batch to its agency's campaign and agent mapping, and a contact to its batch's agency, are
    looked up by their first column, which leads an index of its own (tests/test_grants.py): a
    second index per key would cost every write for lookups the first already serves."""
    unindexed = {
        lint["cache_key"].removeprefix("unindexed_foreign_keys_public_")
        for lint in lints if lint["name"] == "unindexed_foreign_keys"
    }
    assert unindexed == {
        "call_batches_call_batches_agent_mapping_agency_fkey",
        "call_batches_call_batches_campaign_agency_fkey",
        "campaign_contacts_campaign_contacts_batch_agency_fkey",
    }


def test_splinter_would_see_the_findings_the_migrations_remove(
    fresh_database: Callable[[], str],
) -> None:
    """The linter run here can fail: with the grants of a project before our migrations'
    revokes, it reports what the issue found."""
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("grant execute on function public.call_batch_counters_fold(uuid) to anon")
        conn.execute("alter function public.request_user_id() reset search_path")
        conn.execute("grant select on public.campaigns to anon")
    names = {(lint["name"], lint["metadata"].get("name")) for lint in findings(url)}
    assert {
        ("anon_security_definer_function_executable", "call_batch_counters_fold"),
        ("function_search_path_mutable", "request_user_id"),
        ("pg_graphql_anon_table_exposed", "campaigns"),
    } <= names
