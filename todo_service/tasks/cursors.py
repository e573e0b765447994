"""Cursors of the change feed and of task listings: opaque to clients, and signed.

A forged or mangled cursor is refused, and so is another user's, or another listing's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from todo_service.core.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from todo_service.tasks.schemas import TaskFilters

__all__ = ("FIRST", "START", "Cursors", "ListingCursors", "Seal")

START = (0, UUID(int=0))  # before every change
FIRST = "start"  # a listing's cursor before its first task
_VERSION = 1
_LAYOUT = struct.Struct(">BQ16s")  # version, revision, task id
_MAC_BYTES = 12
_KEPT = 10_000  # verified cursors remembered per process
_INVALID = "is not a cursor this service gave out: read the feed again from the beginning"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANTS = frozenset({"created_at", "updated_at", "due_date"})  # sort keys that are instants


def _refused(message: str) -> ValidationFailed:
    errors = [FieldError(field="cursor", message=message, source="query")]
    return ValidationFailed(f"Invalid cursor: {message}", errors=errors)


class Seal:
    """Signs a payload for one owner (and what it was given for: ``bound``), and opens it again."""

    def __init__(self, secret: str, purpose: bytes) -> None:
        self.key = hashlib.sha256(purpose + b"\x00" + secret.encode()).digest()

    def close(self, owner_id: UUID, payload: bytes, bound: bytes = b"") -> str:
        """``payload`` and its MAC, base64url without padding."""
        return base64.urlsafe_b64encode(payload + self._mac(owner_id, payload, bound)).rstrip(b"=").decode()

    def open(self, owner_id: UUID, token: str, bound: bytes = b"") -> bytes | None:
        """The payload ``token`` seals, or None: mangled, forged, another owner's, or bound to something else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(owner_id, payload, bound)):
            return None
        return payload

    def _mac(self, owner_id: UUID, payload: bytes, bound: bytes) -> bytes:
        message = owner_id.bytes + payload + bound if bound else owner_id.bytes + payload
        return hmac.new(self.key, message, hashlib.sha256).digest()[:_MAC_BYTES]


class Cursors:
    """Make and read cursors for one owner's feed: a position (revision, task id) and its MAC.

    ``listing``: the cursors of task listings read by keyset (:class:`ListingCursors`).
    """

    def __init__(self, secret: str) -> None:
        self.seal = Seal(secret, b"todo-service change-feed cursor")
        self.listing = ListingCursors(secret)
        # Cursors already verified, by (owner, cursor): a client that polls sends the same one again
        # and again. Bounded; a position never changes, so an entry is never stale.
        self._read: dict[tuple[UUID, str], tuple[int, UUID]] = {}

    def make(self, owner_id: UUID, position: tuple[int, UUID]) -> str:
        """The cursor of ``position`` in ``owner_id``'s feed."""
        return self.seal.close(owner_id, _LAYOUT.pack(_VERSION, position[0], position[1].bytes))

    def read(self, owner_id: UUID, cursor: str) -> tuple[int, UUID]:
        """The position in ``cursor``.

        Raises:
            ValidationFailed: not a cursor of this owner's feed (mangled, forged, or another user's).
        """
        if (known := self._read.get((owner_id, cursor))) is not None:
            return known
        payload = self.seal.open(owner_id, cursor)
        if payload is None or len(payload) != _LAYOUT.size:
            raise _refused(_INVALID)
        _, revision, task_id = _LAYOUT.unpack(payload)
        if len(self._read) >= _KEPT:
            self._read.clear()  # cheaper than ordering entries; the next polls verify once again
        position = self._read[owner_id, cursor] = revision, UUID(bytes=task_id)
        return position


class ListingCursors:
    """Cursors of a task listing read by keyset: the sort key values of the last task shown.

    A cursor is bound to its owner and to the listing it came from (filters and sort, not the page
    size): the same cursor with other filters or another order is refused, since it would name a
    place in a different sequence.
    """

    def __init__(self, secret: str) -> None:
        self.seal = Seal(secret, b"todo-service listing cursor")

    def make(self, owner_id: UUID, filters: TaskFilters, keys: list[Any]) -> str:
        """The cursor after the task whose sort key values are ``keys`` (the sort's, then its id)."""
        names = _names(filters.sort)
        values = [_plain(name, value) for name, value in zip(names, keys, strict=True)]
        return self.seal.close(owner_id, msgspec.msgpack.encode(values), _bound(filters))

    def read(self, owner_id: UUID, filters: TaskFilters, cursor: str) -> list[Any]:
        """The sort key values in ``cursor`` (the sort's, then the task id), typed as the columns are.

        Raises:
            ValidationFailed: not a cursor of this owner's listing with these filters and this sort.
        """
        payload = self.seal.open(owner_id, cursor, _bound(filters))
        if payload is None:
            raise _refused(
                f"is not a cursor of this listing: start from cursor={FIRST} (a cursor belongs to the "
                "filters and sort it came with)"
            )
        names = _names(filters.sort)
        return [_typed(name, value) for name, value in zip(names, msgspec.msgpack.decode(payload), strict=True)]


def _names(sort: tuple[str, ...]) -> list[str]:
    return [key.lstrip("-") for key in sort] + ["id"]


def _bound(filters: TaskFilters) -> bytes:
    """What a listing cursor belongs to: every filter and the sort (not the page or its size)."""
    return msgspec.json.encode(msgspec.structs.replace(filters, page=1, limit=1))


def _plain(name: str, value: Any) -> Any:  # noqa: ANN401  (a sort key's value: its column's type)
    """A key value as msgpack holds it: instants as microseconds since the epoch, the id as bytes."""
    if value is None:
        return None
    if name in _INSTANTS:
        return (value - _EPOCH) // timedelta(microseconds=1)
    if name == "id":
        return value.bytes
    return value


def _typed(name: str, value: Any) -> Any:  # noqa: ANN401  (the inverse of _plain)
    if value is None:
        return None
    if name in _INSTANTS:
        return _EPOCH + timedelta(microseconds=value)
    if name == "id":
        return UUID(bytes=value)
    return value
