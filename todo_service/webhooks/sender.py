"""One signed POST to a checked address: pooled connections, no redirects, a bounded body and time.

Connections are pooled per target host (one httpx client each, the least recently used closed past a
bound): a pool keyed by address alone could hand a TLS connection made for one host name to another
host on the same address. Proxies from the environment are ignored (``trust_env=False``): a proxy
would resolve the host again, past the address check.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import httpx

from todo_service import __version__
from todo_service.webhooks.outbox import Attempt
from todo_service.webhooks.signing import sign

if TYPE_CHECKING:
    from todo_service.webhooks.targets import Target

__all__ = ("MAX_RESPONSE_BYTES", "Sender")

MAX_RESPONSE_BYTES = 64 * 1024
_MAX_HOSTS = 256
_USER_AGENT = f"todo-service-webhooks/{__version__}"


class Sender:
    """POSTs signed events; one per worker process, closed with it."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._clients: OrderedDict[tuple[str, str], httpx.AsyncClient] = OrderedDict()

    def _client(self, target: Target) -> httpx.AsyncClient:
        key = (target.host, str(target.address))
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=4),
            )
            self._clients[key] = client
            if len(self._clients) > _MAX_HOSTS:
                _, oldest = self._clients.popitem(last=False)
                # Closing may wait on sockets: let it finish in the background.
                _closing.add(task := asyncio.create_task(oldest.aclose()))
                task.add_done_callback(_closing.discard)
        self._clients.move_to_end(key)
        return client

    async def post(self, target: Target, original: httpx.URL, *, message_id: str, secret: str, body: bytes) -> Attempt:
        """POST ``body`` to ``target`` as ``original``'s host, signed; what came back."""
        timestamp = int(time.time())
        headers = {
            "Host": original.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body),
        }
        # TLS: the name the certificate must carry is the URL's host, not the address connected to.
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        client = self._client(target)
        request = client.build_request("POST", target.url, content=body, headers=headers, extensions=extensions)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    # Raw bytes (no decompression): the limit holds for what crosses the wire.
                    async for chunk in response.aiter_raw():
                        read = min(read + len(chunk), MAX_RESPONSE_BYTES)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return Attempt(None, _since(started), error=f"no response within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Attempt(None, _since(started), error=f"{type(exc).__name__}: {exc}"[:255])
        error = None
        if 300 <= response.status_code < 400:  # noqa: PLR2004
            error = "redirects are not followed"
        return Attempt(response.status_code, _since(started), response_bytes=read, error=error)

    async def close(self) -> None:
        """Close every pooled connection."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


_closing: set[asyncio.Task[None]] = set()


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
