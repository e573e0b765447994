"""Trusted hosts: a request whose ``Host`` names none of ``ALLOWED_HOSTS`` answers 400 ``INVALID_HOST``.

Litestar's own ``AllowedHostsConfig`` is not used: it compares the whole ``Host`` value, port
included, case-sensitively (``api.example.com:8443`` or ``API.example.com`` are refused when
``api.example.com`` is allowed), redirects ``www.`` hosts by default, and answers with a body of
its own instead of the contract's error body. :func:`check_host` (run by the front door) compares the host name alone
(lower-cased, without port or trailing dot) with a set of names and of ``*.`` suffixes, and
raises an :class:`AppError` that the app's exception handler turns into the contract's body.

A request with more than one ``Host`` header is refused the same way, whatever ``ALLOWED_HOSTS``
says (RFC 9112, section 3.2: a server must answer 400 to it): a proxy and the application could
each read a different one, which is how cache poisoning and routing around a host check work.

Like every app middleware, the front door runs only for requests that match a route: an unknown path answers
404 whatever its ``Host`` (nothing is built from the host there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from todo_service.core.errors import AppError
from todo_service.core.settings import SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import Scope

__all__ = ("AllowedHosts", "InvalidHost", "check_host", "host_count", "host_of")

_HOST = b"host"


class InvalidHost(AppError):
    """The ``Host`` header names a host this service does not answer to."""

    status_code = 400
    error_code = "INVALID_HOST"
    default_detail = "The Host header does not name a host this service answers to"


@dataclass(frozen=True)
class AllowedHosts:
    """Host names that may be asked for: exact names, and ``*.example.com`` as the suffix ``.example.com``."""

    names: frozenset[str]
    suffixes: tuple[str, ...]

    @classmethod
    def parse(cls, hosts: Iterable[str]) -> AllowedHosts | None:
        """``ALLOWED_HOSTS`` as a matcher; None when it allows any host (empty, or contains ``*``).

        Raises:
            SettingsError: an entry is not a host name, ``*.`` + a domain, or a bracketed IPv6 address.
        """
        hosts = [host.strip().lower() for host in hosts]
        if not hosts or "*" in hosts:
            return None
        names: set[str] = set()
        suffixes: list[str] = []
        for host in hosts:
            name = host.removeprefix("*.").rstrip(".")
            ipv6 = name.startswith("[") and name.endswith("]")
            if not name or "*" in name or "/" in name or (":" in name and not ipv6):
                msg = f"invalid setting ALLOWED_HOSTS: {host!r} is not a host name (no scheme or port)"
                raise SettingsError(msg)
            if host.startswith("*."):
                suffixes.append(f".{name}")
            else:
                names.add(name)
        return cls(frozenset(names), tuple(suffixes))

    def allows(self, host: str) -> bool:
        """Whether ``host`` (as :func:`host_of` gives it) is allowed."""
        return host in self.names or (bool(host) and host.endswith(self.suffixes))


def host_of(scope: Scope) -> str:
    """The host name the request asked for: lower-case, without port or trailing dot; ``""`` if none."""
    for name, value in scope.get("headers", ()):
        if name.lower() == _HOST:
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # an IPv6 literal, maybe with a port: "[::1]:8000"
                end = host.find("]")
                return host[: end + 1] if end > 0 else ""
            return host.partition(":")[0].rstrip(".")
    return ""


def host_count(scope: Scope) -> int:
    """How many ``Host`` headers the request has."""
    return sum(1 for name, _ in scope.get("headers", ()) if name.lower() == _HOST)


def check_host(scope: Scope, allowed: AllowedHosts | None) -> None:
    """Refuse a request with several ``Host`` headers, or (with ``allowed``) for another host.

    It runs before authentication or rate limiting look at the request (the front door).

    Raises:
        InvalidHost: several ``Host`` headers; or, with ``allowed``, none or another host.
    """
    if host_count(scope) > 1:
        raise InvalidHost("The request has more than one Host header")
    if allowed is not None and not allowed.allows(host_of(scope)):
        raise InvalidHost
