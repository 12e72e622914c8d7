"""Supabase access tokens -> the calling user, or a 401 that says what was wrong."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from uuid import UUID

import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidSubjectError

from calls_batch_get.errors import ApiError, ErrorCode
from calls_batch_get.keyset import KeySetCache, KeySetUnavailable
from calls_batch_get.settings import Settings

ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
AUDIENCE = "authenticated"
# Supabase signs user sessions with this role; anon and service keys carry others.
ROLE = "authenticated"
# Clock skew between Supabase Auth and this instance.
LEEWAY_SECONDS = 30
# An unknown kid refetches the key set at most this often, so garbage kids cannot hammer Auth.
JWKS_REFRESH_COOLDOWN_SECONDS = 30.0
JWKS_LIFESPAN_SECONDS = 600.0
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
REALM = "calls-batch-get"
# RFC 6750's error_description: printable ASCII without a double quote or a backslash.
_DESCRIPTION_UNSAFE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')
# After a failed fetch, no other before this much time (doubling per failure, up to the max).
JWKS_BACKOFF_SECONDS = (5.0, 60.0)
# Verified tokens kept per instance: a browser polls with the same token for its whole life.
VERIFIED_TOKENS_KEPT = 1024
# Registered claims PyJWT reads as numbers, also when they arrive as numeric strings.
_NUMERIC_CLAIMS = ("exp", "nbf", "iat")


class AuthError(ApiError):
    """The caller is not authenticated (401). The message never echoes the token."""

    status = 401
    code = ErrorCode.INVALID_TOKEN

    def headers(self) -> dict[str, str]:
        # RFC 6750 §3.1: no error attribute when no bearer token was sent at all.
        if self.code is ErrorCode.MISSING_TOKEN:
            return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
        description = _DESCRIPTION_UNSAFE.sub("", self.message)
        return {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{description}"'
        }


class KeyServiceError(ApiError):
    """The key set could not be fetched (500): our dependency's outage must not log users out."""

    code = ErrorCode.AUTH_UNAVAILABLE


@dataclass(frozen=True)
class Caller:
    """Who a verified token says is calling. The stores read as this user: the supabase-py store
    forwards ``token`` to PostgREST, the direct store hands ``claims`` (the token's payload as
    JSON) to the database as PostgREST would, as ``request.jwt.claims``."""

    user_id: UUID
    token: str = field(repr=False)
    claims: str = field(repr=False)


def bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthError("Missing authorization header", code=ErrorCode.MISSING_TOKEN)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            "Authorization header must be 'Bearer <token>'", code=ErrorCode.MISSING_TOKEN
        )
    return token.strip()


_CLAIM_ERRORS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "Token has expired"),
    (jwt.ImmatureSignatureError, "Token is not yet valid"),
    (jwt.InvalidAudienceError, f"Token audience is not '{AUDIENCE}'"),
    (jwt.InvalidIssuerError, "Token issuer is not accepted"),
    (jwt.InvalidIssuedAtError, "Token issue time is invalid"),
    (InvalidSubjectError, "Token subject is not a user id"),
    (jwt.InvalidSignatureError, "Token signature is invalid"),
    (jwt.InvalidAlgorithmError, "Token algorithm is not allowed"),
    (jwt.DecodeError, "Token is malformed"),
)


def _describe(error: jwt.InvalidTokenError) -> str:
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"Token is missing the '{error.claim}' claim"
    for kind, message in _CLAIM_ERRORS:
        if isinstance(error, kind):
            return message
    return "Token is invalid"


class _VerifiedTokens:
    """The callers of tokens verified before, each until its token's ``exp`` (not a second
    later: past it a token is verified afresh, and refused as an expired one would be). A
    bounded number of them, the oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._callers: dict[str, tuple[Caller, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Caller | None:
        found = self._callers.get(token)
        if found is None or wall_clock() >= found[1]:
            return None
        return found[0]

    def keep(self, caller: Caller, expires: float) -> None:
        with self._lock:
            if len(self._callers) >= self._size:
                # Insertion order: the first key is the oldest.
                self._callers.pop(next(iter(self._callers)), None)
            self._callers[caller.token] = (caller, expires)


def wall_clock() -> float:
    return time.time()


class TokenVerifier:
    """Verifies Supabase access tokens: asymmetric ones against the project's key set, legacy
    HS256 ones against SUPABASE_JWT_SECRET when (and only when) it is configured.

    A token verified once is not verified again until it expires (``_VerifiedTokens``): what it
    says cannot change before then, and a poll would otherwise pay a signature check every few
    seconds for the same bytes.
    """

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self.key_set = KeySetCache(
            settings.jwks_url,
            lifespan=JWKS_LIFESPAN_SECONDS,
            fetch_timeout=JWKS_FETCH_TIMEOUT_SECONDS,
            unknown_kid_cooldown=JWKS_REFRESH_COOLDOWN_SECONDS,
            backoff=JWKS_BACKOFF_SECONDS,
        )
        self._verified = _VerifiedTokens(VERIFIED_TOKENS_KEPT)

    def verify(self, token: str) -> Caller:
        caller = self._verified.get(token)
        if caller is not None:
            return caller
        caller, expires = self._verify(token)
        self._verified.keep(caller, expires)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        """The caller of a token checked from scratch, and when the token expires."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("Token is malformed") from None
        algorithm = header.get("alg")
        key = self._key_for(algorithm, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=AUDIENCE,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.InvalidTokenError as error:
            code = (
                ErrorCode.TOKEN_EXPIRED
                if isinstance(error, jwt.ExpiredSignatureError)
                else ErrorCode.INVALID_TOKEN
            )
            raise AuthError(_describe(error), code=code) from None
        _check_claim_types(claims)
        if claims.get("role") != ROLE:
            raise AuthError(f"Token role is not '{ROLE}'")
        caller = Caller(
            user_id=_user_id(claims.get("sub")),
            token=token,
            claims=json.dumps(claims, separators=(",", ":")),
        )
        return caller, float(claims["exp"])

    def _key_for(self, algorithm: object, kid: object) -> str | PyJWK:
        # A header is attacker-controlled JSON: alg may be a list or an object, not just a name.
        if not isinstance(algorithm, str):
            raise AuthError("Token algorithm is not allowed")
        if algorithm == "HS256":
            if self._secret is None:
                raise AuthError("HS256 tokens are not accepted by this project")
            return self._secret
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise AuthError("Token algorithm is not allowed")
        if not isinstance(kid, str) or not kid:
            raise AuthError("Token has no key id")
        try:
            jwk = self.key_set.key(kid)
        except KeySetUnavailable as error:
            raise KeyServiceError("Failed to verify token") from error
        if jwk is None:
            raise AuthError("Token is signed with an unknown key")
        # A key is only good for its own algorithm: no RS256 token against an EC key, and so on.
        if jwk.algorithm_name != algorithm:
            raise AuthError("Token algorithm does not match its key")
        return jwk


def _check_claim_types(claims: dict[str, object]) -> None:
    for name in _NUMERIC_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AuthError(f"Token claim '{name}' must be a number")


def _user_id(sub: object) -> UUID:
    if not isinstance(sub, str):
        raise AuthError("Token subject is not a user id")
    try:
        return UUID(sub)
    except ValueError:
        raise AuthError("Token subject is not a user id") from None
