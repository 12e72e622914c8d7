"""The Auth stand-in that bench/peer.py's original (supabase-js's auth.getUser) asks, over real
HTTP beside the PostgREST stand-in, as one project."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.auth_standin import AuthStandIn
from tests.conftest import ANON_KEY
from tests.postgrest_standin import PostgrestStandIn, ProjectKeys
from tests.scenarios import USER_A
from tests.standin_server import project, serving
from tests.tokens import JWKS_PATH, TokenFactory


@pytest.fixture
def api(authenticator_url: str, project_keys: ProjectKeys) -> Iterator[httpx.Client]:
    rest = PostgrestStandIn(authenticator_url, project_keys)
    with serving(project(rest, AuthStandIn(project_keys))) as url, \
            httpx.Client(base_url=url, headers={"apikey": ANON_KEY}) as client:
        yield client


def test_the_user_of_a_valid_token(api: httpx.Client, tokens: TokenFactory) -> None:
    token = tokens.es256(USER_A)
    response = api.get("/auth/v1/user", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    user = response.json()
    assert (user["id"], user["role"], user["aud"]) == (str(USER_A), "authenticated",
                                                       "authenticated")
    assert user["email"] == "agent@example.com"


@pytest.mark.parametrize(
    ("headers", "status", "error_code"),
    [
        ({}, 401, "no_authorization"),
        ({"Authorization": "Basic abc"}, 401, "no_authorization"),
        ({"Authorization": "Bearer not.a.token"}, 403, "bad_jwt"),
    ],
)
def test_no_valid_token_no_user(
    api: httpx.Client, headers: dict[str, str], status: int, error_code: str
) -> None:
    response = api.get("/auth/v1/user", headers=headers)
    assert response.status_code == status
    assert response.json()["error_code"] == error_code


def test_an_expired_token_is_refused(api: httpx.Client, tokens: TokenFactory) -> None:
    expired = tokens.es256(USER_A, exp=int(time.time()) - 3600)
    response = api.get("/auth/v1/user", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 403
    assert "JWT expired" in response.json()["msg"]


def test_a_key_is_needed(api: httpx.Client, tokens: TokenFactory) -> None:
    token = tokens.es256(USER_A)
    headers = {"apikey": "sb_publishable_other", "Authorization": f"Bearer {token}"}
    response = api.get("/auth/v1/user", headers=headers)
    assert response.status_code == 401


def test_the_key_set_and_the_rest_beside_it(api: httpx.Client, project_keys: ProjectKeys) -> None:
    assert api.get(JWKS_PATH).json() == {"keys": list(project_keys.public_jwks)}
    # The same server's /rest/v1 is PostgREST's: the anon key alone reads as anon.
    assert api.get("/rest/v1/agencies?select=id").json()["code"] == "PGRST100"
