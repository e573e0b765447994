"""Readiness: ask every dependency, concurrently and with a short timeout each.

A dependency is either *required* (the database: without it no request can be answered, so the
probe answers 503 and the orchestrator takes the instance out of rotation) or *optional* (Redis:
the rate limiter fails open, so the probe answers 200 with ``status: "degraded"``). An
optional dependency must never make readiness fail: all replicas share it, so a Redis outage would
take every one of them out of rotation at once, over a cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import text

from todo_service.core.errors import FieldError, ServiceUnavailable
from todo_service.system.schemas import Readiness

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("Check", "NotReady", "Outcome", "ReadinessProbe", "database_check")

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
# Called after each probe with each dependency's name and whether it answered (e.g. a metric).
Outcome = Callable[[str, bool], None]


def database_check(engine: AsyncEngine) -> Check:
    """A check that runs ``SELECT 1`` on a pooled connection."""

    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


class NotReady(Exception):
    """A check's answer that the service is not ready, in words: the probe reports the message as is."""


class ReadinessProbe:
    """Runs named checks, each within ``timeout`` seconds.

    Ready when every check passes; degraded (still 200) when only checks named in ``optional``
    fail; not ready (503) when a required one fails. An optional dependency that goes down is
    logged once at WARNING (and once at INFO when it is back), not on every probe.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        timeout: float,
        *,
        optional: Collection[str] = (),
        on_outcome: Outcome | None = None,
    ) -> None:
        self.checks = dict(checks)
        self.timeout = timeout
        self.optional = frozenset(optional)
        self.on_outcome = on_outcome
        self._down: set[str] = set()

    async def check(self) -> Readiness:
        """Every check's outcome.

        Raises:
            ServiceUnavailable: naming each dependency that failed and why, when a required one did.
        """
        names = list(self.checks)
        outcomes = dict(await asyncio.gather(*(self._run(name) for name in names)))
        for name, problem in outcomes.items():
            self._note(name, problem)
        failures = [
            FieldError(field=name, message=problem, source="dependency")
            for name, problem in outcomes.items()
            if problem and name not in self.optional
        ]
        if failures:
            summary = ", ".join(f"{failure.field} ({failure.message})" for failure in failures)
            raise ServiceUnavailable(f"Not ready: {summary}", errors=failures)
        degraded = [name for name, problem in outcomes.items() if problem]
        checks = {name: problem or "ok" for name, problem in outcomes.items()}
        if degraded:
            return Readiness(checks=checks, status="degraded", degraded=degraded)
        return Readiness(checks=checks, status="ready")

    def _note(self, name: str, problem: str | None) -> None:
        """Report the outcome (metric), and log an optional dependency going down or coming back."""
        if self.on_outcome is not None:
            self.on_outcome(name, problem is None)
        if name not in self.optional:
            return  # a required one fails the probe: the 503 is logged as such
        if problem and name not in self._down:
            self._down.add(name)
            logger.warning("readiness: %s is down (%s); serving degraded", name, problem)
        elif not problem and name in self._down:
            self._down.discard(name)
            logger.info("readiness: %s answers again", name)

    async def _run(self, name: str) -> tuple[str, str | None]:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except TimeoutError:
            return name, f"no answer within {self.timeout:g}s"
        except NotReady as exc:  # the check's own words (the schema: where it is, what to run)
            return name, str(exc)
        except Exception as exc:  # noqa: BLE001  (any failure means not ready; the type says enough)
            return name, f"unreachable ({type(exc).__name__})"
        return name, None
