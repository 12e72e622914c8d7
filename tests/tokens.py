"""Real signing keys, real tokens, and a real HTTP server for the key set."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from calls_batch_get.auth import Caller

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
HS256_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def _public_jwk(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk["alg"] = "ES256"
    else:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk["alg"] = "RS256"
    return {**jwk, "kid": kid, "use": "sig"}


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @classmethod
    def ec(cls) -> SigningKey:
        return cls(str(uuid.uuid4()), "ES256", ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def rsa(cls) -> SigningKey:
        return cls(str(uuid.uuid4()), "RS256", rsa.generate_private_key(65537, 2048))

    def public_jwk(self) -> dict[str, Any]:
        return _public_jwk(self.private, self.kid)


@dataclass
class KeySetServer:
    """Serves a JWKS over real HTTP on loopback, as Supabase Auth does, and counts the fetches.
    With ``hanging`` set it takes requests and answers none until stopped (or ``hanging`` is
    cleared); with ``trickling`` (``trickling_body``) set it sends its headers (body) a byte every
    0.1 s, until stopped or cleared."""

    keys: list[dict[str, Any]]
    status: int = 200
    body: bytes | None = None
    fetches: int = 0
    hanging: bool = False
    trickling: bool = False
    trickling_body: bool = False
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def start(self) -> KeySetServer:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                while outer.hanging and not outer._released.wait(0.05):
                    pass
                if outer.trickling or outer.trickling_body:
                    # A header that never ends: no socket timeout fires, and no HTTP client
                    # can put a deadline on reading headers. Or a body that never does.
                    self.wfile.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                        if outer.trickling_body else b"HTTP/1.1 200 OK\r\nX-Slow: "
                    )
                    while not outer._released.wait(0.1) and (
                        outer.trickling or outer.trickling_body
                    ):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    return
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                payload = outer.body if outer.body is not None else json.dumps(
                    {"keys": outer.keys}
                ).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class TokenFactory:
    issuer: str
    ec_key: SigningKey
    rsa_key: SigningKey
    secret: str = HS256_SECRET

    def claims(self, sub: str | uuid.UUID, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(sub),
            "aud": "authenticated",
            "role": "authenticated",
            "iss": self.issuer,
            "iat": now,
            "exp": now + 3600,
            "email": "agent@example.com",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def es256(self, sub: str | uuid.UUID, **overrides: Any) -> str:
        return self.sign(self.ec_key, self.claims(sub, **overrides))

    def rs256(self, sub: str | uuid.UUID, **overrides: Any) -> str:
        return self.sign(self.rsa_key, self.claims(sub, **overrides))

    def hs256(self, sub: str | uuid.UUID, **overrides: Any) -> str:
        return jwt.encode(self.claims(sub, **overrides), self.secret, algorithm="HS256")

    def caller(self, sub: str | uuid.UUID, **overrides: Any) -> Caller:
        """The caller the function's verifier makes of an ES256 token for ``sub``."""
        token = self.es256(sub, **overrides)
        claims = jwt.decode(token, options={"verify_signature": False})
        return Caller(uuid.UUID(str(sub)), token, json.dumps(claims))


    @staticmethod
    def sign(key: SigningKey, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **headers}
        )


def caller_of(sub: str | uuid.UUID) -> Caller:
    """A caller for the direct store, which reads only the claims (the token is not signed)."""
    claims = {"sub": str(sub), "role": "authenticated", "aud": "authenticated"}
    return Caller(uuid.UUID(str(sub)), "unsigned-token", json.dumps(claims))
