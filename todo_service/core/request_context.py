"""Who is asking, per request: the client's IP address and the request id, kept in the ASGI scope."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import Scope

__all__ = ("CLIENT_IP_KEY", "RATE_LIMIT", "REQUEST_ID_KEY", "ClientAddress", "request_id_of")

REQUEST_ID_KEY = "request_id"
# A route's ``opt`` key, declared by the route itself: the name of its own rate-limit rule (counted
# per client IP, beside the per-IP rule), or False for a route that is never limited (probes, docs).
RATE_LIMIT = "rate_limit"
CLIENT_IP_KEY = "client_ip"
_UNKNOWN = "unknown"


def _state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})


def request_id_of(scope: Scope) -> str | None:
    """The request id the request-id middleware gave this request, if it ran."""
    value = _state(scope).get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


_MAX_VERDICTS = 4096


class ClientAddress:
    """Finds the client's IP: the socket peer, unless that peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right, skipping addresses of
    trusted proxies; the first other address is the client. Anything a client could forge (the
    left part of the header, or the header when the peer is not trusted) is ignored.
    """

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = tuple(ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies)
        self._verdicts: dict[str, bool] = {}  # address -> trusted: the peers are a few proxies, asked every request

    def of(self, scope: Scope) -> str:
        """The client IP for this request (computed once, then kept in the scope state)."""
        state = _state(scope)
        if (known := state.get(CLIENT_IP_KEY)) is not None:
            return str(known)
        client = scope.get("client")
        address = client[0] if client else _UNKNOWN
        if self._trusted and self._is_trusted(address):
            address = self._from_forwarded_for(scope) or address
        state[CLIENT_IP_KEY] = address
        return address

    def _is_trusted(self, address: str) -> bool:
        if (verdict := self._verdicts.get(address)) is not None:
            return verdict
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        verdict = any(ip in network for network in self._trusted)
        if len(self._verdicts) >= _MAX_VERDICTS:
            self._verdicts.clear()  # bounded: forwarded-for hops are the clients' own addresses
        self._verdicts[address] = verdict
        return verdict

    def _from_forwarded_for(self, scope: Scope) -> str | None:
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name.lower() == b"x-forwarded-for":
                hops.extend(hop.strip() for hop in value.decode("latin-1").split(","))
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return None  # a malformed hop: trust nothing further left
            if not self._is_trusted(hop):
                return hop
        return None
