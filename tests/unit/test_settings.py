"""Settings: defaults, the environment and ``.env``, and one clear error naming a bad variable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from todo_service.core.settings import Settings, SettingsError, normalize_database_url

if TYPE_CHECKING:
    from pathlib import Path

GOOD_SECRET = "9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3c6b8d0e2f4a6c8e0b"


def from_env(**environ: str) -> Settings:
    """Settings from exactly these variables, with no ``.env`` file."""
    return Settings.from_env(environ, env_file=None)


def test_defaults() -> None:
    settings = from_env()
    assert settings == Settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.access_token_expire_minutes == 30
    assert settings.app_env == "development"
    assert not settings.is_production
    assert settings.secret_key == ""
    assert settings.effective_log_format == "console"


def test_environment_values_are_converted() -> None:
    settings = from_env(
        DATABASE_URL="postgresql+asyncpg://app@db:5432/todo",
        ACCESS_TOKEN_EXPIRE_MINUTES="45",
        APP_ENV="test",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        DB_ECHO="true",
        HEALTH_CHECK_TIMEOUT="0.5",
        MAX_BODY_BYTES="2048",
    )
    assert settings.database_url == "postgresql+asyncpg://app@db:5432/todo"
    assert settings.access_token_expire_minutes == 45
    assert settings.app_env == "test"
    assert settings.log_level == "DEBUG"
    assert settings.effective_log_format == "json"
    assert settings.db_echo is True
    assert settings.health_check_timeout == 0.5
    assert settings.max_body_bytes == 2048


def test_empty_values_are_ignored() -> None:
    settings = from_env(ACCESS_TOKEN_EXPIRE_MINUTES="", DATABASE_URL="", APP_ENV="")
    assert settings == Settings()


def test_unrelated_variables_are_ignored() -> None:
    assert from_env(PATH="/usr/bin", HOME="/root", SOMETHING_ELSE="1") == Settings()


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.__struct_fields__:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "15")
    assert Settings.from_env(env_file=None).access_token_expire_minutes == 15


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# local settings\nACCESS_TOKEN_EXPIRE_MINUTES=50\nDATABASE_URL=sqlite+aiosqlite:///dot.db\n")
    settings = Settings.from_env({}, env_file=env_file)
    assert settings.access_token_expire_minutes == 50
    assert settings.database_url == "sqlite+aiosqlite:///dot.db"


def test_environment_overrides_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACCESS_TOKEN_EXPIRE_MINUTES=50\nLOG_LEVEL=ERROR\n")
    settings = Settings.from_env({"ACCESS_TOKEN_EXPIRE_MINUTES": "10"}, env_file=str(env_file))
    assert settings.access_token_expire_minutes == 10
    assert settings.log_level == "ERROR"


def test_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    assert Settings.from_env({}, env_file=tmp_path / "absent.env") == Settings()


def test_malformed_dotenv_value_names_the_variable(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACCESS_TOKEN_EXPIRE_MINUTES=soon\n")
    with pytest.raises(SettingsError, match="ACCESS_TOKEN_EXPIRE_MINUTES"):
        Settings.from_env({}, env_file=env_file)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "abc"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "1.5"),
        ("APP_ENV", "staging"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DB_POOL_SIZE", "-1"),
        ("DB_ECHO", "maybe"),
        ("HEALTH_CHECK_TIMEOUT", "0"),
        ("MAX_BODY_BYTES", "lots"),
    ],
)
def test_malformed_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        from_env(**{variable: value})
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message
    assert "$." not in message


def test_production_requires_a_secret_key() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        from_env(APP_ENV="production")


@pytest.mark.parametrize(
    "secret",
    [
        "short",
        "x" * 31,
        "change-me-" + "a" * 40,
        "CHANGE_ME_please_0123456789abcdef0123456789",
        "your-secret-key-" + "0" * 32,
        "replace-me-with-something-random-0123456789",
    ],
)
def test_production_refuses_weak_or_placeholder_keys(secret: str) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        from_env(APP_ENV="production", SECRET_KEY=secret)


def test_production_with_a_real_key() -> None:
    settings = from_env(APP_ENV="production", SECRET_KEY=GOOD_SECRET)
    assert settings.is_production
    assert settings.signing_key == GOOD_SECRET
    assert settings.effective_log_format == "json"


def test_development_accepts_a_short_key() -> None:
    assert from_env(SECRET_KEY="dev").signing_key == "dev"


def test_generated_signing_key_is_stable_within_the_process(tmp_path: Path) -> None:
    # The development key is kept in a file (tests/unit/test_run_command.py): here, not in the checkout.
    key_file = str(tmp_path / "dev-key")
    first, second = (
        from_env(DEV_SECRET_KEY_FILE=key_file),
        from_env(ACCESS_TOKEN_EXPIRE_MINUTES="5", DEV_SECRET_KEY_FILE=key_file),
    )
    assert first.secret_key == second.secret_key == ""
    assert first.signing_key == second.signing_key
    assert len(first.signing_key) >= 32
    assert first.signing_key != from_env(SECRET_KEY=GOOD_SECRET).signing_key


def test_settings_are_frozen() -> None:
    settings = from_env()
    with pytest.raises(AttributeError):
        settings.app_env = "production"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/todo", "postgresql+asyncpg://u:p@db:5432/todo"),
        ("postgresql://u:p@db/todo", "postgresql+asyncpg://u:p@db/todo"),
        ("postgresql+asyncpg://u@db/todo", "postgresql+asyncpg://u@db/todo"),
        ("sqlite:///todo.db", "sqlite+aiosqlite:///todo.db"),
        ("sqlite:////var/lib/todo.db", "sqlite+aiosqlite:////var/lib/todo.db"),
        ("sqlite+aiosqlite:///todo.db", "sqlite+aiosqlite:///todo.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_LIMIT_LOGIN", "ten"),
        ("RATE_LIMIT_REGISTER", "5 per fortnight"),
        ("RATE_LIMIT_PER_IP", "/minute"),
        ("RATE_LIMIT_PER_USER", "many"),
        ("RATE_LIMIT_REFRESH", "1/eon"),
    ],
)
def test_a_malformed_rate_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value}, env_file=None)
    assert str(raised.value) == f"invalid setting {variable}: expected a rate like '10/minute', got {value!r}"


def test_rates_and_lists_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"RATE_LIMIT_LOGIN": "3/second", "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7", "CORS_ORIGINS": ""},
        env_file=None,
    )
    assert settings.rate_limit_login == "3/second"
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    assert settings.cors_origins == ()


@pytest.mark.parametrize("proxy", ["proxy.internal", "10.0.0.0/33", "300.1.1.1"])
def test_a_trusted_proxy_must_be_an_address_or_network(proxy: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TRUSTED_PROXIES": f"127.0.0.1,{proxy}"}, env_file=None)
    assert str(raised.value) == f"invalid setting TRUSTED_PROXIES: {proxy!r} is not an IP address or network"
