"""Readiness: ask every dependency, concurrently and with a short timeout each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import text

from todo_service.lib.errors import FieldError, ServiceUnavailable
from todo_service.system.schemas import Readiness

if TYPE_CHECKING:
    from limits.aio.storage import Storage
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("Check", "ReadinessProbe", "database_check", "redis_check")

Check = Callable[[], Awaitable[None]]


def database_check(engine: AsyncEngine) -> Check:
    """A check that runs ``SELECT 1`` on a pooled connection."""

    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def redis_check(storage: Storage) -> Check:
    """A check that PINGs the rate limiter's Redis."""

    async def check() -> None:
        if not await storage.check():
            raise ConnectionError

    return check


class ReadinessProbe:
    """Runs named checks; the service is ready only when all of them pass within ``timeout`` seconds."""

    def __init__(self, checks: Mapping[str, Check], timeout: float) -> None:
        self.checks = dict(checks)
        self.timeout = timeout

    async def check(self) -> Readiness:
        """Every check's outcome.

        Raises:
            ServiceUnavailable: naming each dependency that failed and why.
        """
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._run(name) for name in names))
        failures = [
            FieldError(field=name, message=problem, source="dependency") for name, problem in outcomes if problem
        ]
        if failures:
            summary = ", ".join(f"{failure.field} ({failure.message})" for failure in failures)
            raise ServiceUnavailable(f"Not ready: {summary}", errors=failures)
        return Readiness(checks=dict.fromkeys(names, "ok"))

    async def _run(self, name: str) -> tuple[str, str | None]:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except TimeoutError:
            return name, f"no answer within {self.timeout:g}s"
        except Exception as exc:  # noqa: BLE001  (any failure means not ready; the type says enough)
            return name, f"unreachable ({type(exc).__name__})"
        return name, None
