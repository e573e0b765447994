"""Housekeeping that runs in every worker: a step at start, then again every so often."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from litestar import Litestar

__all__ = ("periodic",)

logger = logging.getLogger(__name__)


def periodic(
    name: str, interval: float, step: Callable[[], Awaitable[str]]
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that runs ``step`` at start and every ``interval`` seconds; it logs what the step says.

    A failed step is logged and tried again at the next interval: housekeeping never stops the app.
    """

    async def forever() -> None:
        while True:
            try:
                logger.info("%s: %s", name, await step())
            except Exception:
                logger.exception("%s failed; retrying in %g s", name, interval)
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(forever(), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan
