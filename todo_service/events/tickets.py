"""Stream tickets: what a browser's ``EventSource`` (which cannot send headers) puts in the URL instead of a token.

A ticket is short-lived (``EVENTS_TICKET_TTL_SECONDS``), names the caller's login session and the
owner whose events it opens, and is signed with a key of its own, derived from ``SECRET_KEY``:
an access token is never a valid ticket (and a ticket never a valid access token), so a
long-lived credential cannot end up in a URL. Logging out ends the session, and with it every
ticket of it: each read of the feed checks the session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from uuid import UUID

from todo_service.core.errors import Forbidden
from todo_service.events.errors import InvalidTicket, TicketExpired
from todo_service.security.access import Caller

__all__ = ("Tickets",)

_VERSION = 1
_LAYOUT = struct.Struct(">BQ16s16s16s")  # version, expiry (unix seconds), caller, session, owner
_MAC_BYTES = 16


class Tickets:
    """Issue and check stream tickets."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self.key = hashlib.sha256(b"todo-service task-events ticket\x00" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds

    def issue(self, caller: Caller, owner_id: UUID) -> str:
        """A ticket for ``caller`` to open ``owner_id``'s event stream until it expires."""
        expires = int(time.time()) + self.ttl_seconds
        payload = _LAYOUT.pack(_VERSION, expires, caller.user_id.bytes, caller.session_id.bytes, owner_id.bytes)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def caller(self, ticket: str, owner_id: UUID) -> Caller:
        """Who ``ticket`` was issued to, if it is valid for ``owner_id``'s stream now.

        Raises:
            InvalidTicket: not a ticket of this service (mangled, forged, an access token).
            TicketExpired: it was, until its lifetime passed.
            Forbidden: it opens another user's stream.
        """
        try:
            raw = base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4))
        except (binascii.Error, ValueError):
            raise InvalidTicket from None
        payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if len(raw) != _LAYOUT.size + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidTicket
        version, expires, user, session, owner = _LAYOUT.unpack(payload)
        if version != _VERSION:
            raise InvalidTicket
        if time.time() >= expires:
            raise TicketExpired
        if owner != owner_id.bytes:
            raise Forbidden("This ticket opens another user's events")
        return Caller(user_id=UUID(bytes=user), session_id=UUID(bytes=session))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
