"""Two walls between agencies. The read function keeps a read to the caller's agency itself (the
first wall); row-level security keeps it there again whatever the function says (the second),
because both stores run it as the caller.

The second wall is tried the hard way: the read function is replaced by copies without its agency
conditions, and another agency's batch must still be a 404 with none of its rows in what the
database sent back (the bytes on the wire for the direct store, PostgREST's body for the other).
A control proves the instrument: the same copies, read past the policies, do leak.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

import psycopg
import pytest

from calls_batch_get.auth import Caller
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import BatchRead, Store
from calls_batch_get.store.postgres import READ_STATEMENT, PostgresStore, read_parameters
from calls_batch_get.store.supabase import create_supabase_store
from scripts.localdb import with_role
from tests.conftest import ANON_KEY
from tests.database import Seeder, nested_plans, plan_nodes, scans_of
from tests.db_fixtures import AUTHENTICATOR_PASSWORD
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys, mounted
from tests.tokens import TokenFactory
from tests.wire_proxy import WireProxy, proxied_url

SUPABASE_URL = "https://second-wall.supabase.co"
READ_FUNCTION = "public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)"
# The read function's agency conditions, as its migration writes them: the batch's own, and the
# gate of each read of contacts (where an offset's page starts, and the page).
WALLS = {
    "batch": (" and v.agency_id = (select c.agency_id from caller c)",),
    "contacts": ("and exists (select 1 from batch)\n", "and exists (select 1 from batch b)\n"),
}


@dataclass(frozen=True)
class Tenants:
    url: str
    theirs: UUID  # a batch of agency A
    secrets: tuple[bytes, ...]  # what of it must never leave the database
    outsider: UUID  # a user of agency B


@pytest.fixture(scope="module")
def tenants(fresh_database: Callable[[], str]) -> Tenants:
    """Two agencies in a database of their own (its read function gets replaced)."""
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        db = Seeder(conn)
        agency_a, _ = db.agency_with_user("Agency A")
        campaign = db.campaign(agency_a, name="Secret Campaign of A")
        batch = db.batch(agency_a, campaign_id=campaign)
        contacts = db.contacts(batch, 20, first_name="SecretFirstName")
        _, outsider = db.agency_with_user("Agency B")
    secrets = (str(batch).encode(), b"Secret Campaign of A", b"SecretFirstName",
               *(str(c).encode() for c in contacts))
    return Tenants(url, batch, secrets, outsider)


@contextlib.contextmanager
def read_function_without(url: str, conditions: tuple[str, ...] = ()) -> Iterator[None]:
    """The read function with agency conditions taken out, for the block's length."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select pg_get_functiondef(%s::regprocedure)", (READ_FUNCTION,))
        original = row.fetchone()
        assert original is not None
        definition: str = original[0]
        copy = definition
        for condition in conditions:
            assert copy.count(condition) == 1, f"the migration's {condition!r} has changed"
            copy = copy.replace(condition, "")
        if conditions:
            conn.execute(copy)
        try:
            yield
        finally:
            conn.execute(definition)


def leaked(received: bytes, tenants: Tenants) -> list[bytes]:
    return [secret for secret in tenants.secrets if secret in received]


@dataclass
class Reader:
    """A store as it ships, and what its database sent back to it."""

    store: Store
    received: Callable[[], bytes]
    forget: Callable[[], None]


@pytest.fixture(params=["postgres", "supabase"])
def reader(
    request: pytest.FixtureRequest,
    tenants: Tenants,
    function_url_of: Callable[[str], str],
    proxy: WireProxy,
    project_keys: ProjectKeys,
) -> Iterator[Reader]:
    if request.param == "postgres":
        # The server speaks in the clear on its unix socket: the proxy sees the rows themselves.
        assert proxy.upstream_is_unix
        store = PostgresStore(proxied_url(function_url_of(tenants.url), proxy.port), 5.0)
        yield Reader(store, proxy.received, proxy.mark)
        store.close()
        return
    standin = PostgrestStandIn(
        with_role(tenants.url, "authenticator", AUTHENTICATOR_PASSWORD),
        project_keys,
        keep_bodies=True,
    )
    with mounted(standin, SUPABASE_URL):
        yield Reader(
            create_supabase_store(SUPABASE_URL, ANON_KEY, 5.0),
            lambda: b"".join(s.body for s in standin.served),
            standin.served.clear,
        )


def read_theirs(reader: Reader, tenants: Tenants, caller: Caller) -> BatchRead:
    reader.forget()
    return reader.store.read(caller, BatchQuery(batch_id=tenants.theirs, limit=200))


@pytest.mark.parametrize("wall", [None, *WALLS], ids=["as-shipped", *WALLS])
def test_another_agencys_batch_is_a_404_and_none_of_it_leaves_the_database(
    reader: Reader, tenants: Tenants, tokens: TokenFactory, wall: str | None
) -> None:
    outsider = tokens.caller(tenants.outsider)
    with read_function_without(tenants.url, () if wall is None else WALLS[wall]):
        read = read_theirs(reader, tenants, outsider)
    # The handler's 404: the caller has an agency, and no such batch is in it.
    assert read.agency_id is not None
    assert read.batch is None
    assert read.page.contacts == []
    received = reader.received()
    assert received, "nothing was recorded: the test would prove nothing"
    assert leaked(received, tenants) == []


@pytest.mark.parametrize("wall", list(WALLS))
def test_control_without_the_policies_the_same_copies_do_leak(
    tenants: Tenants, wall: str, proxy: WireProxy
) -> None:
    """The instrument works: read past row-level security (as the tables' owner, with the
    outsider's claims), the copy sends another agency's rows, and the wire shows them."""
    claims = f'{{"sub": "{tenants.outsider}", "role": "authenticated"}}'
    query = BatchQuery(batch_id=tenants.theirs, limit=200)
    with (
        read_function_without(tenants.url, WALLS[wall]),
        psycopg.connect(proxied_url(tenants.url, proxy.port), autocommit=True) as owner,
    ):
        proxy.mark()
        with owner.transaction():
            owner.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
            owner.execute(READ_STATEMENT, read_parameters(query))
    assert leaked(proxy.received(), tenants) != []


@pytest.mark.parametrize("offset", [0, 5])
def test_the_first_wall_keeps_another_agency_out_even_read_past_the_policies(
    tenants: Tenants, offset: int
) -> None:
    """The read function as shipped, run by the tables' owner (row-level security does not
    apply): its own conditions already return nothing of another agency's batch, and read none
    of its contacts (neither where an offset's page starts nor the page)."""
    claims = f'{{"sub": "{tenants.outsider}", "role": "authenticated"}}'
    query = BatchQuery(batch_id=tenants.theirs, limit=200, offset=offset)
    with (
        psycopg.connect(tenants.url, autocommit=True) as owner,
        nested_plans(owner) as plans,
        owner.transaction(),
    ):
        owner.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        row = owner.execute(READ_STATEMENT, read_parameters(query)).fetchone()
    assert row is not None
    document = json.loads(row[0])
    assert (document["batch"], document["contacts"]) == (None, [])
    assert document["agency_id"] is not None
    (read,) = [p for p in plans if "with caller as" in p["Query Text"]]
    planned = [n for n in plan_nodes(read["Plan"]) if n.get("Relation Name") == "campaign_contacts"]
    assert planned, "the plan has no read of contacts: the test would prove nothing"
    scans = scans_of(read["Plan"], "campaign_contacts")
    assert sum(float(n["Actual Rows"]) * n["Actual Loops"] for n in scans) == 0
