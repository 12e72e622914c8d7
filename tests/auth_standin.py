"""A Supabase Auth stand-in for what a function asks of Auth: the project's key set (the JWKS our
function verifies tokens with) and ``GET /auth/v1/user`` (what supabase-js's ``auth.getUser``
calls). It verifies the bearer token with the project's keys, as Auth does, but looks nothing up:
the real service also reads the user and their session from its tables, so this one is, if
anything, quicker than what it stands for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from tests.postgrest_standin import ProjectKeys, Refused
from tests.tokens import JWKS_PATH

USER_PATH = "/auth/v1/user"


@dataclass(frozen=True)
class AuthStandIn:
    keys: ProjectKeys

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == JWKS_PATH and request.method == "GET":
            return _json(200, {"keys": list(self.keys.public_jwks)})
        if request.url.path != USER_PATH or request.method != "GET":
            return _json(404, {"code": 404, "error_code": "not_found", "msg": "Not found"})
        if self.keys.api_key_role(request.headers.get("apikey")) is None:
            return _json(401, {"message": "Invalid API key"})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _json(401, {"code": 401, "error_code": "no_authorization",
                               "msg": "This endpoint requires a Bearer token"})
        try:
            claims = self.keys.claims_of(token)
        except Refused as refused:
            return _json(403, {"code": 403, "error_code": "bad_jwt",
                               "msg": f"invalid JWT: {refused.body['message']}"})
        if claims.get("role") != "authenticated" or "sub" not in claims:
            return _json(403, {"code": 403, "error_code": "bad_jwt",
                               "msg": "invalid claim: missing sub claim"})
        issued = datetime.fromtimestamp(int(claims.get("iat", 0)), UTC).isoformat()
        return _json(200, {
            "id": claims["sub"],
            "aud": claims.get("aud", "authenticated"),
            "role": "authenticated",
            "email": claims.get("email", ""),
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "identities": [],
            "created_at": issued,
            "updated_at": issued,
            "is_anonymous": False,
        })


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
