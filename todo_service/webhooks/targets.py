"""Where a webhook may POST: http(s) URLs whose every address is public, checked at each delivery.

The check resolves the host and refuses loopback, private (RFC 1918, unique-local), link-local,
shared (CGNAT), multicast, reserved and unspecified addresses, unless private targets are allowed
(``WEBHOOK_ALLOW_PRIVATE_TARGETS``); the cloud metadata addresses are refused even then. The
delivery then connects to the address that passed the check, never to a second resolution, so a
DNS answer that changes between the check and the connection (rebinding) cannot reach inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = ("MAX_URL_LENGTH", "Target", "TargetRefused", "TargetRules")

MAX_URL_LENGTH = 2048
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be called; the message says why, in the API's words."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: the request goes to ``url`` (the checked address), as ``host`` (Host header, SNI)."""

    url: httpx.URL
    host: str
    address: IPAddress


async def _addresses(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to now."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        infos = []
    if not infos:
        msg = f"host {host} does not resolve"
        raise TargetRefused(msg)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class TargetRules:
    """Which addresses a webhook may reach."""

    allow_private: bool = False

    def check_url(self, url: str) -> httpx.URL:
        """The URL, if its form is acceptable (scheme, host, no credentials, length).

        Raises:
            TargetRefused: it is not.
        """
        if len(url) > MAX_URL_LENGTH:
            msg = f"must be at most {MAX_URL_LENGTH} characters"
            raise TargetRefused(msg)
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            msg = "must be an http or https URL"
            raise TargetRefused(msg)
        if not parts.hostname:
            msg = "must name a host"
            raise TargetRefused(msg)
        if parts.username is not None or parts.password is not None:
            msg = "must not carry credentials"
            raise TargetRefused(msg)
        try:
            parsed = httpx.URL(url)
            _ = parts.port  # raises for a port out of range
        except (httpx.InvalidURL, ValueError) as exc:
            msg = "is not a valid URL"
            raise TargetRefused(msg) from exc
        return parsed

    def check_address(self, address: IPAddress) -> None:
        """Raise :class:`TargetRefused` if ``address`` may not be reached."""
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        plain = mapped or address
        if plain in _METADATA or plain.is_unspecified:
            msg = f"resolves to {address}, which is never allowed"
            raise TargetRefused(msg)
        if not self.allow_private and (not plain.is_global or plain.is_multicast):
            msg = f"resolves to {address}, a private, loopback, link-local or reserved address"
            raise TargetRefused(msg)

    async def resolve(self, url: str) -> Target:
        """Check the URL and every address its host resolves to; the target to connect to.

        Raises:
            TargetRefused: the URL, its host or one of its addresses is refused.
        """
        parsed = self.check_url(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            address: IPAddress = ipaddress.ip_address(host)
            addresses = [address]
        except ValueError:
            addresses = await _addresses(host, port)
        # Every address must pass: otherwise a host with one public and one private address could be aimed inside.
        for each in addresses:
            self.check_address(each)
        address = addresses[0]
        return Target(url=parsed.copy_with(host=str(address)), host=host, address=address)
