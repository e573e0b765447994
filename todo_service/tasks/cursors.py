"""Change-feed cursors: opaque to clients, signed so that a forged or mangled one is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from uuid import UUID

from todo_service.core.errors import FieldError, ValidationFailed

__all__ = ("START", "Cursors")

START = (0, UUID(int=0))  # before every change
_VERSION = 1
_LAYOUT = struct.Struct(">BQ16s")  # version, revision, task id
_MAC_BYTES = 12
_KEPT = 10_000  # verified cursors remembered per process
_INVALID = "is not a cursor this service gave out: read the feed again from the beginning"


class Cursors:
    """Make and read cursors for one owner's feed: a position (revision, task id) and its MAC."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.sha256(b"todo-service change-feed cursor\x00" + secret.encode()).digest()
        # Cursors already verified, by (owner, cursor): a client that polls sends the same one again
        # and again. Bounded; a position never changes, so an entry is never stale.
        self._read: dict[tuple[UUID, str], tuple[int, UUID]] = {}

    def make(self, owner_id: UUID, position: tuple[int, UUID]) -> str:
        """The cursor of ``position`` in ``owner_id``'s feed."""
        payload = _LAYOUT.pack(_VERSION, position[0], position[1].bytes)
        return base64.urlsafe_b64encode(payload + self._mac(owner_id, payload)).rstrip(b"=").decode()

    def read(self, owner_id: UUID, cursor: str) -> tuple[int, UUID]:
        """The position in ``cursor``.

        Raises:
            ValidationFailed: not a cursor of this owner's feed (mangled, forged, or another user's).
        """
        if (known := self._read.get((owner_id, cursor))) is not None:
            return known
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if len(raw) != _LAYOUT.size + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(owner_id, payload)):
            raise ValidationFailed(
                f"Invalid cursor: {_INVALID}", errors=[FieldError(field="cursor", message=_INVALID, source="query")]
            )
        _, revision, task_id = _LAYOUT.unpack(payload)
        if len(self._read) >= _KEPT:
            self._read.clear()  # cheaper than ordering entries; the next polls verify once again
        position = self._read[owner_id, cursor] = revision, UUID(bytes=task_id)
        return position

    def _mac(self, owner_id: UUID, payload: bytes) -> bytes:
        return hmac.new(self.key, owner_id.bytes + payload, hashlib.sha256).digest()[:_MAC_BYTES]
