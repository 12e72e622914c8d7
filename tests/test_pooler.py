"""The direct store through a real transaction pooler (PgBouncer, pool_mode = transaction), as a
Cloud Function reaches Supabase on port 6543: a statement prepared in one transaction's server
session is gone in the next, so the store must never rely on one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from calls_batch_get.params import BatchQuery
from calls_batch_get.store.postgres import PostgresStore
from tests.database import Seeder
from tests.db_fixtures import FUNCTION_PASSWORD
from tests.pooler import transaction_pooler
from tests.tokens import caller_of
from tests.wire_proxy import proxied_url

# More than psycopg's prepare_threshold (5): by then it would have prepared each statement.
REPEATS = 12


@pytest.fixture
def pooled_store(function_url: str) -> Iterator[PostgresStore]:
    with transaction_pooler(function_url, "calls_batch_get", FUNCTION_PASSWORD) as port:
        # One connection: every read and probe goes the same client connection to the pooler.
        store = PostgresStore(proxied_url(function_url, port), 5.0, max_connections=1)
        try:
            yield store
        finally:
            store.close()


def test_reads_through_a_transaction_pooler_keep_answering(
    db: Seeder, pooled_store: PostgresStore
) -> None:
    agency_id, user_id = db.agency_with_user()
    batch_id = db.batch(agency_id, from_number="+15550100")
    db.contacts(batch_id, count=3)
    for _ in range(REPEATS):
        read = pooled_store.read(caller_of(user_id), BatchQuery(batch_id=batch_id))
        assert read.batch is not None
        assert read.batch.from_number == "+15550100"
        assert (len(read.page.contacts), read.page.total) == (3, 3)


def test_health_probes_through_a_transaction_pooler_keep_answering(
    db: Seeder, pooled_store: PostgresStore
) -> None:
    assert [pooled_store.ping() for _ in range(REPEATS)] == [True] * REPEATS
