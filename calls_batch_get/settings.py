"""Configuration from the environment, read and checked once per instance."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

DEFAULT_DB_TIMEOUT_SECONDS = 10.0
# A request path must answer well inside Cloud Functions' own timeout; longer is a mistake.
MAX_DB_TIMEOUT_SECONDS = 300.0


class SettingsError(Exception):
    """A missing or contradictory setting; the message is one line naming it."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    supabase_url: str
    service_role_key: str | None
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

    database_url = _optional(env, "DATABASE_URL")
    service_role_key = _optional(env, "SUPABASE_SERVICE_ROLE_KEY")
    if service_role_key is None and database_url is None:
        raise SettingsError(
            "SUPABASE_SERVICE_ROLE_KEY is not set (it is needed unless DATABASE_URL is set)"
        )
    if database_url is not None and not database_url.startswith(("postgres://", "postgresql://")):
        raise SettingsError("DATABASE_URL must be a postgresql:// connection URI")

    jwks_url = _optional(env, "SUPABASE_JWKS_URL")
    return Settings(
        supabase_url=supabase_url,
        service_role_key=service_role_key,
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
