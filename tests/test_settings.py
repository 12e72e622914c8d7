from __future__ import annotations

import pytest

from calls_batch_get.settings import SettingsError, load_settings

BASE = {"SUPABASE_URL": "https://abc.supabase.co/", "SUPABASE_SERVICE_ROLE_KEY": "k"}


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
    assert error_of({"SUPABASE_SERVICE_ROLE_KEY": "k"}) == "SUPABASE_URL is not set"


def test_missing_key() -> None:
    assert "SUPABASE_SERVICE_ROLE_KEY is not set" in error_of({"SUPABASE_URL": "https://x.co"})


def test_database_url_replaces_the_key() -> None:
    settings = load_settings({"SUPABASE_URL": "https://x.co", "DATABASE_URL": "postgresql://h/db"})
    assert settings.service_role_key is None


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
