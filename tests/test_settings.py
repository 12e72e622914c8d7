from __future__ import annotations

import base64
import json

import jwt
import pytest

from calls_batch_get.settings import SettingsError, load_settings

ANON_KEY = "sb_publishable_abc"
BASE = {"SUPABASE_URL": "https://abc.supabase.co/", "SUPABASE_ANON_KEY": ANON_KEY}


def unsigned_jwt(payload: object) -> str:
    """Three dot-separated parts, the middle one base64url JSON (unpadded, as in a JWT)."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2lnbmF0dXJl"


def legacy_key(role: str) -> str:
    """A legacy API key as a Supabase project issues one: an HS256 JWT naming its role."""
    return jwt.encode({"iss": "supabase", "ref": "abc", "role": role}, "project-jwt-secret-x" * 2)


def error_of(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_derive_from_the_project_url() -> None:
    settings = load_settings(BASE)
    assert settings.supabase_url == "https://abc.supabase.co"
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    assert settings.jwt_issuer == "https://abc.supabase.co/auth/v1"
    assert settings.jwt_secret is None
    assert settings.database_url is None
    assert settings.cors_allow_origins == ("*",)
    assert settings.db_timeout_seconds == 10.0
    assert settings.log_level == "INFO"
    assert settings.google_cloud_project is None


def test_overrides() -> None:
    settings = load_settings(
        {
            **BASE,
            "SUPABASE_JWT_SECRET": "s",
            "SUPABASE_JWKS_URL": "http://keys.local/jwks",
            "SUPABASE_JWT_ISSUER": "supabase",
            "CORS_ALLOW_ORIGINS": "https://app.example.com, https://admin.example.com/",
            "DB_TIMEOUT_SECONDS": "2.5",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.jwks_url == "http://keys.local/jwks"
    assert settings.jwt_issuer == "supabase"
    assert settings.cors_allow_origins == ("https://app.example.com", "https://admin.example.com")
    assert settings.db_timeout_seconds == 2.5
    assert settings.log_level == "DEBUG"


def test_missing_url() -> None:
    assert error_of({"SUPABASE_ANON_KEY": ANON_KEY}) == "SUPABASE_URL is not set"


def test_missing_key() -> None:
    assert "SUPABASE_ANON_KEY is not set" in error_of({"SUPABASE_URL": "https://x.co"})


def test_database_url_replaces_the_key() -> None:
    settings = load_settings(
        {"SUPABASE_URL": "https://x.co", "DATABASE_URL": "postgresql://calls_batch_get@h/db"}
    )
    assert settings.anon_key is None


@pytest.mark.parametrize("key", [ANON_KEY, legacy_key("anon")])
def test_the_anon_or_publishable_key_is_taken(key: str) -> None:
    assert load_settings({**BASE, "SUPABASE_ANON_KEY": key}).anon_key == key


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("sb_secret_abc", "SUPABASE_ANON_KEY is a secret key (sb_secret_...)"),
        (legacy_key("service_role"), "SUPABASE_ANON_KEY is a key of the role 'service_role'"),
        (legacy_key("authenticated"), "SUPABASE_ANON_KEY is a key of the role 'authenticated'"),
        ("not-a-key", "SUPABASE_ANON_KEY must be the project's publishable key"),
        ("a.b.c", "SUPABASE_ANON_KEY must be the project's publishable key"),
        # JWT-shaped, but its payload names no role: refused as such, not by a crash.
        (unsigned_jwt([1, 2]), "SUPABASE_ANON_KEY is a key of the role '(none)'"),
        (unsigned_jwt({"ref": "abc"}), "SUPABASE_ANON_KEY is a key of the role '(none)'"),
        (unsigned_jwt({"role": 7}), "SUPABASE_ANON_KEY is a key of the role '(none)'"),
    ],
)
def test_a_key_that_reads_past_the_policies_stops_the_start(key: str, needle: str) -> None:
    assert needle in error_of({**BASE, "SUPABASE_ANON_KEY": key})


@pytest.mark.parametrize("key", ["sb_secret_abc", legacy_key("service_role"), ANON_KEY])
def test_a_service_role_key_in_the_configuration_stops_the_start(key: str) -> None:
    # Whatever it holds: the setting itself is the old configuration, which read every agency.
    message = error_of({**BASE, "SUPABASE_SERVICE_ROLE_KEY": key})
    assert message.startswith("SUPABASE_SERVICE_ROLE_KEY is set, but the function reads as")
    assert key not in message


@pytest.mark.parametrize(
    ("url", "role"),
    [
        ("postgresql://postgres:pw@db.abc.supabase.co:5432/postgres", "postgres"),
        ("postgresql://postgres.abc:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
         "postgres"),
        ("postgres://service_role@h/db", "service_role"),
        ("postgresql://authenticator@h/db", "authenticator"),
        ("postgresql://supabase_admin@h/db", "supabase_admin"),
        ("postgresql://h/db?user=postgres&password=pw", "postgres"),
    ],
)
def test_a_database_role_that_reads_past_the_policies_stops_the_start(url: str, role: str) -> None:
    message = error_of({**BASE, "DATABASE_URL": url})
    assert message.startswith(f"DATABASE_URL connects as {role}, which reads past row-level")
    assert "pw" not in message


def test_the_functions_own_role_through_the_pooler_is_taken() -> None:
    url = "postgresql://calls_batch_get.abc:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    assert load_settings({**BASE, "DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"SUPABASE_URL": "abc.supabase.co"}, "SUPABASE_URL must be an http(s) URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a postgresql://"),
        ({"CORS_ALLOW_ORIGINS": "*, https://a.com"}, "mixes '*'"),
        ({"CORS_ALLOW_ORIGINS": " , "}, "CORS_ALLOW_ORIGINS is empty"),
        ({"CORS_ALLOW_ORIGINS": "app.example.com"}, "CORS_ALLOW_ORIGINS must be an http(s) URL"),
        ({"DB_TIMEOUT_SECONDS": "ten"}, "DB_TIMEOUT_SECONDS must be a number"),
        ({"DB_TIMEOUT_SECONDS": "0"}, "DB_TIMEOUT_SECONDS must be above 0"),
        ({"DB_TIMEOUT_SECONDS": "nan"}, "DB_TIMEOUT_SECONDS must be above 0"),
        ({"DB_TIMEOUT_SECONDS": "300.5"}, "DB_TIMEOUT_SECONDS must be above 0 and at most 300"),
        ({"DB_TIMEOUT_SECONDS": "3600"}, "DB_TIMEOUT_SECONDS must be above 0 and at most 300"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be a logging level name"),
        ({"SUPABASE_JWKS_URL": "file:///etc/passwd"}, "SUPABASE_JWKS_URL must be an http(s)"),
    ],
)
def test_contradictory_or_malformed(extra: dict[str, str], needle: str) -> None:
    assert needle in error_of({**BASE, **extra})


def test_db_timeout_of_300_seconds_is_the_longest_allowed() -> None:
    assert load_settings({**BASE, "DB_TIMEOUT_SECONDS": "300"}).db_timeout_seconds == 300.0
