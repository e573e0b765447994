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
STOP_GRACE_SECONDS = 10.0  # how long shutdown waits for a step under way before cancelling it


def periodic(
    name: str, interval: float, step: Callable[[], Awaitable[str]]
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that runs ``step`` at start and every ``interval`` seconds; it logs what the step says.

    A failed step is logged and tried again at the next interval: housekeeping never stops the app.
    At shutdown a step under way finishes first (for at most :data:`STOP_GRACE_SECONDS`): cancelled
    in the middle of a statement, it could leave its pooled connection checked out.
    """

    async def forever(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                logger.info("%s: %s", name, await step())
            except Exception:
                logger.exception("%s failed; retrying in %g s", name, interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        task = asyncio.create_task(forever(stopping), name=name)
        try:
            yield
        finally:
            stopping.set()
            done, _pending = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan
