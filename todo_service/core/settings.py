"""Typed settings, built once from the environment (and an optional ``.env`` file) at start.

(Over 300 lines on purpose: the one place that validates settings; docs/configuration.md is made from it.)
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_origin

import msgspec
from dotenv import dotenv_values
from limits import parse as parse_rate_limit

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("Settings", "SettingsError", "development_key", "normalize_database_url")

logger = logging.getLogger(__name__)

AppEnv = Literal["development", "test", "production"]
LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
TracesSampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]

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
    # Outside production without SECRET_KEY: the key made on first use is kept in this file (mode
    # 0600) and read again at every start, so a restart does not sign everyone out.
    dev_secret_key_file: str = ".dev-secret-key"  # noqa: S105  (a file name, not a secret)
    access_token_expire_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 30
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    # A request body must arrive within this many seconds of the request (408 otherwise), so slow
    # uploads cannot hold the process's connections and file descriptors.
    request_body_timeout_seconds: PositiveFloat = 30.0

    db_pool_size: PositiveInt = 10
    db_max_overflow: Annotated[int, msgspec.Meta(ge=0)] = 10
    db_pool_timeout: PositiveFloat = 10.0
    db_echo: bool = False
    # TLS to PostgreSQL (asyncpg's sslmode; unset: its default, "prefer", or the URL's sslmode).
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    # DATABASE_URL goes through PgBouncer in transaction mode (docs/operations.md): no statement stays
    # prepared across transactions, and no startup parameter PgBouncer refuses is sent.
    database_pgbouncer: bool = False
    # PostgreSQL itself, not a pooler: the live events' LISTEN connection holds session state that
    # transaction pooling cannot keep. Required with DATABASE_PGBOUNCER; unset otherwise: DATABASE_URL.
    database_direct_url: str | None = None
    # At start, wait for the database: this many attempts, the pause doubling from this many seconds
    # (0: start without waiting; readiness then reports the database until it answers).
    db_connect_attempts: Annotated[int, msgspec.Meta(ge=0)] = 10
    db_connect_retry_seconds: PositiveFloat = 0.5
    health_check_timeout: PositiveFloat = 2.0
    session_prune_interval_seconds: PositiveInt = 3600

    # argon2id cost (argon2-cffi's RFC 9106 "low memory" profile by default).
    argon2_time_cost: PositiveInt = 3
    argon2_memory_cost: Annotated[int, msgspec.Meta(ge=8)] = 65536
    argon2_parallelism: PositiveInt = 4

    refresh_token_expire_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 14
    # A refresh token presented again within this many seconds of its first use (two tabs racing)
    # gets a fresh pair for the same session; later, reuse revokes the session (a stolen token).
    refresh_reuse_grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 10

    # Sync: deleted tasks stay as tombstones for the change feed this long (an older cursor is a
    # 410); an Idempotency-Key and its stored response are kept this long.
    tombstone_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    # A deleted task stays in the trash, restorable, this long (then only its tombstone remains).
    trash_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    idempotency_key_ttl_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] = 24

    # Webhooks (docs/webhooks.md): which targets may be called, how long an attempt may take, how
    # often the outbox is polled, the backoff between retries, how long an event is retried, and
    # after how long of continuous failure a webhook is disabled.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    webhook_poll_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 0.5
    webhook_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32
    webhook_backoff_base_seconds: PositiveFloat = 5.0
    webhook_backoff_max_seconds: PositiveFloat = 3600.0
    webhook_retry_window_hours: PositiveFloat = 24.0
    webhook_disable_after_hours: PositiveFloat = 72.0
    reminders_poll_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0

    # Live events (SSE): a stream ticket's lifetime; the keep-alive comment's period; the feed re-read
    # without a notification; open streams per user and per process; events queued per stream.
    events_ticket_ttl_seconds: Annotated[int, msgspec.Meta(ge=5, le=600)] = 60
    events_heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0, le=15)] = 15.0
    events_poll_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    events_max_streams_per_user: PositiveInt = 10
    events_max_streams: PositiveInt = 2000
    events_queue_size: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 256

    # Rate limits ("<count>/<period>", moving window), in memory or in Redis when REDIS_URL is set.
    rate_limit_enabled: bool = True
    rate_limit_register: str = "5/minute"
    rate_limit_login: str = "10/minute"
    rate_limit_refresh: str = "30/minute"
    rate_limit_per_ip: str = "1200/minute"
    rate_limit_per_user: str = "600/minute"
    redis_url: str | None = None
    redis_timeout: PositiveFloat = 0.25
    # Peers (IPs or CIDRs) whose X-Forwarded-For is believed; empty: the socket address is the client.
    trusted_proxies: tuple[str, ...] = ()

    # Account lockout: this many failed logins for one email within the window lock it for the duration.
    lockout_threshold: PositiveInt = 5
    lockout_window_seconds: PositiveInt = 900
    lockout_duration_seconds: PositiveInt = 900

    # OpenTelemetry, from the standard variables: nothing is exported without an endpoint.
    otel_service_name: str = "todo-service"
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    otel_exporter_otlp_headers: str = ""
    otel_traces_sampler: TracesSampler = "parentbased_always_on"
    otel_traces_sampler_arg: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    otel_resource_attributes: str = ""

    # Prometheus metrics at /metrics; with several workers, prometheus-client's multiprocess mode
    # needs this directory (read by prometheus-client itself, so it must be in the environment).
    metrics_enabled: bool = True
    # When set, /metrics answers only requests with "Authorization: Bearer <METRICS_TOKEN>" (401 otherwise).
    metrics_token: str | None = None
    prometheus_multiproc_dir: str | None = None

    # Transport: CORS is off unless origins are given; Host must match ALLOWED_HOSTS; HSTS when > 0.
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ("*",)
    hsts_max_age: Annotated[int, msgspec.Meta(ge=0)] = 0

    # The interactive docs (Scalar, Swagger UI, ReDoc) and the schema at /api/docs. On by default,
    # production included: the schema is the API's public contract, and hiding it protects nothing.
    docs_enabled: bool = True

    def __post_init__(self) -> None:
        """Cross-field rules msgspec constraints cannot express (messages start with the variable)."""
        for name in ("register", "login", "refresh", "per_ip", "per_user"):
            _check_rate(f"RATE_LIMIT_{name.upper()}", getattr(self, f"rate_limit_{name}"))
        _check_pairs("OTEL_RESOURCE_ATTRIBUTES", self.otel_resource_attributes)
        _check_pairs("OTEL_EXPORTER_OTLP_HEADERS", self.otel_exporter_otlp_headers)
        for proxy in self.trusted_proxies:
            _check_network("TRUSTED_PROXIES", proxy)
        if self.app_env == "production":
            _check_production_secret(self.secret_key)
        _check_pgbouncer(self.database_url, self.database_direct_url, pgbouncer=self.database_pgbouncer)

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
        """The key tokens are signed with: ``SECRET_KEY``, or (outside production) the development key.

        Production never gets here without ``SECRET_KEY``: ``__post_init__`` refuses to build it.

        Raises:
            SettingsError: ``DEV_SECRET_KEY_FILE`` exists but holds no usable key.
        """
        return self.secret_key or development_key(Path(self.dev_secret_key_file).absolute())

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
        lists = {field.name for field in msgspec.structs.fields(cls) if get_origin(field.type) is tuple}
        raw: dict[str, str | list[str]] = {}
        for name, var in fields.items():
            if not (value := source.get(var)):
                continue
            # Lists come as comma-separated values: "https://a.example, https://b.example".
            raw[name] = [item.strip() for item in value.split(",") if item.strip()] if name in lists else value
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(str(exc), fields)) from None


def _check_rate(variable: str, rule: str) -> None:
    try:
        parse_rate_limit(rule)
    except ValueError:
        raise ValueError(f"{variable}: expected a rate like '10/minute', got {rule!r}") from None


def _check_pairs(variable: str, pairs: str) -> None:
    if any("=" not in pair for pair in pairs.split(",") if pair.strip()):
        raise ValueError(f"{variable}: expected key=value pairs separated by commas")


def _check_network(variable: str, network: str) -> None:
    try:
        ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise ValueError(f"{variable}: {network!r} is not an IP address or network") from None


def _is_postgres(url: str) -> bool:
    return normalize_database_url(url).startswith("postgresql+asyncpg://")


def _check_pgbouncer(database_url: str, direct_url: str | None, *, pgbouncer: bool) -> None:
    if direct_url is not None and not _is_postgres(direct_url):
        raise ValueError("DATABASE_DIRECT_URL: expected a postgresql:// URL")
    if not pgbouncer:
        return
    if not _is_postgres(database_url):
        raise ValueError("DATABASE_PGBOUNCER: only for a PostgreSQL DATABASE_URL")
    if direct_url is None:
        raise ValueError(
            "DATABASE_DIRECT_URL: required with DATABASE_PGBOUNCER=true "
            "(live events LISTEN on a session of their own, which transaction pooling cannot keep)"
        )


def _check_production_secret(secret_key: str) -> None:
    if not secret_key:
        raise ValueError("SECRET_KEY: required when APP_ENV=production")
    if len(secret_key) < _MIN_PRODUCTION_SECRET_LENGTH:
        raise ValueError(f"SECRET_KEY: must be at least {_MIN_PRODUCTION_SECRET_LENGTH} characters in production")
    if _PLACEHOLDER_SECRETS.search(secret_key):
        raise ValueError("SECRET_KEY: looks like a placeholder; generate one with `openssl rand -hex 32`")


def _explain(message: str, fields: Mapping[str, str]) -> str:
    """Turn msgspec's ``... - at `$.field``` into a line that names the environment variable."""
    match = re.search(r"^(?P<what>.*?)(?: - at `\$\.(?P<field>\w+)`)?$", message)
    what, field = (match["what"], match["field"]) if match else (message, None)
    if field is None:  # a rule of __post_init__, whose message starts with the variable's name
        return f"invalid setting {what}"
    return f"invalid setting {fields.get(field, field.upper())}: {what}"


