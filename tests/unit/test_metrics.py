"""The metrics module on its own: the multiprocess-directory check, the pool gauge, the hooks.

Engines are real (aiosqlite on a temp file), the limiter is the real one on memory storage. Values
are read from prometheus-client's process-wide registry, before and after.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.factories import make_settings
from todo_service.audit.log import AuditLog, Event, Outcome
from todo_service.core.errors import RateLimited
from todo_service.core.settings import SettingsError
from todo_service.observability.families import families
from todo_service.observability.metrics import build_metrics, multiprocess_dir, watch_pool
from todo_service.ratelimit.limiter import RateLimiter, build_rate_limiter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from litestar.types import Scope

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def sample(name: str, **labels: str) -> float:
    families()  # registered on first use
    return REGISTRY.get_sample_value(name, labels) or 0.0


def checked_out() -> float:
    return sample("todo_db_pool_checked_out")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A watched engine on a SQLite file of its own (in its own directory)."""
    (tmp_path / "db").mkdir()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pool.db'}")
    watch_pool(engine)
    yield engine
    await engine.dispose()


# --- PROMETHEUS_MULTIPROC_DIR ----------------------------------------------------------------------


def test_without_the_variable_metrics_stay_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert multiprocess_dir(make_settings("sqlite://")) is None


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_an_unusable_directory_is_refused(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics"
    if kind == "file":
        target.write_text("not a directory")
    monkeypatch.setenv(VARIABLE, "" if kind == "empty" else str(target))
    with pytest.raises(SettingsError, match=f"^invalid setting {VARIABLE}: .* not an existing, writable directory"):
        multiprocess_dir(make_settings("sqlite://"))


def test_a_directory_only_in_dotenv_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    settings = make_settings("sqlite://", prometheus_multiproc_dir=str(tmp_path))
    with pytest.raises(SettingsError, match=f"^invalid setting {VARIABLE}: must be in the process environment"):
        multiprocess_dir(settings)


def test_a_directory_set_after_import_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This process imported prometheus-client without the variable: it keeps values in memory.
    monkeypatch.setenv(VARIABLE, str(tmp_path))
    with pytest.raises(SettingsError, match="set after prometheus-client was imported"):
        multiprocess_dir(make_settings("sqlite://", prometheus_multiproc_dir=str(tmp_path)))


def test_disabled_metrics_check_and_hook_nothing(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "/nonexistent/metrics")
    settings = make_settings("sqlite://", metrics_enabled=False, rate_limit_enabled=True)
    audit, limiter = AuditLog(engine, "k"), build_rate_limiter(settings)
    assert build_metrics(settings, engine, audit, limiter, status_of=lambda _: 500) is None
    assert audit.on_record is None
    assert limiter is not None
    assert limiter.on_rejected is None


# --- the pool gauge ---------------------------------------------------------------------------------


async def test_checkouts_and_checkins_move_the_gauge(engine: AsyncEngine) -> None:
    base = checked_out()
    async with engine.connect() as first:
        await first.execute(text("SELECT 1"))
        assert checked_out() == base + 1
        async with engine.connect() as second:
            await second.execute(text("SELECT 1"))
            assert checked_out() == base + 2
        assert checked_out() == base + 1
    assert checked_out() == base


async def test_invalidated_and_detached_connections_are_given_back(engine: AsyncEngine) -> None:
    base = checked_out()
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        await connection.invalidate()  # closed, then checked in when the block ends
    assert checked_out() == base
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert checked_out() == base + 1
        raw.detach()  # leaves the pool: it is closed later, never checked in
        assert checked_out() == base
    assert checked_out() == base


async def test_a_failed_reconnect_is_not_counted_as_a_checkin(engine: AsyncEngine, tmp_path: Path) -> None:
    base = checked_out()
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        await connection.invalidate()  # the pool keeps the entry, to reconnect on its next checkout
    shutil.rmtree(tmp_path / "db")  # the reconnect will fail: SQLite cannot create the file
    with pytest.raises(Exception, match="unable to open database file"):
        async with engine.connect():
            pass
    # SQLAlchemy sends a checkin event for that entry, which was never handed out.
    assert checked_out() == base


# --- the hooks --------------------------------------------------------------------------------------


def limited_scope() -> Scope:
    return cast("Scope", {"type": "http", "method": "GET", "path": "/x", "headers": [], "client": ("192.0.2.1", 1)})


async def test_every_refused_request_is_counted_by_rule(engine: AsyncEngine) -> None:
    settings = make_settings("sqlite://", rate_limit_enabled=True, rate_limit_per_ip="1/minute")
    limiter = build_rate_limiter(settings)
    assert isinstance(limiter, RateLimiter)
    assert build_metrics(settings, engine, AuditLog(engine, "k"), limiter, status_of=lambda _: 500) is not None
    before = sample("todo_rate_limit_rejections_total", rule="per_ip")
    checks = [(limiter.per_ip, "192.0.2.1")]
    await limiter.enforce(limited_scope(), checks)
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limiter.enforce(limited_scope(), checks)
    assert sample("todo_rate_limit_rejections_total", rule="per_ip") == before + 3


async def test_audit_events_are_counted_even_when_their_row_is_lost(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(engine, "k")  # no tables in this database: every write fails
    assert build_metrics(make_settings("sqlite://"), engine, audit, None, status_of=lambda _: 500) is not None
    labels = {"event": "login_failed", "outcome": "failure"}
    before = sample("todo_audit_events_total", **labels)
    trail = audit.offline_trail("unit-test")
    trail.record(Event.LOGIN_FAILED, Outcome.FAILURE, email="x@example.com")
    trail.record(Event.LOGIN_FAILED, Outcome.FAILURE, email="x@example.com")
    with caplog.at_level(logging.ERROR, logger="todo_service.audit.log"):
        await audit.flush_trail(trail)
    assert "could not write 2 audit events" in caplog.text
    assert sample("todo_audit_events_total", **labels) == before + 2
