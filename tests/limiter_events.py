"""What a rate limiter reported through its public hooks (the ones the metrics use), for assertions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from todo_service.ratelimit.limiter import RateLimiter


@dataclass
class LimiterEvents:
    """Refused requests by rule, and failed storage calls, since :func:`record` was called."""

    rejections: Counter[str] = field(default_factory=Counter)
    storage_failures: int = 0


def record(limiter: RateLimiter) -> LimiterEvents:
    """Count what ``limiter`` reports from now on; hooks already set (metrics) still get called."""
    events = LimiterEvents()
    on_rejected, on_storage_failure = limiter.on_rejected, limiter.on_storage_failure

    def rejected(rule: str) -> None:
        events.rejections[rule] += 1
        if on_rejected is not None:
            on_rejected(rule)

    def failed() -> None:
        events.storage_failures += 1
        if on_storage_failure is not None:
            on_storage_failure()

    limiter.on_rejected, limiter.on_storage_failure = rejected, failed
    return events
