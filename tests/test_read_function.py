"""The read function itself, as any signed-in user may call it through PostgREST: its arguments
checked, executable by authenticated alone, and the agency that its policies rely on kept by the
database."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.database import T0, Seeder, as_authenticated

POSITION = "a position needs after_created_at and after_id, and no contact_offset"
CALL = (
    "select public.calls_batch_get(%(batch_id)s, %(contact_status)s, %(contact_limit)s,"
    " %(contact_offset)s, %(after_created_at)s, %(after_id)s)::text"
)


def call(conn: psycopg.Connection[Any], **arguments: Any) -> dict[str, Any]:
    values = {"batch_id": uuid4(), "contact_status": None, "contact_limit": 50,
              "contact_offset": 0, "after_created_at": None, "after_id": None, **arguments}
    row = conn.execute(CALL, values).fetchone()
    assert row is not None
    document: dict[str, Any] = json.loads(row[0])
    return document


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"contact_limit": 0}, "contact_limit must be between 1 and 200"),
        ({"contact_limit": 201}, "contact_limit must be between 1 and 200"),
        ({"contact_limit": None}, "contact_limit must be between 1 and 200"),
        ({"contact_offset": -1}, "contact_offset must be 0 or more"),
        ({"contact_offset": None}, "contact_offset must be 0 or more"),
        ({"after_id": uuid4()}, POSITION),
        ({"after_created_at": T0}, POSITION),
        ({"after_created_at": T0, "after_id": uuid4(), "contact_offset": 3}, POSITION),
    ],
)
def test_arguments_out_of_range_are_refused_as_a_client_error(
    db: Seeder, arguments: dict[str, Any], message: str
) -> None:
    _, user_id = db.agency_with_user()
    with as_authenticated(db.conn, user_id) as conn, pytest.raises(psycopg.Error) as caught:
        call(conn, **arguments)
    # 22023, invalid_parameter_value: PostgREST answers it with a 400.
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary == message


def test_the_largest_page_is_200_contacts_and_one_more(db: Seeder) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id)
    db.conn.execute(
        "insert into public.campaign_contacts (batch_id, phone_number)"
        " select %s, '+1555' from generate_series(1, 250)",
        (batch_id,),
    )
    with as_authenticated(db.conn, user_id) as conn:
        assert len(call(conn, batch_id=batch_id, contact_limit=200)["contacts"]) == 201


def test_only_authenticated_may_execute_it(db: Seeder) -> None:
    signature = "public.calls_batch_get(uuid, text, integer, integer, timestamptz, uuid)"
    row = db.conn.execute(
        "select has_function_privilege('authenticated', %(f)s, 'execute'),"
        " has_function_privilege('anon', %(f)s, 'execute'),"
        " has_function_privilege('calls_batch_get', %(f)s, 'execute'),"
        " p.prosecdef, p.provolatile, p.proconfig"
        " from pg_proc p where p.oid = %(f)s::regprocedure",
        {"f": signature},
    ).fetchone()
    assert row is not None
    authenticated, anon, function_role, definer, volatility, config = row
    assert (authenticated, anon, function_role) == (True, False, False)
    # Security invoker and stable (PostgREST may then call it by GET, and a read replica
    # answer it), with a search_path of its own.
    assert (definer, volatility) == (False, "s")
    assert "search_path=\"\"" in config


def test_a_contacts_agency_is_its_batchs_whatever_the_writer_says(db: Seeder) -> None:
    mine, _ = db.agency_with_user()
    theirs, _ = db.agency_with_user()
    batch_id = db.batch(mine)
    contact = db.contact(batch_id, agency_id=theirs)
    assert agency_of_contact(db, contact) == mine

    # Moved to a batch of another agency, it goes with it.
    other_batch = db.batch(theirs)
    db.conn.execute("update public.campaign_contacts set batch_id = %s where id = %s",
                    (other_batch, contact))
    assert agency_of_contact(db, contact) == theirs
    # Set by hand against its batch, the database refuses it.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.conn.execute("update public.campaign_contacts set agency_id = %s where id = %s",
                        (mine, contact))


def agency_of_contact(db: Seeder, contact: UUID) -> UUID:
    row = db.conn.execute(
        "select agency_id from public.campaign_contacts where id = %s", (contact,)
    ).fetchone()
    assert row is not None
    agency: UUID = row[0]
    return agency


def test_a_batch_moved_to_another_agency_takes_its_contacts_and_counters_along(
    db: Seeder,
) -> None:
    mine, me = db.agency_with_user()
    theirs, them = db.agency_with_user()
    batch_id = db.batch(mine)
    db.contacts(batch_id, 3, status="completed", step=timedelta(seconds=1))
    db.contacts(batch_id, 2, status="queued")

    db.conn.execute("update public.call_batches set agency_id = %s where id = %s",
                    (theirs, batch_id))

    with as_authenticated(db.conn, them) as conn:
        read = call(conn, batch_id=batch_id)
    assert read["batch"]["agency_id"] == str(theirs)
    assert (read["batch"]["total_contacts"], read["batch"]["completed"],
            read["batch"]["queued"]) == (5, 3, 2)
    assert len(read["contacts"]) == 5
    with as_authenticated(db.conn, me) as conn:
        assert call(conn, batch_id=batch_id)["batch"] is None
        # What the old agency still sees of the ledger adds up to nothing.
        row = conn.execute("select coalesce(sum(delta), 0) from public.call_batch_counters")
        assert row.fetchone() == (0,)
