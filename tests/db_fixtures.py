"""Fixtures for tests on a real PostgreSQL (``from tests.db_fixtures import *`` in conftest).

The server is ``TEST_DATABASE_URL`` when set (a URL whose role may create databases), else an
embedded PostgreSQL started once per session. Either way each session works in fresh databases of
its own, with every migration applied, and drops them at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from calls_batch_get.store.postgres import PostgresStore
from scripts.localdb import (
    apply_migrations,
    create_database,
    drop_database,
    embedded_postgres,
    enable_function_role,
    supabase_default_privileges,
    supabase_roles,
    with_role,
)
from tests.database import Seeder, truncate_all

__all__ = [
    "authenticator_url",
    "database_url",
    "db",
    "db_server_url",
    "fresh_database",
    "function_url",
    "function_url_of",
    "pg_store",
]

STORE_TIMEOUT_SECONDS = 5.0
# Test passwords of the roles that log in: PostgREST's, and the function's own.
AUTHENTICATOR_PASSWORD = "authenticator-password-for-tests"
FUNCTION_PASSWORD = "function-password-for-tests"


@pytest.fixture(scope="session")
def db_server_url() -> Iterator[str]:
    """A URL of the server (its maintenance database), where databases can be created, with
    Supabase's roles in place."""
    configured = os.environ.get("TEST_DATABASE_URL")
    with contextlib.ExitStack() as stack:
        url = configured or stack.enter_context(embedded_postgres()).url
        supabase_roles(url, AUTHENTICATOR_PASSWORD)
        yield url


@pytest.fixture(scope="session")
def fresh_database(db_server_url: str) -> Iterator[Callable[..., str]]:
    """Makes a new, empty database with the given migrations (default: every one; ``[]``: none)
    and returns its URL; all are dropped at the end. Each has Supabase's default privileges
    before the migrations, as a project's has."""
    names: list[str] = []

    def make(files: Sequence[Path] | None = None) -> str:
        name = f"calls_batch_get_test_{uuid.uuid4().hex[:12]}"
        url = create_database(db_server_url, name)
        names.append(name)
        supabase_default_privileges(url)
        apply_migrations(url, files)
        return url

    yield make
    for name in names:
        drop_database(db_server_url, name)


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[], str]) -> str:
    """The session's shared database; ``db`` empties it before each test that uses it."""
    return fresh_database()


@pytest.fixture(scope="session")
def function_url_of(database_url: str) -> Callable[[str], str]:
    """The URL the function connects to a database with: as its own role, which the migrations
    created (a server's roles serve all its databases)."""
    enable_function_role(database_url, FUNCTION_PASSWORD)
    return lambda url: with_role(url, "calls_batch_get", FUNCTION_PASSWORD)


@pytest.fixture(scope="session")
def function_url(database_url: str, function_url_of: Callable[[str], str]) -> str:
    """The session database, as the function reads it."""
    return function_url_of(database_url)


@pytest.fixture(scope="session")
def authenticator_url(database_url: str) -> str:
    """The session database, as PostgREST logs in to it."""
    return with_role(database_url, "authenticator", AUTHENTICATOR_PASSWORD)


@pytest.fixture
def db(database_url: str) -> Iterator[Seeder]:
    """A clean set of tables (truncated: faster than a new database) and an autocommit
    connection to fill them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_all(conn)
        yield Seeder(conn)


@pytest.fixture
def pg_store(function_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(function_url, STORE_TIMEOUT_SECONDS)
    yield store
    store.close()