@cache
def development_key(path: Path) -> str:
    """The development signing key kept in ``path``: read, or made (mode 0600) the first time.

    Once per process (every app built in it, and every worker forked from it, use the same key, and
    the warning is logged once). Where the file cannot be kept (a read-only directory), a random key
    for this process only, with a warning that says so.

    Raises:
        SettingsError: the file exists but holds no usable key.
    """
    try:
        key, made = _read_or_make_key(path)
    except OSError as exc:
        logger.warning(
            "SECRET_KEY is not set and no development key can be kept in %s (%s): using a random key for "
            "this process only, so tokens will not survive a restart. Set SECRET_KEY.",
            path,
            exc.strerror or type(exc).__name__,
        )
        return secrets.token_urlsafe(48)
    logger.warning(
        "SECRET_KEY is not set: signing with the development key %s %s (kept across restarts; "
        "never used with APP_ENV=production). Set SECRET_KEY for anything but local development.",
        "made in" if made else "from",
        path,
    )
    return key


def _read_key(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < _MIN_PRODUCTION_SECRET_LENGTH:
        msg = f"DEV_SECRET_KEY_FILE: {path} holds no usable key; delete it to have a new one made"
        raise SettingsError(msg)
    return key


def _read_or_make_key(path: Path) -> tuple[str, bool]:
    """The key in ``path`` and False; or a new key written there and True.

    Written to a file of this process first, then linked into place: a process that starts at the
    same moment either makes the link or finds the whole key, never half of it.
    """
    if path.exists():
        return _read_key(path), False
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.unlink(missing_ok=True)
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(key + "\n")
        os.link(draft, path)
    except FileExistsError:  # another process made it first: its key is the one
        return _read_key(path), False
    finally:
        draft.unlink(missing_ok=True)
    return key, True


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs by adding the async driver."""
    for prefix, replacement in _DRIVER_PREFIXES.items():
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url
