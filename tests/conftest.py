from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import functions_framework
import pytest
from flask import Flask
from flask.testing import FlaskClient

from calls_batch_get.handler import Handler
from calls_batch_get.settings import Settings, load_settings
from tests.db_fixtures import *  # noqa: F403 - the real-PostgreSQL fixtures, session-wide
from tests.mutation_session import (
    fastest_first,
    mutant_under_test,
    record_session,
    recorded_durations,
)
from tests.postgrest_standin import ProjectKeys
from tests.tokens import HS256_SECRET, KeySetServer, SigningKey, TokenFactory
from tests.wire_proxy import proxy  # noqa: F401 - the loopback proxy in front of the database

ROOT = Path(__file__).resolve().parent.parent
# The project's keys: the function holds the publishable one; the service key is only known to
# the PostgREST stand-in's gateway, as a key that others might use.
ANON_KEY = "sb_publishable_key_for_tests"
SERVICE_KEY = "sb_secret_key_for_tests"


# Made when the suite is collected, not per session: mutation testing forks each mutant's
# session from a process that collected the suite once, and an RSA key costs it 0.1 s.
_EC_KEY = SigningKey.ec()
_RSA_KEY = SigningKey.rsa()


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return _EC_KEY


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return _RSA_KEY


@pytest.fixture
def key_server(ec_key: SigningKey, rsa_key: SigningKey) -> Iterator[KeySetServer]:
    server = KeySetServer(keys=[ec_key.public_jwk(), rsa_key.public_jwk()]).start()
    yield server
    server.stop()


@pytest.fixture
def env(key_server: KeySetServer) -> dict[str, str]:
    """A complete configuration whose Supabase URL is the local key-set server."""
    return {
        "SUPABASE_URL": key_server.url,
        "SUPABASE_ANON_KEY": ANON_KEY,
        "SUPABASE_JWT_SECRET": HS256_SECRET,
        "DB_TIMEOUT_SECONDS": "2",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def tokens(env: dict[str, str], ec_key: SigningKey, rsa_key: SigningKey) -> TokenFactory:
    return TokenFactory(issuer=f"{env['SUPABASE_URL']}/auth/v1", ec_key=ec_key, rsa_key=rsa_key)


@pytest.fixture(scope="session")
def project_keys(ec_key: SigningKey, rsa_key: SigningKey) -> ProjectKeys:
    """The project as the PostgREST stand-in knows it: the same keys the function verifies."""
    return ProjectKeys(
        anon_key=ANON_KEY,
        service_key=SERVICE_KEY,
        public_jwks=(ec_key.public_jwk(), rsa_key.public_jwk()),
        jwt_secret=HS256_SECRET,
    )


AppFactory = Callable[..., FlaskClient]


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Iterator[AppFactory]:
    """The real Functions Framework app serving main.py, with env plus overrides
    (a value of None removes a variable). Each app's instance is shut down after the test, as
    its process would be, so that its pool's connections do not outlive it."""
    handlers: list[Handler] = []

    def make(**overrides: str | None) -> FlaskClient:
        for name in [*env, "DATABASE_URL", "CORS_ALLOW_ORIGINS", "SUPABASE_JWKS_URL",
                     "GOOGLE_CLOUD_PROJECT", "SUPABASE_SERVICE_ROLE_KEY"]:
            monkeypatch.delenv(name, raising=False)
        for name, value in {**env, **overrides}.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        app: Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target="calls_batch_get", source=str(ROOT / "main.py")
        )
        # Functions Framework loads main.py as the module "main", anew for each app.
        handlers.append(sys.modules["main"]._handle)
        return app.test_client()

    yield make
    for handler in handlers:
        handler.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `-m "not database"` is the suite that needs no PostgreSQL (mutation testing's fast path).
    for item in items:
        if "db_server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)
    mutant = mutant_under_test()
    if mutant is not None:
        order = fastest_first([item.nodeid for item in items], mutant, recorded_durations())
        items[:] = [items[index] for index in order]


# Under mutmut, each mutant's session records its time and how many tests it ran before -x.
_STARTED = pytest.StashKey[float]()
_RUN = pytest.StashKey[int]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_STARTED] = time.monotonic()
    session.stash[_RUN] = 0


def pytest_runtest_call(item: pytest.Item) -> None:
    item.session.stash[_RUN] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    mutant = mutant_under_test()
    if mutant is not None:
        record_session(mutant, time.monotonic() - session.stash[_STARTED],
                       session.stash[_RUN], int(exitstatus))
