"""Configuration from the environment, read and checked once per instance."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict

DEFAULT_DB_TIMEOUT_SECONDS = 10.0
# A request path must answer well inside Cloud Functions' own timeout; longer is a mistake.
MAX_DB_TIMEOUT_SECONDS = 300.0


class SettingsError(Exception):
    """A missing or contradictory setting; the message is one line naming it."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    supabase_url: str
    anon_key: str | None
    jwt_secret: str | None
    jwks_url: str
    jwt_issuer: str
    database_url: str | None
    cors_allow_origins: tuple[str, ...]
    db_timeout_seconds: float
    log_level: str
    # Names the trace of each log line (projects/{project}/traces/{id}) for Cloud Logging.
    google_cloud_project: str | None = None


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _cors_origins(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ("*",)
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins:
        raise SettingsError("CORS_ALLOW_ORIGINS is empty; leave it unset for '*'")
    if "*" in origins and len(origins) > 1:
        raise SettingsError("CORS_ALLOW_ORIGINS mixes '*' with explicit origins")
    for origin in origins:
        if origin != "*":
            _http_url("CORS_ALLOW_ORIGINS", origin)
    return origins


# Supabase's roles that read past row-level security, or may act as one that does; the direct
# store refuses any other such role at its first connection (store/postgres.py).
_PRIVILEGED_DB_USERS = frozenset({"postgres", "service_role", "authenticator"})
_REMOVE_SERVICE_KEY = (
    "SUPABASE_SERVICE_ROLE_KEY is set, but the function reads as the caller and must hold no key"
    " that bypasses row-level security: remove it, and set SUPABASE_ANON_KEY instead"
)


def _anon_key(raw: str | None) -> str | None:
    """The project's anon key (a legacy JWT whose role is anon) or a publishable key; a key that
    reads every agency's rows (service_role, sb_secret_...) is refused."""
    if raw is None:
        return None
    if raw.startswith("sb_publishable_"):
        return raw
    if raw.startswith("sb_secret_"):
        raise SettingsError(
            "SUPABASE_ANON_KEY is a secret key (sb_secret_...), which bypasses row-level"
            " security: use the project's publishable key (sb_publishable_...) or anon key"
        )
    role = _jwt_role(raw)
    if role is None:
        raise SettingsError(
            "SUPABASE_ANON_KEY must be the project's publishable key (sb_publishable_...) or its"
            " anon key (a JWT)"
        )
    if role != "anon":
        raise SettingsError(
            f"SUPABASE_ANON_KEY is a key of the role {role!r}, not the anon key: the function"
            " must hold no key that reads past row-level security"
        )
    return raw


def _jwt_role(token: str) -> str | None:
    """The ``role`` claim of a JWT-shaped key, read without verifying it (only to refuse it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    role = payload.get("role") if isinstance(payload, dict) else None
    return role if isinstance(role, str) else "(none)"


def _database_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.startswith(("postgres://", "postgresql://")):
        raise SettingsError("DATABASE_URL must be a postgresql:// connection URI")
    parts = urlsplit(raw)
    user = parse_qs(parts.query).get("user", [parts.username or ""])[-1]
    # Supabase's pooler names a role as role.project-ref.
    role = user.split(".", 1)[0]
    if role in _PRIVILEGED_DB_USERS or role.startswith("supabase_"):
        raise SettingsError(
            f"DATABASE_URL connects as {role}, which reads past row-level security: connect as"
            " the function's own role, calls_batch_get (README, Deployment)"
        )
    return raw


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_DB_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"DB_TIMEOUT_SECONDS must be a number, got {raw!r}") from None
    if not 0 < value <= MAX_DB_TIMEOUT_SECONDS:
        raise SettingsError(
            f"DB_TIMEOUT_SECONDS must be above 0 and at most {MAX_DB_TIMEOUT_SECONDS:g}"
        )
    return value


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        raise SettingsError(f"LOG_LEVEL must be a logging level name, got {raw!r}")
    return level


def load_settings(env: Mapping[str, str]) -> Settings:
    raw_url = _optional(env, "SUPABASE_URL")
    if raw_url is None:
        raise SettingsError("SUPABASE_URL is not set")
    supabase_url = _http_url("SUPABASE_URL", raw_url)

    if _optional(env, "SUPABASE_SERVICE_ROLE_KEY") is not None:
        raise SettingsError(_REMOVE_SERVICE_KEY)
    database_url = _database_url(_optional(env, "DATABASE_URL"))
    anon_key = _anon_key(_optional(env, "SUPABASE_ANON_KEY"))
    if anon_key is None and database_url is None:
        raise SettingsError(
            "SUPABASE_ANON_KEY is not set (it is needed unless DATABASE_URL is set)"
        )

    jwks_url = _optional(env, "SUPABASE_JWKS_URL")
    return Settings(
        supabase_url=supabase_url,
        anon_key=anon_key,
        jwt_secret=_optional(env, "SUPABASE_JWT_SECRET"),
        jwks_url=(
            _http_url("SUPABASE_JWKS_URL", jwks_url)
            if jwks_url
            else f"{supabase_url}/auth/v1/.well-known/jwks.json"
        ),
        jwt_issuer=_optional(env, "SUPABASE_JWT_ISSUER") or f"{supabase_url}/auth/v1",
        database_url=database_url,
        cors_allow_origins=_cors_origins(_optional(env, "CORS_ALLOW_ORIGINS")),
        db_timeout_seconds=_timeout(_optional(env, "DB_TIMEOUT_SECONDS")),
        log_level=_log_level(_optional(env, "LOG_LEVEL")),
        google_cloud_project=_optional(env, "GOOGLE_CLOUD_PROJECT"),
    )
