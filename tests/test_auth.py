from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from calls_batch_get.auth import (
    AuthError,
    Caller,
    KeyServiceError,
    TokenVerifier,
    bearer_token,
)
from calls_batch_get.settings import Settings, load_settings
from tests.clock import Clock, hand_clock
from tests.database import poll
from tests.tokens import KeySetServer, SigningKey, TokenFactory

USER = uuid.UUID("0b6f1d7e-1111-4c5e-9f00-0123456789ab")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def auth_error(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    assert token not in caught.value.message
    return caught.value.message


def assert_caller(caller: Caller, token: str) -> None:
    """The user, and what the stores read as: the token itself and its claims as JSON."""
    assert caller.user_id == USER
    assert caller.token == token
    assert json.loads(caller.claims) == jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(settings)


def test_es256_token_against_the_key_set(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.es256(USER)
    assert_caller(verifier.verify(token), token)


def test_rs256_token_against_the_key_set(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.rs256(USER)
    assert_caller(verifier.verify(token), token)


def test_hs256_token_with_the_project_secret(
    verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    token = tokens.hs256(USER)
    assert_caller(verifier.verify(token), token)


def test_hs256_refused_without_a_configured_secret(
    env: dict[str, str], tokens: TokenFactory
) -> None:
    verifier = TokenVerifier(load_settings({**env, "SUPABASE_JWT_SECRET": ""}))
    message = auth_error(verifier, tokens.hs256(USER))
    assert message == "HS256 tokens are not accepted by this project"


def test_hs256_with_another_secret(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = jwt.encode(tokens.claims(USER), "another-secret-" * 4, algorithm="HS256")
    assert auth_error(verifier, token) == "Token signature is invalid"


def test_expired(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.es256(USER, exp=int(time.time()) - 120)
    assert auth_error(verifier, token) == "Token has expired"


def test_expiry_inside_the_clock_skew_leeway_is_accepted(
    verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    token = tokens.es256(USER, exp=int(time.time()) - 5)
    assert verifier.verify(token).user_id == USER


def test_not_yet_valid(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.es256(USER, nbf=int(time.time()) + 600)
    assert auth_error(verifier, token) == "Token is not yet valid"


def test_wrong_audience(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    assert auth_error(verifier, tokens.es256(USER, aud="anon")) == (
        "Token audience is not 'authenticated'"
    )


def test_audience_list_containing_authenticated(
    verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    assert verifier.verify(tokens.es256(USER, aud=["other", "authenticated"])).user_id == USER


def test_wrong_issuer(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.es256(USER, iss="https://other-project.supabase.co/auth/v1")
    assert auth_error(verifier, token) == "Token issuer is not accepted"


def test_issuer_override(env: dict[str, str], tokens: TokenFactory) -> None:
    verifier = TokenVerifier(load_settings({**env, "SUPABASE_JWT_ISSUER": "supabase"}))
    assert verifier.verify(tokens.hs256(USER, iss="supabase")).user_id == USER
    assert auth_error(verifier, tokens.hs256(USER)) == "Token issuer is not accepted"


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
def test_missing_required_claim(verifier: TokenVerifier, tokens: TokenFactory, claim: str) -> None:
    claims = tokens.claims(USER)
    del claims[claim]
    token = tokens.sign(tokens.ec_key, claims)
    assert auth_error(verifier, token) == f"Token is missing the '{claim}' claim"


def test_service_role_key_is_not_a_user_token(
    verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    # Supabase's legacy anon/service keys are HS256 tokens with a role and no sub.
    claims = {"iss": tokens.issuer, "role": "service_role", "aud": "authenticated",
              "exp": 4102444800}
    token = jwt.encode(claims, tokens.secret, algorithm="HS256")
    assert auth_error(verifier, token) == "Token is missing the 'sub' claim"


@pytest.mark.parametrize("sub", ["not-a-uuid", "", "service_role"])
def test_subject_not_a_uuid(verifier: TokenVerifier, tokens: TokenFactory, sub: str) -> None:
    assert auth_error(verifier, tokens.es256(sub)) == "Token subject is not a user id"


@pytest.mark.parametrize("sub", [123, ["a"], {"id": 1}])
def test_subject_not_a_string(verifier: TokenVerifier, tokens: TokenFactory, sub: object) -> None:
    # PyJWT refuses a `sub` of another type itself; whichever check refuses it, the caller gets
    # a 401 that names the claim's problem, not a 500.
    token = tokens.sign(tokens.ec_key, {**tokens.claims(uuid.uuid4()), "sub": sub})
    assert auth_error(verifier, token) in {"Token subject is not a user id", "Token is invalid"}


def test_alg_none(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(tokens.claims(USER)).encode())
    assert auth_error(verifier, f"{header}.{payload}.") == "Token algorithm is not allowed"


@pytest.mark.parametrize(
    # The last four are not names at all: header JSON is the attacker's to shape.
    "alg", ["HS512", "ES384", "PS256", "EdDSA", ["ES256"], {"alg": "ES256"}, 256, None]
)
def test_algorithms_outside_the_allowed_set(
    verifier: TokenVerifier, tokens: TokenFactory, alg: object
) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": tokens.ec_key.kid}).encode())
    payload = b64(json.dumps(tokens.claims(USER)).encode())
    token = f"{header}.{payload}.{b64(b'x' * 64)}"
    assert auth_error(verifier, token) == "Token algorithm is not allowed"


def test_hs256_signed_with_the_public_key(
    verifier: TokenVerifier, tokens: TokenFactory, ec_key: SigningKey
) -> None:
    # The classic key-confusion attack: HMAC keyed with the published public key.
    public_pem = ec_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ec_key.kid}).encode())
    payload = b64(json.dumps(tokens.claims(USER)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert auth_error(verifier, f"{header}.{payload}.{b64(signature)}") == (
        "Token signature is invalid"
    )


def test_rs256_header_on_an_ec_key(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = tokens.es256(USER)
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": tokens.ec_key.kid}).encode())
    forged = ".".join([header, *token.split(".")[1:]])
    assert auth_error(verifier, forged) == "Token algorithm does not match its key"


def test_tampered_payload(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    header, _, signature = tokens.es256(USER).split(".")
    other = b64(json.dumps(tokens.claims(uuid.uuid4())).encode())
    assert auth_error(verifier, f"{header}.{other}.{signature}") == "Token signature is invalid"


@pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c", "....", "eyJ.eyJ.x", "€.€.€"])
def test_malformed(verifier: TokenVerifier, token: str) -> None:
    assert auth_error(verifier, token) == "Token is malformed"


def test_token_without_kid(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    token = jwt.encode(tokens.claims(USER), tokens.ec_key.private, algorithm="ES256")
    assert auth_error(verifier, token) == "Token has no key id"


@pytest.mark.parametrize(
    ("kid", "message"),
    # PyJWT refuses a header whose kid is not a string; an empty one is ours to refuse.
    [(123, "Token is malformed"), (["x"], "Token is malformed"), ({}, "Token is malformed"),
     (None, "Token is malformed"), ("", "Token has no key id")],
)
def test_a_key_id_that_is_not_a_name_is_refused_before_any_lookup(
    verifier: TokenVerifier, tokens: TokenFactory, kid: object, message: str
) -> None:
    """A header is the attacker's JSON: a kid that is not a non-empty string is no key id."""
    header = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(tokens.claims(USER)).encode())
    assert auth_error(verifier, f"{header}.{payload}.{b64(b'x' * 64)}") == message


@pytest.mark.parametrize("jti", [123, ["x"], {"a": 1}])
def test_a_claim_pyjwt_refuses_without_a_message_of_ours_is_invalid(
    verifier: TokenVerifier, tokens: TokenFactory, jti: object
) -> None:
    assert auth_error(verifier, tokens.es256(USER, jti=jti)) == "Token is invalid"


def test_key_set_is_fetched_once_per_instance(
    verifier: TokenVerifier, tokens: TokenFactory, key_server: KeySetServer
) -> None:
    for _ in range(5):
        verifier.verify(tokens.es256(USER))
        verifier.verify(tokens.rs256(USER))
    assert key_server.fetches == 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return hand_clock(monkeypatch, "calls_batch_get.keyset.monotonic")


def test_unknown_kid_refetches_at_most_every_30_seconds(
    verifier: TokenVerifier, tokens: TokenFactory, key_server: KeySetServer, clock: Clock
) -> None:
    verifier.verify(tokens.es256(USER))
    assert key_server.fetches == 1

    rotated = SigningKey.ec()
    token = TokenFactory.sign(rotated, tokens.claims(USER))
    for _ in range(3):
        assert auth_error(verifier, token) == "Token is signed with an unknown key"
    assert key_server.fetches == 1  # inside the cool-down: garbage kids cannot hammer Auth

    key_server.keys.append(rotated.public_jwk())
    clock.advance(31)
    assert verifier.verify(token).user_id == USER  # the rotated key is picked up
    assert key_server.fetches == 2


def test_last_key_set_is_kept_while_the_key_service_is_down(
    verifier: TokenVerifier, tokens: TokenFactory, key_server: KeySetServer, clock: Clock
) -> None:
    verifier.verify(tokens.es256(USER))
    key_server.stop()
    clock.advance(3600)  # long past the cache's lifespan: the set must be fetched again, and can't
    assert verifier.verify(tokens.es256(USER)).user_id == USER
    assert verifier.verify(tokens.rs256(USER)).user_id == USER


def test_key_service_unreachable_is_a_500_not_a_401(
    env: dict[str, str], tokens: TokenFactory
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    verifier = TokenVerifier(
        load_settings({**env, "SUPABASE_JWKS_URL": f"http://127.0.0.1:{closed_port}/jwks"})
    )
    with pytest.raises(KeyServiceError) as caught:
        verifier.verify(tokens.es256(USER))
    assert (caught.value.status, caught.value.message) == (500, "Failed to verify token")


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b'{"message": "unavailable"}'), (200, b"<html>oops</html>"), (200, b'"keys"'),
     (200, b'{"keys": []}')],
)
def test_key_service_answering_nonsense_is_a_500(
    verifier: TokenVerifier,
    tokens: TokenFactory,
    key_server: KeySetServer,
    status: int,
    body: bytes,
) -> None:
    key_server.status, key_server.body = status, body
    with pytest.raises(KeyServiceError):
        verifier.verify(tokens.es256(USER))


def test_hs256_needs_no_key_service(env: dict[str, str], tokens: TokenFactory) -> None:
    verifier = TokenVerifier(load_settings({**env, "SUPABASE_JWKS_URL": "http://127.0.0.1:9/x"}))
    assert verifier.verify(tokens.hs256(USER)).user_id == USER


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing authorization header"),
        ("", "Missing authorization header"),
        ("   ", "Missing authorization header"),
        ("Basic dXNlcjpwYXNz", "Authorization header must be 'Bearer <token>'"),
        ("Bearer", "Authorization header must be 'Bearer <token>'"),
        ("Bearer    ", "Authorization header must be 'Bearer <token>'"),
        ("Token abc", "Authorization header must be 'Bearer <token>'"),
        ("abc.def.ghi", "Authorization header must be 'Bearer <token>'"),
    ],
)
def test_bearer_header_malformed(header: str | None, message: str) -> None:
    with pytest.raises(AuthError) as caught:
        bearer_token(header)
    assert caught.value.message == message


@pytest.mark.parametrize("header", ["Bearer  abc.def.ghi", "  Bearer abc.def.ghi  ",
                                    "Bearer \tabc.def.ghi", "Bearer abc.def.ghi "])
def test_spaces_around_the_token_are_not_part_of_it(header: str) -> None:
    assert bearer_token(header) == "abc.def.ghi"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert bearer_token(f"{scheme} abc.def.ghi") == "abc.def.ghi"


# --- header and claims that are there but wrong ---------------------------------------------


@pytest.mark.parametrize("role", ["anon", "service_role", None, ["authenticated"]])
def test_role_other_than_authenticated_is_a_401(
    verifier: TokenVerifier, tokens: TokenFactory, role: object
) -> None:
    # Validly signed, with a user's sub: only the role says it is no user session.
    assert auth_error(verifier, tokens.es256(USER, role=role)) == (
        "Token role is not 'authenticated'"
    )
    assert auth_error(verifier, tokens.hs256(USER, role=role)) == (
        "Token role is not 'authenticated'"
    )


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", str(int(time.time()) + 3600)), ("nbf", str(int(time.time()) - 60)),
     ("iat", str(int(time.time()))), ("nbf", [1])],
    ids=["exp-string", "nbf-string", "iat-string", "nbf-list"],
)
def test_registered_claim_of_the_wrong_type_is_a_401(
    verifier: TokenVerifier, tokens: TokenFactory, claim: str, value: object
) -> None:
    message = auth_error(verifier, tokens.es256(USER, **{claim: value}))
    assert message in (f"Token claim '{claim}' must be a number", "Token is malformed")


def test_expiry_past_the_leeway_is_refused(verifier: TokenVerifier, tokens: TokenFactory) -> None:
    # 60 s after exp: past the 30 s of clock skew allowed.
    token = tokens.es256(USER, exp=int(time.time()) - 60)
    assert auth_error(verifier, token) == "Token has expired"


# --- a key service that hangs or fails, with concurrent requests ----------------------------

Outcome = tuple[float, object]


def verify_concurrently(verifier: TokenVerifier, token: str, count: int = 8) -> list[Outcome]:
    start = threading.Barrier(count)

    def one(_: int) -> Outcome:
        start.wait()
        began = time.monotonic()
        try:
            result: object = verifier.verify(token)
        except (AuthError, KeyServiceError) as error:
            result = error
        return time.monotonic() - began, result

    with ThreadPoolExecutor(count) as threads:
        return list(threads.map(one, range(count)))


def failed_to_verify(outcomes: list[Outcome]) -> bool:
    return all(
        isinstance(r, KeyServiceError) and r.message == "Failed to verify token"
        for _, r in outcomes
    )


@pytest.fixture
def short_fetch_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr("calls_batch_get.auth.JWKS_FETCH_TIMEOUT_SECONDS", 1.0)
    return 1.0


@pytest.mark.parametrize("fault", ["hanging", "trickling"])
def test_hanging_key_service_on_a_fresh_instance_holds_no_request_past_the_fetch_timeout(
    settings: Settings, tokens: TokenFactory, key_server: KeySetServer, short_fetch_timeout: float,
    fault: str,
) -> None:
    # Trickling: a byte at a time, each inside the socket timeout, so only a deadline ends it.
    setattr(key_server, fault, True)
    verifier = TokenVerifier(settings)

    outcomes = verify_concurrently(verifier, tokens.es256(USER))

    assert failed_to_verify(outcomes), outcomes
    # Waiting together on the one fetch, not queued one behind the other.
    assert max(seconds for seconds, _ in outcomes) <= short_fetch_timeout + 1.0, outcomes
    assert key_server.fetches == verifier.key_set.fetches == 1


def test_failing_key_service_is_not_asked_again_on_every_request(
    verifier: TokenVerifier, tokens: TokenFactory, key_server: KeySetServer, clock: Clock
) -> None:
    key_server.status, key_server.body = 503, b"{}"
    assert failed_to_verify(verify_concurrently(verifier, tokens.es256(USER)))
    assert failed_to_verify(verify_concurrently(verifier, tokens.rs256(USER)))
    assert key_server.fetches == 1  # the failure is remembered

    key_server.status, key_server.body = 200, None
    clock.advance(3)
    assert failed_to_verify(verify_concurrently(verifier, tokens.es256(USER), 2))
    assert key_server.fetches == 1  # still backing off
    clock.advance(3)
    assert verifier.verify(tokens.es256(USER)).user_id == USER  # recovered after the back-off
    assert key_server.fetches == 2


@pytest.mark.parametrize("fault", ["failing", "hanging"])
def test_expired_key_set_keeps_answering_while_its_refresh_fails_or_hangs(
    verifier: TokenVerifier,
    tokens: TokenFactory,
    key_server: KeySetServer,
    clock: Clock,
    fault: str,
) -> None:
    verifier.verify(tokens.es256(USER))
    if fault == "failing":
        key_server.status, key_server.body = 500, b"{}"
    else:
        key_server.hanging = True
    clock.advance(601)  # past the set's lifespan

    for _ in range(3):
        outcomes = verify_concurrently(verifier, tokens.es256(USER))
        assert all(isinstance(r, Caller) and r.user_id == USER for _, r in outcomes), outcomes
        # Answered from the set in hand, not after the refresh: well inside the fetch timeout.
        assert max(seconds for seconds, _ in outcomes) < 2.0, outcomes
    # One refresh for the 24 requests: it hangs, or its failure is remembered.
    assert verifier.key_set.fetches == 2


def test_a_key_set_sent_a_byte_at_a_time_ends_its_fetch_at_the_timeout(
    verifier: TokenVerifier, tokens: TokenFactory, key_server: KeySetServer, clock: Clock,
    short_fetch_timeout: float,
) -> None:
    key_server.trickling_body = True
    assert failed_to_verify(verify_concurrently(verifier, tokens.es256(USER), 2))
    # The fetch gives up by itself while the trickle goes on, and once the back-off has passed
    # a new one starts.
    assert poll(lambda: not verifier.key_set.fetching, 2 * short_fetch_timeout + 1) is not None
    key_server.trickling_body = False
    clock.advance(6)
    assert verifier.verify(tokens.es256(USER)).user_id == USER
    assert verifier.key_set.fetches == 2


# --- verified tokens kept until they expire -------------------------------------------------------


class _Later:
    """Moves both clocks a token is judged by, ours and PyJWT's, ``seconds`` ahead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seconds = 0.0
        later = self

        class _Datetime(datetime.datetime):
            @classmethod
            def now(cls, tz: datetime.tzinfo | None = None) -> _Datetime:
                moved = datetime.datetime.now(tz) + datetime.timedelta(seconds=later.seconds)
                return cls.fromtimestamp(moved.timestamp(), tz)

        monkeypatch.setattr("jwt.api_jwt.datetime", _Datetime)
        monkeypatch.setattr("calls_batch_get.auth.wall_clock", lambda: time.time() + self.seconds)


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the verifiers check from scratch (their signature, their claims), in order."""
    decoded: list[str] = []
    verify = TokenVerifier._verify

    def counted(self: TokenVerifier, token: str) -> tuple[Caller, float]:
        decoded.append(token)
        return verify(self, token)

    monkeypatch.setattr(TokenVerifier, "_verify", counted)
    return decoded


def test_a_token_is_verified_once_while_it_lasts(
    verifier: TokenVerifier, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = counting_decodes(monkeypatch)
    token, other = tokens.es256(USER), tokens.rs256(USER)
    for _ in range(3):
        assert_caller(verifier.verify(token), token)
        assert_caller(verifier.verify(other), other)
    assert decoded == [token, other]


def test_a_kept_token_is_refused_once_it_has_expired(
    verifier: TokenVerifier, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = _Later(monkeypatch)
    decoded = counting_decodes(monkeypatch)
    token = tokens.es256(USER, exp=int(time.time()) + 60)
    assert_caller(verifier.verify(token), token)
    later.seconds = 59
    assert_caller(verifier.verify(token), token)
    assert len(decoded) == 1
    # Past exp the token is checked afresh: within the clock-skew leeway still accepted, as it
    # would be by a verifier that had never seen it, and refused past that.
    later.seconds = 61
    assert_caller(verifier.verify(token), token)
    assert len(decoded) == 2
    later.seconds = 60 + 31
    assert auth_error(verifier, token) == "Token has expired"


def test_a_token_refused_is_refused_again(
    verifier: TokenVerifier, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = counting_decodes(monkeypatch)
    forged = tokens.es256(USER)[:-4] + "AAAA"
    assert auth_error(verifier, forged) == auth_error(verifier, forged)
    assert decoded == [forged, forged]


def test_the_tokens_kept_are_bounded(
    settings: Settings, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("calls_batch_get.auth.VERIFIED_TOKENS_KEPT", 3)
    bounded = TokenVerifier(settings)
    decoded = counting_decodes(monkeypatch)
    first, *rest = [tokens.hs256(USER, jti=str(n)) for n in range(4)]
    for token in (first, *rest):
        bounded.verify(token)
    # The oldest was let go for the fourth: it is checked again; the newest are not.
    bounded.verify(first)
    bounded.verify(rest[-1])
    assert decoded == [first, *rest, first]
