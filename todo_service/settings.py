"""Typed settings, built once from the environment (and an optional ``.env`` file) at start."""

from __future__ import annotations

import logging
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from dotenv import dotenv_values

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("Settings", "SettingsError", "normalize_database_url")

logger = logging.getLogger(__name__)

AppEnv = Literal["development", "test", "production"]
LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]

# Fragments of values copied from examples and tutorials: refused in production like an empty key.
_PLACEHOLDER_SECRETS = re.compile(
    r"change[-_ ]?(me|this|it)|your[-_ ]?(super[-_ ]?)?secret|placeholder|replace[-_ ]?me", re.IGNORECASE
)
_MIN_PRODUCTION_SECRET_LENGTH = 32
_DRIVER_PREFIXES = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the service can be told from outside. Field ``foo_bar`` is env var ``FOO_BAR``."""

    app_env: AppEnv = "development"
    database_url: str = "sqlite+aiosqlite:///todo.db"
    secret_key: str = ""
    access_token_expire_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 30
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024

    db_pool_size: PositiveInt = 10
    db_max_overflow: Annotated[int, msgspec.Meta(ge=0)] = 10
    db_pool_timeout: PositiveFloat = 10.0
    db_echo: bool = False
    health_check_timeout: PositiveFloat = 2.0
    session_prune_interval_seconds: PositiveInt = 3600

    # argon2id cost (argon2-cffi's RFC 9106 "low memory" profile by default).
    argon2_time_cost: PositiveInt = 3
    argon2_memory_cost: Annotated[int, msgspec.Meta(ge=8)] = 65536
    argon2_parallelism: PositiveInt = 4

    def __post_init__(self) -> None:
        """Cross-field rules msgspec constraints cannot express."""
        if self.app_env != "production":
            return
        if not self.secret_key:
            raise ValueError("SECRET_KEY is required when APP_ENV=production")
        if len(self.secret_key) < _MIN_PRODUCTION_SECRET_LENGTH:
            msg = f"SECRET_KEY must be at least {_MIN_PRODUCTION_SECRET_LENGTH} characters in production"
            raise ValueError(msg)
        if _PLACEHOLDER_SECRETS.search(self.secret_key):
            raise ValueError("SECRET_KEY looks like a placeholder; generate one with `openssl rand -hex 32`")

    @property
    def is_production(self) -> bool:
        """Whether the service runs with production safeguards."""
        return self.app_env == "production"

    @property
    def effective_log_format(self) -> LogFormat:
        """JSON lines in production, readable console lines elsewhere, unless set explicitly."""
        return self.log_format or ("json" if self.is_production else "console")

    @property
    def signing_key(self) -> str:
        """The JWT signing key: ``SECRET_KEY``, or outside production a generated per-process key."""
        return self.secret_key or _generated_secret_key()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``) over the values of ``env_file``.

        Raises:
            SettingsError: naming the first variable that is malformed.
        """
        source: dict[str, str | None] = {}
        if env_file is not None and Path(env_file).is_file():
            source.update(dotenv_values(env_file))
        source.update(os.environ if environ is None else environ)
        fields = {name: name.upper() for name in cls.__struct_fields__}
        raw = {name: source[var] for name, var in fields.items() if source.get(var) not in (None, "")}
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(str(exc), fields)) from None


def _explain(message: str, fields: Mapping[str, str]) -> str:
    """Turn msgspec's ``... - at `$.field``` into a line that names the environment variable."""
    match = re.search(r"^(?P<what>.*?)(?: - at `\$\.(?P<field>\w+)`)?$", message)
    what, field = (match["what"], match["field"]) if match else (message, None)
    if field is None:
        return f"invalid settings: {what}"
    return f"invalid setting {fields.get(field, field.upper())}: {what}"


@cache
def _generated_secret_key() -> str:
    """One random key per process, so every app the CLI builds in this process agrees."""
    logger.warning(
        "SECRET_KEY is not set: using a random per-process key. Tokens will not survive a restart "
        "or work across several workers; set SECRET_KEY for anything but local development."
    )
    return secrets.token_urlsafe(48)


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs by adding the async driver."""
    for prefix, replacement in _DRIVER_PREFIXES.items():
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url
