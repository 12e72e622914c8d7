"""What the API's roles may do with the schema, on a database set up as Supabase sets one up (its
default privileges applied before the migrations, as the fixtures do): each property asked of the
catalog, and each action tried for real as anon and as a signed-in user of another agency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.database import Seeder, as_authenticated

TABLES = ("agencies", "users", "campaigns", "agent_mappings", "call_batches",
          "campaign_contacts", "call_batch_counters", "v_call_batch_summary")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
API_ROLES = ("anon", "authenticated")
# The security definer function the policies need; nothing else of that kind is callable.
POLICY_HELPER = "request_agency_id"


def privileges(conn: psycopg.Connection[Any], role: str, table: str) -> set[str]:
    return {
        privilege for privilege in TABLE_PRIVILEGES
        if conn.execute(
            "select has_table_privilege(%s, %s, %s)", (role, f"public.{table}", privilege)
        ).fetchone() == (True,)
    }


@pytest.mark.parametrize("table", TABLES)
def test_anon_may_do_nothing_and_authenticated_only_select(db: Seeder, table: str) -> None:
    assert privileges(db.conn, "anon", table) == set()
    assert privileges(db.conn, "authenticated", table) == {"SELECT"}


def test_no_sequence_is_usable_by_the_api_roles(db: Seeder) -> None:
    rows = db.conn.execute(
        "select c.oid::regclass::text, r.role, p.privilege,"
        " has_sequence_privilege(r.role, c.oid, p.privilege)"
        " from pg_class c, unnest(%s::text[]) r(role),"
        " unnest(array['USAGE', 'SELECT', 'UPDATE']) p(privilege)"
        " where c.relkind = 'S' and c.relnamespace = 'public'::regnamespace",
        (list(API_ROLES),),
    ).fetchall()
    assert rows, "no sequence found: the test would prove nothing"
    assert [r for r in rows if r[3]] == []


def functions(conn: psycopg.Connection[Any]) -> list[tuple[str, bool, list[str] | None]]:
    """(signature, security definer, settings) of every function in public."""
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.prosecdef, p.proconfig from pg_proc p"
        " where p.pronamespace = 'public'::regnamespace order by 1"
    ).fetchall()
    return [(name, definer, config) for name, definer, config in rows]


def test_no_security_definer_function_but_the_policies_helper_is_callable(db: Seeder) -> None:
    callable_definers = [
        (name, role)
        for name, definer, _ in functions(db.conn) if definer
        for role in API_ROLES
        if db.conn.execute(
            "select has_function_privilege(%s, %s, 'execute')", (role, name)
        ).fetchone() == (True,)
    ]
    assert callable_definers == [(f"{POLICY_HELPER}()", "authenticated")]


def test_every_function_sets_its_search_path(db: Seeder) -> None:
    found = functions(db.conn)
    assert len(found) >= 9
    assert [name for name, _, config in found
            if not any(c.startswith("search_path=") for c in config or [])] == []


def test_every_foreign_key_is_found_by_an_index(db: Seeder) -> None:
    """Each foreign key's referencing rows are found through an index that leads with its first
    column (what a cascade, a set null or a referenced row's delete looks them up by). The
    contacts' (batch_id, agency_id) is found by the page index that leads with batch_id:
    splinter's 0001 asks for an index of exactly the key's columns, which would be a third
    index on the largest table for lookups that one already serves."""
    unindexed = db.conn.execute(
        "select c.conrelid::regclass::text, c.conname from pg_constraint c"
        " where c.contype = 'f' and c.connamespace = 'public'::regnamespace"
        " and not exists (select 1 from pg_index i where i.indrelid = c.conrelid"
        "   and i.indkey[0] = c.conkey[1])"
    ).fetchall()
    assert unindexed == []


@pytest.fixture
def batch(db: Seeder) -> tuple[UUID, UUID]:
    agency_id = db.agency()
    batch_id = db.batch(agency_id)
    db.contacts(batch_id, 3)
    return agency_id, batch_id


@pytest.fixture
def as_anon(db: Seeder, batch: tuple[UUID, UUID]) -> Iterator[psycopg.Connection[Any]]:
    with db.conn.transaction(force_rollback=True):
        db.conn.execute("set local role anon")
        yield db.conn


# Each tried in a savepoint of its own, so that one refusal does not end the next try.
ATTEMPTS = (
    "truncate public.campaign_contacts",
    "delete from public.campaign_contacts",
    "update public.users set agency_id = %(agency)s",
    "insert into public.campaign_contacts (batch_id, phone_number) values (%(batch)s, '+1')",
    "insert into public.call_batch_counters (batch_id, agency_id, status, delta)"
    " values (%(batch)s, %(agency)s, 'pending', 1000)",
    "select nextval('public.call_batch_counters_id_seq')",
    "select public.call_batch_counters_fold(%(batch)s)",
    "select public.call_batch_counters_fold_every()",
)


def refused(conn: psycopg.Connection[Any], statement: str, values: dict[str, Any]) -> bool:
    try:
        with conn.transaction():
            conn.execute(statement, values)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize("statement", ATTEMPTS)
def test_anon_is_refused_each_action(
    as_anon: psycopg.Connection[Any], batch: tuple[UUID, UUID], statement: str
) -> None:
    agency_id, batch_id = batch
    assert refused(as_anon, statement, {"agency": agency_id, "batch": batch_id})


@pytest.mark.parametrize("statement", ATTEMPTS)
def test_a_user_of_another_agency_is_refused_each_action(
    db: Seeder, batch: tuple[UUID, UUID], statement: str
) -> None:
    agency_id, batch_id = batch
    _, outsider = db.agency_with_user()
    with as_authenticated(db.conn, outsider) as conn:
        assert refused(conn, statement, {"agency": agency_id, "batch": batch_id})
    # Nothing was lost: the contacts and their counters are all there.
    assert db.conn.execute(
        "select count(*), (select sum(delta) from public.call_batch_counters)"
        " from public.campaign_contacts"
    ).fetchone() == (3, 3)


def test_anon_reads_nothing(as_anon: psycopg.Connection[Any], batch: tuple[UUID, UUID]) -> None:
    for table in TABLES:
        assert refused(as_anon, f"select 1 from public.{table}", {}), table


def test_what_a_later_migration_creates_starts_closed(db: Seeder) -> None:
    """Supabase's default privileges would open a new table to anon and authenticated; after
    the migrations, what the same role creates opens only where its migration grants it."""
    with db.conn.transaction(force_rollback=True):
        db.conn.execute("create table public.later_table (id int)")
        db.conn.execute("create function public.later_function() returns int"
                        " language sql as 'select 1'")
        assert privileges(db.conn, "anon", "later_table") == set()
        assert privileges(db.conn, "authenticated", "later_table") == set()
        for role in API_ROLES:
            assert db.conn.execute(
                "select has_function_privilege(%s, 'public.later_function()', 'execute')",
                (role,),
            ).fetchone() == (False,)
        # The fixtures did give the API roles Supabase's defaults: service_role keeps them.
        assert privileges(db.conn, "service_role", "later_table") == set(TABLE_PRIVILEGES)
