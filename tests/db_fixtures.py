"""Fixtures for tests on a real PostgreSQL (``from tests.db_fixtures import *`` in conftest).

The server is ``TEST_DATABASE_URL`` when set (a URL whose role may create databases), else an
embedded PostgreSQL started once per session. Either way each session works in fresh databases of
its own, with every migration applied, and drops them at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from calls_batch_get.store.postgres import PostgresStore
from scripts.localdb import apply_migrations, create_database, drop_database, embedded_postgres
from tests.database import Seeder, truncate_all

__all__ = ["database_url", "db", "db_server_url", "fresh_database", "pg_store"]

STORE_TIMEOUT_SECONDS = 5.0


@pytest.fixture(scope="session")
def db_server_url() -> Iterator[str]:
    """A URL of the server (its maintenance database), where databases can be created."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_postgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def fresh_database(db_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes a new, migrated, empty database and returns its URL; all are dropped at the end."""
    names: list[str] = []

    def make() -> str:
        name = f"calls_batch_get_test_{uuid.uuid4().hex[:12]}"
        url = create_database(db_server_url, name)
        names.append(name)
        apply_migrations(url)
        return url

    yield make
    for name in names:
        drop_database(db_server_url, name)


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[], str]) -> str:
    """The session's shared database; ``db`` empties it before each test that uses it."""
    return fresh_database()


@pytest.fixture
def db(database_url: str) -> Iterator[Seeder]:
    """A clean set of tables (truncated: faster than a new database) and an autocommit
    connection to fill them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_all(conn)
        yield Seeder(conn)


@pytest.fixture
def pg_store(database_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(database_url, STORE_TIMEOUT_SECONDS)
    yield store
    store.close()
