"""What authentication needs besides a database session, as one object the app factory builds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from todo_service.security.lockout import LockoutPolicy
from todo_service.security.passwords import Passwords
from todo_service.security.tokens import TokenIssuer

__all__ = ("AuthConfig",)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What authentication needs besides a database session; built once by the app factory."""

    passwords: Passwords
    tokens: TokenIssuer
    lockout: LockoutPolicy
    session_ttl: timedelta
    # A refresh token presented again this soon after its first exchange gets a new pair (two tabs
    # racing); later, reuse revokes the session. Settings.refresh_reuse_grace_seconds.
    refresh_reuse_grace: timedelta = timedelta(seconds=10)
