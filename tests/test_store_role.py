"""The direct store refuses to serve as a role that could read past row-level security."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from calls_batch_get.log import configure
from calls_batch_get.params import BatchQuery
from calls_batch_get.store import StoreError
from calls_batch_get.store.postgres import FETCH_FAILED, PostgresStore, RoleRefused
from scripts.localdb import with_role
from tests.database import Seeder, backend_pids
from tests.tokens import caller_of

PASSWORD = "role-check-password"
# Each role, how it is made, and the start of the line the store refuses it with.
ROLES = {
    "rc_superuser": ("superuser", "is a superuser"),
    "rc_bypassrls": ("bypassrls", "has BYPASSRLS"),
    "rc_member_of_service_role": ("in role service_role", "may act as service_role, which"),
    "rc_member_of_postgres": ("in role postgres", "may act as postgres, which"),
    "rc_not_authenticated": ("", "may not act as authenticated"),
    "rc_owner": ("in role authenticated", "owns the tables it reads"),
}


@pytest.fixture(scope="module")
def owned_elsewhere(fresh_database: Callable[[], str]) -> str:
    """A database whose tables belong to rc_owner (as a project's may belong to a role that
    logs in), with every role of ROLES able to log in."""
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for role, (options, _) in ROLES.items():
            conn.execute(
                sql.SQL("do $$ begin if not exists (select from pg_roles where rolname = {})"
                        " then execute {}; end if; end $$").format(
                    sql.Literal(role),
                    sql.Literal(f"create role {role} login password '{PASSWORD}' {options}"),
                )
            )
        for table in ("campaign_contacts", "call_batches", "users"):
            conn.execute(sql.SQL("alter table public.{} owner to rc_owner").format(
                sql.Identifier(table)))
    return url


@pytest.fixture
def read_as(owned_elsewhere: str) -> Iterator[Callable[[str], PostgresStore]]:
    stores: list[PostgresStore] = []

    def make(role: str) -> PostgresStore:
        stores.append(PostgresStore(with_role(owned_elsewhere, role, PASSWORD), 5.0))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def refusal(store: PostgresStore) -> StoreError:
    with pytest.raises(StoreError) as caught:
        store.read(caller_of(uuid4()), BatchQuery(batch_id=uuid4()))
    return caught.value


@pytest.mark.parametrize("role", list(ROLES))
def test_a_role_that_could_read_past_the_policies_is_refused_for_good(
    read_as: Callable[[str], PostgresStore],
    owned_elsewhere: str,
    capsys: pytest.CaptureFixture[str],
    role: str,
) -> None:
    configure("INFO")  # the instance's log, one JSON line per record on stdout
    store = read_as(role)
    first = refusal(store)
    # The caller sees what any database failure shows; the operator's log says why, once.
    assert (first.status, first.message) == (500, FETCH_FAILED)
    assert isinstance(first.__cause__, RoleRefused)
    expected = f"the database role {role} {ROLES[role][1]}"
    assert str(first.__cause__).startswith(expected)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["severity"], line["message"]) for line in lines] == [
        ("ERROR", f"the direct store refuses to serve: {first.__cause__}")
    ]
    assert PASSWORD not in str(lines)

    # Later reads are refused without asking the database again.
    with psycopg.connect(owned_elsewhere, autocommit=True) as conn:
        # With a timeout, pg_terminate_backend waits until the session is gone: the count
        # below must see only what the second read opened.
        conn.execute("select pg_terminate_backend(pid, 5000) from pg_stat_activity"
                     " where usename = %s", (role,))
        second = refusal(store)
        assert isinstance(second.__cause__, RoleRefused)
        row = conn.execute("select count(*) from pg_stat_activity where usename = %s", (role,))
        assert row.fetchone() == (0,)
    assert capsys.readouterr().out == ""


def test_the_functions_own_role_serves(db: Seeder, pg_store: PostgresStore) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    assert pg_store.read(caller_of(user_id), BatchQuery(batch_id=batch_id)).batch is not None
    assert backend_pids(db.conn)


def test_warming_judges_the_role_once_and_the_reads_stay_refused(
    read_as: Callable[[str], PostgresStore], capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO")
    store = read_as("rc_superuser")
    store.warm()  # ahead of any request: refused then, logged then, and never raised
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["severity"], line["message"]) for line in lines] == [
        ("ERROR", "the direct store refuses to serve: the database role rc_superuser is a"
         " superuser: connect as the role the migrations create for it (README, Deployment)")
    ]
    store.warm()
    assert isinstance(refusal(store).__cause__, RoleRefused)
    assert capsys.readouterr().out == ""
