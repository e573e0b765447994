"""MkDocs hook: the settings tables of ``configuration.md``, generated from the ``Settings`` class.

Names, types, constraints and defaults come from :class:`todo_service.core.settings.Settings` itself
(through ``msgspec.inspect``), so they cannot drift from the code. What each setting is for is prose,
kept in :data:`PROSE` by field name, because the class holds no descriptions at run time (its
explanations are source comments). The build fails when a field has no prose, or prose names a
field the class does not have: adding a setting without documenting it breaks ``mkdocs build``.

The page carries :data:`MARKER` where the tables go; :func:`on_page_markdown` replaces it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the hook runs from any working directory
    sys.path.insert(0, str(ROOT))

from todo_service.core.settings import Settings  # noqa: E402  (after the repository is importable)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

__all__ = ("MARKER", "PAGE", "PROSE", "DocsError", "env_var", "on_page_markdown", "render")

PAGE = "configuration.md"
MARKER = "<!-- settings-tables -->"

# Group -> field -> what the setting is for. Types, bounds and defaults are generated: say only what
# the class cannot.
PROSE: dict[str, dict[str, str]] = {
    "Service": {
        "app_env": "`production` turns on the production safeguards: `SECRET_KEY` must be set, at least 32 "
        "characters and not a placeholder; logs default to JSON.",
        "secret_key": "The HS256 key that signs access tokens, and the key the audit trail's email hashes are "
        "derived from. Empty outside production: the development key of `DEV_SECRET_KEY_FILE`, with one "
        "warning at start. Generate one with `openssl rand -hex 32`.",
        "dev_secret_key_file": "Outside production, without `SECRET_KEY`: a key is made on first use, written "
        "to this file (mode 0600, relative to the working directory; `.gitignore` lists the default) and read "
        "again at every start, so a restart signs nobody out and every worker signs alike. Never read in "
        "production. Where the file cannot be written, a key for the process only, with a warning.",
        "max_body_bytes": "A larger request body answers 413 `PAYLOAD_TOO_LARGE`.",
        "request_body_timeout_seconds": "The request body must arrive within this many seconds of waiting; "
        "otherwise 408 `REQUEST_TIMEOUT` and the connection is closed, so a client that trickles bytes "
        "cannot hold a connection.",
        "docs_enabled": "The interactive docs (Scalar, Swagger UI, ReDoc) and the schema under `/api/docs`; "
        "`false` removes the routes (404). On in production too: the schema is the API's public contract.",
    },
    "Logs": {
        "log_level": "The least severe record written, for the service and its libraries alike. `WARNING` "
        "drops the access log.",
        "log_format": "`json`: one JSON object per line; `console`: one readable line per record (both on "
        "stderr). Unset: `json` when `APP_ENV=production`, else `console`.",
    },
    "Database": {
        "database_url": "`postgresql+asyncpg://...` or `sqlite+aiosqlite:///...`; plain `postgresql://`, "
        "`postgres://` and `sqlite://` get the async driver added.",
        "db_pool_size": "PostgreSQL connections of the process's one pool (opened on demand, then kept).",
        "db_max_overflow": "More PostgreSQL connections the pool may open under load; it keeps them too "
        "(see docs/operations.md).",
        "db_pool_timeout": "Seconds a request waits for a pooled connection, and a new connection may take to "
        "connect; then 503 `SERVICE_UNAVAILABLE` with `Retry-After: 5`.",
        "db_echo": "Log every SQL statement (never the values it was given).",
        "db_sslmode": "TLS to PostgreSQL, libpq's modes. Unset: asyncpg's default (`prefer`), or the "
        "URL's own `sslmode`.",
        "database_pgbouncer": "`true` when `DATABASE_URL` is PgBouncer in transaction mode: asyncpg and "
        "SQLAlchemy keep no prepared statement (each statement is parsed again in its own round trip), and "
        "`jit`/`plan_cache_mode` are not sent at connection start (PgBouncer refuses them; set them on the "
        "role instead). Requires `DATABASE_DIRECT_URL`. See [Operations](operations.md#pgbouncer).",
        "database_direct_url": "PostgreSQL itself, bypassing any pooler: only the live events' `LISTEN` "
        "connection uses it (one per process). Unset: `DATABASE_URL`.",
        "db_connect_attempts": "At start, try the database this many times before giving up; `0` starts "
        "without waiting (readiness then reports the database until it answers).",
        "db_connect_retry_seconds": "The first pause between those attempts; it doubles after each, up to 5 s.",
        "health_check_timeout": "Seconds each readiness check (database, Redis) may take.",
    },
    "Authentication": {
        "access_token_expire_minutes": "Lifetime of an access token (the response's `expires_in`).",
        "refresh_token_expire_days": "Lifetime of a login session and so of its refresh tokens; refreshing "
        "does not extend it.",
        "refresh_reuse_grace_seconds": "A refresh token presented again within this many seconds of its "
        "first exchange (two tabs racing, a retried request) gets another pair for the same session; "
        "later, the reuse revokes the whole session. `0`: every reuse revokes.",
        "session_prune_interval_seconds": "How often expired login sessions and stale login-failure records "
        "are deleted, and task tombstones and idempotency keys past their time (also once at start).",
        "argon2_time_cost": "argon2id iterations.",
        "argon2_memory_cost": "argon2id memory per hash, in KiB.",
        "argon2_parallelism": "argon2id lanes.",
        "lockout_threshold": "Failed logins for one email (known or not) that lock it.",
        "lockout_window_seconds": "The failures must fall within this window.",
        "lockout_duration_seconds": "How long the email stays locked (423 `ACCOUNT_LOCKED` with `Retry-After`).",
    },
    "Sync": {
        "tombstone_retention_days": "A deleted task stays this long as a tombstone that the change feed "
        'reports (`{op: "delete"}`); then it is pruned, and a cursor from before the pruned delete '
        "answers 410 `CURSOR_EXPIRED` (the client reads the feed again from the beginning).",
        "trash_retention_days": "A deleted task stays this long in the trash (`GET .../tasks/trash`), "
        "restorable with `POST .../tasks/{task_id}/restore`; its tombstone is not pruned meanwhile. "
        "`DELETE ...?permanent=true` skips the trash.",
        "idempotency_key_ttl_hours": "An `Idempotency-Key` and the response it got are kept this long: a "
        "retry within it answers that response again; after it, the key is free for a new request.",
        "events_ticket_ttl_seconds": "Lifetime of a stream ticket (`POST .../tasks/events/tokens`), the credential "
        "a browser's `EventSource` puts in the URL: short, as a URL may be seen by proxies and history.",
        "events_heartbeat_seconds": "An event stream with nothing to send writes a `: keep-alive` comment this "
        "often (at most 15), so proxies and clients keep it open and a dead client is noticed.",
        "events_poll_seconds": "Each event stream re-reads the change feed this often even without a "
        "notification: the safety net under LISTEN/NOTIFY (and how SQLite streams see other processes' writes).",
        "events_max_streams_per_user": "Open event streams per user and process; one more answers 429 "
        "`TOO_MANY_STREAMS`.",
        "events_max_streams": "Open event streams per process, all users together; one more answers 429 "
        "`TOO_MANY_STREAMS`.",
        "events_queue_size": "Events queued per stream for its client; a client that leaves them queued for "
        "5 s is dropped (it reconnects with `Last-Event-ID` and loses nothing).",
    },
    "Webhooks": {
        "webhook_allow_private_targets": "`true` lets webhooks reach loopback, private, link-local and "
        "unique-local addresses (development, tests, an internal receiver); the cloud metadata addresses "
        "(`169.254.169.254`, `fd00:ec2::254`) and `0.0.0.0` stay refused. See [Webhooks](webhooks.md).",
        "webhook_timeout_seconds": "The most one delivery attempt may take, connection to last byte read; "
        "longer counts as a failure and is retried.",
        "webhook_poll_interval_seconds": "How often each worker process looks for due deliveries in the "
        "outbox (a full batch is followed at once by the next).",
        "webhook_batch_size": "Deliveries one worker claims and attempts at once.",
        "webhook_backoff_base_seconds": "The pause after a failed attempt; it doubles after each further "
        "failure, with jitter (each pause is 50 to 100% of its value).",
        "webhook_backoff_max_seconds": "The longest pause between two attempts of one event.",
        "webhook_retry_window_hours": "An event is retried until this long after it happened; the first "
        "attempt that fails after that gives it up (`failed`).",
        "webhook_disable_after_hours": "A webhook whose attempts have all failed for this long is disabled "
        "(`enabled: false`, `disabled_at`, `disabled_reason`).",
        "reminders_poll_seconds": "How often each worker process fires the task reminders that came due "
        "(a reminder fires at most this late; each fires once, whichever process claims it). See "
        "[Organising tasks](domain.md#reminders).",
    },
    "Rate limits": {
        "rate_limit_enabled": "`false` installs no rate limiting at all: no middleware, no headers.",
        "rate_limit_register": "`POST /api/v1/auth/register`, per client IP. Rates read `<count>/<period>`: "
        "`100/hour`, `5/30 seconds`.",
        "rate_limit_login": "`POST /api/v1/auth/login`, per client IP.",
        "rate_limit_refresh": "`POST /api/v1/auth/refresh`, per client IP.",
        "rate_limit_per_ip": "Every rate-limited route, per client IP.",
        "rate_limit_per_user": "Every request with a valid access token, per user.",
        "redis_url": "`redis://`, `rediss://` or `unix://`: counters shared by every worker and replica "
        "(and a readiness check). Unset: counters in each process's memory.",
        "redis_timeout": "Seconds a Redis call may take (connect or answer) before the request is served "
        "without limits (fail open).",
        "trusted_proxies": "IPs or networks of reverse proxies whose `X-Forwarded-For` is believed, "
        "comma-separated. Empty: the socket peer is the client.",
    },
    "Transport": {
        "cors_origins": "Origins (`https://app.example.com`) that browsers may call the API from, "
        "comma-separated. Empty: CORS off, no `Access-Control-*` headers.",
        "allowed_hosts": "Host names the service answers to, comma-separated (`api.example.com`, "
        "`*.example.com` for subdomains; no port). Any other `Host` answers 400 `INVALID_HOST`.",
        "hsts_max_age": "Seconds for `Strict-Transport-Security: max-age=N; includeSubDomains`; `0` sends no "
        "header. Set it only when every subdomain is served over HTTPS.",
    },
    "Tracing": {
        "otel_exporter_otlp_endpoint": "Base URL of an OTLP receiver, `http://` (plain) or `https://` (TLS): "
        "`http://otel-collector:4318`, or `:4317` with gRPC. Unset: no tracing is installed at all.",
        "otel_exporter_otlp_protocol": "With `http/protobuf` spans go to `<endpoint>/v1/traces`.",
        "otel_exporter_otlp_headers": "Headers sent with every export: `key=value` pairs, comma-separated, "
        "values percent-encoded (`authorization=Bearer%20abc`).",
        "otel_service_name": "The traces' `service.name` (it wins over one in `OTEL_RESOURCE_ATTRIBUTES`).",
        "otel_resource_attributes": "More resource attributes, `key=value` pairs, comma-separated, "
        "percent-encoded (`deployment.environment=prod`); `service.version` is the package version unless "
        "given here.",
        "otel_traces_sampler": "`parentbased_*` samplers follow the caller's sampling decision in `traceparent`.",
        "otel_traces_sampler_arg": "The share of traces the `traceidratio` samplers keep. Unset: `1.0`.",
    },
    "Metrics": {
        "metrics_enabled": "`false` installs no metrics at all: no `/metrics`, no middleware, no hooks.",
        "metrics_token": "When set, `/metrics` answers only `Authorization: Bearer <METRICS_TOKEN>` (401 "
        "otherwise). Unset: `/metrics` is open; keep it off the public ingress.",
        "prometheus_multiproc_dir": "An empty, writable directory shared by the workers (prometheus-client's "
        "multiprocess mode). It must be in the process environment before start, not only in `.env`.",
    },
}


class DocsError(Exception):
    """The settings documentation does not match the ``Settings`` class."""


def env_var(field: str) -> str:
    """The environment variable of a field, as ``Settings.from_env`` reads it (``foo_bar``: ``FOO_BAR``)."""
    return field.upper()


def _bounds(info: msgspec.inspect.IntType | msgspec.inspect.FloatType) -> str:
    parts = []
    if info.ge is not None:
        parts.append(f">= {info.ge}")
    if info.gt is not None:
        parts.append(f"> {info.gt}")
    if info.le is not None:
        parts.append(f"<= {info.le}")
    if info.lt is not None:
        parts.append(f"< {info.lt}")
    return f" ({', '.join(parts)})" if parts else ""


def _type(info: msgspec.inspect.Type) -> str:  # noqa: PLR0911  (one answer per kind of type)
    """A field's type and constraints, in words."""
    if isinstance(info, msgspec.inspect.UnionType):
        kinds = [_type(t) for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        return " or ".join(kinds) + ", optional"
    if isinstance(info, msgspec.inspect.BoolType):
        return "`true` or `false`"
    if isinstance(info, msgspec.inspect.IntType):
        return "integer" + _bounds(info)
    if isinstance(info, msgspec.inspect.FloatType):
        return "number" + _bounds(info)
    if isinstance(info, msgspec.inspect.LiteralType):
        return "one of " + ", ".join(f"`{value}`" for value in info.values)
    if isinstance(info, msgspec.inspect.StrType):
        return "string"
    if isinstance(info, msgspec.inspect.VarTupleType):
        return f"comma-separated list of {_type(info.item_type)}s"
    msg = f"no description for the type {info!r}: teach docs/hooks/settings_page.py about it"
    raise DocsError(msg)


def _default(value: Any) -> str:  # noqa: ANN401  (any field's default)
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return ", ".join(f"`{item}`" for item in value) if value else "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def check_prose(prose: Mapping[str, Mapping[str, str]], fields: list[str]) -> None:
    """Every field has prose, exactly once, and prose names only fields of the class.

    Raises:
        DocsError: naming the fields without prose, the unknown ones, and those described twice.
    """
    described = [name for group in prose.values() for name in group]
    missing = [name for name in fields if name not in described]
    unknown = [name for name in described if name not in fields]
    twice = sorted({name for name in described if described.count(name) > 1})
    empty = [name for group in prose.values() for name, text in group.items() if not text.strip()]
    problems = []
    if missing:
        problems.append("no prose for " + ", ".join(env_var(name) for name in missing))
    if unknown:
        problems.append("prose for settings that do not exist: " + ", ".join(env_var(name) for name in unknown))
    if twice:
        problems.append("described more than once: " + ", ".join(env_var(name) for name in twice))
    if empty:
        problems.append("empty prose for " + ", ".join(env_var(name) for name in empty))
    if problems:
        raise DocsError("docs/hooks/settings_page.py PROSE: " + "; ".join(problems))


def render(settings: type[msgspec.Struct] = Settings, prose: Mapping[str, Mapping[str, str]] = PROSE) -> str:
    """The Markdown tables of every setting of ``settings``, grouped as in ``prose``.

    Raises:
        DocsError: see :func:`check_prose`.
    """
    info = msgspec.inspect.type_info(settings)
    if not isinstance(info, msgspec.inspect.StructType):
        msg = f"{settings!r} is not a msgspec Struct"
        raise DocsError(msg)
    by_name = {field.name: field for field in info.fields}
    check_prose(prose, list(by_name))
    lines: list[str] = []
    for group, described in prose.items():
        lines += [f"### {group}", "", "| variable | type | default | what it does |", "| --- | --- | --- | --- |"]
        for name, text in described.items():
            field = by_name[name]
            type_text = _type(field.type)
            lines.append(
                f"| `{env_var(name)}` | {_cell(type_text)} | {_cell(_default(field.default))} | {_cell(text)} |"
            )
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:  # noqa: ARG001
    """Put the generated tables where the configuration page has :data:`MARKER`.

    Raises:
        DocsError: the configuration page has no marker, or the prose does not match the class.
    """
    if page.file.src_uri != PAGE:
        return None
    if MARKER not in markdown:
        msg = f"{PAGE} must contain {MARKER} where the settings tables go"
        raise DocsError(msg)
    return markdown.replace(MARKER, render())
