"""The audit trail: security events, collected during a request and written once it is answered.

Events are written on a connection of their own *after* the request's transaction has been
committed or rolled back (see :func:`todo_service.db.database.database_config`), so a refused
login, whose transaction is rolled back, still leaves its trace, and SQLite never sees two writers
of one request. Passwords and tokens are never recorded; emails only as a keyed hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from todo_service.core.request_context import request_id_of
from todo_service.db.models import AuditEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import Scope
    from sqlalchemy.ext.asyncio import AsyncEngine

    from todo_service.core.request_context import ClientAddress

__all__ = ("AuditLog", "AuditTrail", "Event", "Outcome")

logger = logging.getLogger(__name__)
_TRAIL_KEY = "audit_trail"


class Event(enum.StrEnum):
    """What happened."""

    REGISTER = "register"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_BLOCKED = "login_blocked"
    ACCOUNT_LOCKED = "account_locked"
    LOGOUT = "logout"
    REFRESH_REUSED = "refresh_reused"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  (an event name)
    EMAIL_CHANGED = "email_changed"
    ROLE_CHANGED = "role_changed"
    USER_DEACTIVATED = "user_deactivated"
    USER_REACTIVATED = "user_reactivated"
    ADMIN_CREATED = "admin_created"
    RATE_LIMITED = "rate_limited"


class Outcome(enum.StrEnum):
    """How it ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    BLOCKED = "blocked"


class AuditLog:
    """Writes audit events; one per app."""

    def __init__(self, engine: AsyncEngine, signing_key: str) -> None:
        self._engine = engine
        # Domain-separated from the JWT key: the same secret never signs two kinds of thing.
        self._email_key = hashlib.sha256(b"todo-service/audit-email\x00" + signing_key.encode()).digest()
        # Metrics: called for every recorded event, written or not (a failed write is only logged).
        self.on_record: Callable[[Event, Outcome], None] | None = None

    def email_hash(self, email: str) -> str:
        """A keyed hash of the (normalized) email: lets events be correlated without storing it."""
        return hmac.new(self._email_key, email.strip().lower().encode(), hashlib.sha256).hexdigest()

    def trail(self, scope: Scope, client: ClientAddress) -> AuditTrail:
        """The request's trail (made on first use and kept in the scope)."""
        state = scope.setdefault("state", {})
        trail = state.get(_TRAIL_KEY)
        if not isinstance(trail, AuditTrail):
            trail = AuditTrail(self, ip=client.of(scope), request_id=request_id_of(scope))
            state[_TRAIL_KEY] = trail
        return trail

    async def flush(self, scope: Scope) -> None:
        """Write the events the request recorded, if any. Never raises: a lost event is logged."""
        trail = scope.get("state", {}).get(_TRAIL_KEY)
        if isinstance(trail, AuditTrail):
            await self.flush_trail(trail)

    async def flush_trail(self, trail: AuditTrail) -> None:
        """Write a trail's pending events (a request's, or the command line's)."""
        if not trail.pending:
            return
        rows, trail.pending = trail.pending, []
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(AuditEvent), rows)
        except Exception:
            logger.exception("could not write %d audit events: %s", len(rows), [row["event"] for row in rows])

    def offline_trail(self, origin: str) -> AuditTrail:
        """A trail for work outside any request (``origin`` goes where the IP would); flush it yourself."""
        return AuditTrail(self, ip=origin, request_id=None)


@dataclass
class AuditTrail:
    """The events of one request, with who asked (IP, request id)."""

    log: AuditLog
    ip: str | None
    request_id: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        event: Event,
        outcome: Outcome,
        *,
        user_id: uuid.UUID | None = None,
        email: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Note an event; it is written once the response is on its way."""
        details = {
            "user_id": user_id,
            "email_hash": self.log.email_hash(email) if email else None,
            "ip": self.ip,
            "request_id": self.request_id,
            "detail": detail,
        }
        self.pending.append(_row(event, outcome, details))
        if self.log.on_record is not None:
            self.log.on_record(event, outcome)


def _row(event: Event, outcome: Outcome, details: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(("user_id", "email_hash", "ip", "request_id", "detail"))
    row.update(details)
    if row["detail"] is not None:
        row["detail"] = str(row["detail"])[:255]  # a short note; the column holds 255 characters
    return {"id": uuid.uuid4(), "created_at": datetime.now(UTC), "event": event.value, "outcome": outcome.value, **row}
