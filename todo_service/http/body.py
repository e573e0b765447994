"""Request bodies: a deadline for their arrival (408), and a client that leaves mid-upload (499)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from todo_service.core.errors import ClientClosedRequest, RequestTimeout

if TYPE_CHECKING:
    from litestar.types import Receive, ReceiveMessage

__all__ = ("bounded_receive",)


def bounded_receive(receive: Receive, timeout: float) -> Receive:
    """``receive`` that bounds the time spent waiting for a request body, and tells a client that left from a bug.

    - The body must arrive within ``timeout`` seconds of waiting in all (``REQUEST_BODY_TIMEOUT_SECONDS``):
      time the app spends elsewhere does not count, each wait for the next chunk does. Past it,
      :class:`RequestTimeout` (408, ``Connection: close``), so a client that trickles a byte at a
      time cannot hold a connection, and its file descriptor, for longer than that.
    - ``http.disconnect`` before the body is complete (the client dropped mid-upload) raises
      :class:`ClientClosedRequest` (499, nobody reads it) where Litestar would raise a 500 and log
      an error. Once the body is complete, receive is left alone: a streaming response still
      learns of the disconnect as usual.
    """
    budget = timeout
    complete = False
    clock = asyncio.get_running_loop().time

    async def bounded() -> ReceiveMessage:
        nonlocal budget, complete
        if complete:
            return await receive()
        started = clock()
        try:
            async with asyncio.timeout(max(budget, 0)):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {timeout:g}s") from None
        budget -= clock() - started
        if message["type"] == "http.disconnect":
            raise ClientClosedRequest
        complete = not message.get("more_body", False)
        return message

    return bounded
