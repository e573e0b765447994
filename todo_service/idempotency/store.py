"""Idempotency keys in the database (IETF httpapi ``Idempotency-Key`` draft).

A request with a key first **claims** it (one INSERT … ON CONFLICT, committed at once, so every
worker and replica sees the claim). Its work then runs in one transaction that also **stores the
response** under the claim: the change and its record commit together or not at all, so a crash
can never leave a task created without its record (a retry would create it again) or a record
without its task. A retry finds the stored response and gets it again; a different request under
the same key is refused; a retry while the first still runs gets 409. A claim whose request
died (its lease passed) can be taken over: the old holder's transaction, if it is somehow still
running, then fails to store its response and rolls back, so the work is done once.

Keys are scoped per user, kept ``IDEMPOTENCY_KEY_TTL_HOURS`` and pruned after.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from todo_service.db.models import IdempotencyKey
from todo_service.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from uuid import UUID

    from sqlalchemy.sql import Executable

    from todo_service.db.statements import Statements

__all__ = ("KEY_PATTERN", "Idempotency", "StoredResponse", "fingerprint")

KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"  # printable ASCII


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as it is kept for replays: status, the headers that matter, and the body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for one key: method, path and body (SHA-256)."""
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


T = IdempotencyKey.__table__.c


def _claim(dialect: str) -> Executable:
    """Insert the key, or take over an expired one or one whose request died; RETURNING the claim."""
    values = {
        name: bindparam(name, type_=T[name].type)
        for name in ("id", "user_id", "key", "fingerprint", "claim", "lease_until", "expires_at")
    }
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(IdempotencyKey).values(values)
    now = bindparam("now", type_=T["expires_at"].type)
    taken_over = {name: insert.excluded[name] for name in ("fingerprint", "claim", "lease_until", "expires_at")}
    return insert.on_conflict_do_update(
        index_elements=[T["user_id"], T["key"]],
        set_={**taken_over, "status": None, "headers": None, "body": None},
        where=or_(T["expires_at"] <= now, (T["status"].is_(None)) & (T["lease_until"] <= now)),
    ).returning(T["claim"])


# (Placeholders may not share a column's name in an UPDATE: "for_" prefixes them.)
_THIS_KEY = (T["user_id"] == bindparam("for_user"), T["key"] == bindparam("for_key"))
_FIND = select(T["fingerprint"], T["status"], T["headers"], T["body"]).where(*_THIS_KEY)
_STORE = (
    update(IdempotencyKey)
    .where(*_THIS_KEY, T["claim"] == bindparam("for_claim"), T["status"].is_(None))
    .values(
        status=bindparam("for_status", type_=T["status"].type),
        headers=bindparam("for_headers", type_=T["headers"].type),
        body=bindparam("for_body", type_=T["body"].type),
    )
)
_RELEASE = delete(IdempotencyKey).where(*_THIS_KEY, T["claim"] == bindparam("for_claim"))
_PRUNE = delete(IdempotencyKey).where(T["expires_at"] < bindparam("now", type_=T["expires_at"].type))


class Idempotency:
    """Runs a POST's work at most once per (user, key); answers retries from the stored response."""

    def __init__(self, statements: Statements, *, ttl: timedelta, lease: timedelta) -> None:
        self.statements = statements
        self.ttl = ttl
        self.lease = lease
        self._claim = _claim(statements.dialect_name)

    async def run(
        self, user_id: UUID, key: str, request_fingerprint: str, work: Callable[[Statements], Awaitable[StoredResponse]]
    ) -> tuple[StoredResponse, bool]:
        """The response of ``work`` (run in a transaction, at most once), and whether it is a replay.

        Raises:
            IdempotencyKeyReused: the key came with a different request.
            IdempotencyKeyInUse: the first request with this key is still running.
        """
        claim = await self._take(user_id, key, request_fingerprint)
        if isinstance(claim, StoredResponse):
            return claim, True
        try:
            async with self.statements.transaction() as db:
                response = await work(db)
                stored = {
                    "for_user": user_id,
                    "for_key": key,
                    "for_claim": claim,
                    "for_status": response.status,
                    "for_headers": msgspec.json.encode(response.headers).decode(),
                    "for_body": response.body,
                }
                if await db.affected(_STORE, stored) != 1:  # taken over meanwhile: this work must not count
                    raise IdempotencyKeyInUse  # noqa: TRY301  (it must roll the transaction back, like any error)
        except BaseException:
            # The work failed (nothing of it was kept): a retry with the same key may run it again.
            release = {"for_user": user_id, "for_key": key, "for_claim": claim}
            await asyncio.shield(self.statements.affected(_RELEASE, release))
            raise
        return response, False

    async def prune(self, now: datetime | None = None) -> int:
        """Delete the keys past their time; returns how many went."""
        return await self.statements.affected(_PRUNE, {"now": now or datetime.now(UTC)})

    async def _take(self, user_id: UUID, key: str, request_fingerprint: str) -> UUID | StoredResponse:
        now = datetime.now(UTC)
        claim = uuid.uuid4()
        params = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "key": key,
            "fingerprint": request_fingerprint,
            "claim": claim,
            "lease_until": now + self.lease,
            "expires_at": now + self.ttl,
            "now": now,
        }
        if await self.statements.one(self._claim, params) is not None:
            return claim
        found = await self.statements.one(_FIND, {"for_user": user_id, "for_key": key})
        if found is None:  # pruned between the two statements: claim it afresh
            return await self._take(user_id, key, request_fingerprint)
        stored_fingerprint, status, headers, body = found
        if stored_fingerprint != request_fingerprint:
            raise IdempotencyKeyReused
        if status is None:
            raise IdempotencyKeyInUse
        return StoredResponse(status=int(status), body=bytes(body), headers=msgspec.json.decode(headers or "{}"))
