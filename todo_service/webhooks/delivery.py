"""The delivery worker: a task in every service process that drains the outbox.

Each round it claims due deliveries (:class:`~todo_service.webhooks.outbox.Outbox`: a lease, so no
two processes attempt one event at once), checks each target again (DNS resolved now, the address
that passed is the one connected to), POSTs the signed payload and records the attempt. A failure
(non-2xx, redirect, timeout, refused target) is retried after an exponential backoff with jitter
until the retry window has passed; a webhook failing continuously for longer than the disable window
is disabled. A process that dies mid-attempt leaves its deliveries claimed until their leases pass;
then any worker takes them again: an event is delivered at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from todo_service.webhooks.outbox import Attempt, Claimed, Outbox
from todo_service.webhooks.sender import Sender
from todo_service.webhooks.signing import SecretBox, SecretUnreadable
from todo_service.webhooks.targets import TargetRefused, TargetRules

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from uuid import UUID

    from litestar import Litestar
    from opentelemetry.trace import Tracer

__all__ = ("DeliveryPolicy", "DeliveryWorker", "backoff")

logger = logging.getLogger(__name__)
_LEASE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How the worker paces itself and when it gives up (from the WEBHOOK_* settings)."""

    timeout: float = 5.0
    poll_interval: float = 0.5
    batch: int = 32
    backoff_base: float = 5.0
    backoff_max: float = 3600.0
    retry_window: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=3)

    @property
    def lease(self) -> timedelta:
        """How long a claim holds: longer than any attempt (its timeout) can take."""
        return timedelta(seconds=self.timeout) + _LEASE_MARGIN


def backoff(policy: DeliveryPolicy, failures: int, *, jitter: Callable[[], float] = random.random) -> timedelta:
    """The pause after the ``failures``-th failed attempt: doubling from the base up to the cap, 50-100% of it."""
    ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** min(failures - 1, 40))
    return timedelta(seconds=ceiling * (0.5 + jitter() / 2))


def _link(traceparent: str | None) -> list[Link]:
    """A link to the span that made the change, if its transaction recorded one."""
    if not traceparent:
        return []
    context = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    span_context = context.get_span_context()
    return [Link(span_context)] if span_context.is_valid else []


class DeliveryWorker:
    """Drains the outbox of one process; :meth:`lifespan` runs it for the app's lifetime."""

    def __init__(
        self,
        outbox: Outbox,
        box: SecretBox,
        rules: TargetRules,
        policy: DeliveryPolicy,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.outbox = outbox
        self.box = box
        self.rules = rules
        self.policy = policy
        self.sender = Sender(policy.timeout)
        self.tracer = tracer or trace.get_tracer(__name__)

    async def run_once(self) -> int:
        """Claim what is due and attempt it; how many deliveries were attempted."""
        now = datetime.now(UTC)
        # The poll runs several times a second in every worker: no trace of its own (a root span per
        # poll would bury the real ones); each attempt below is traced, its result's statement too.
        with suppress_instrumentation():
            token, claimed = await self.outbox.claim(
                now=now, lease_until=now + self.policy.lease, batch=self.policy.batch
            )
        await asyncio.gather(*(self.attempt(delivery, token) for delivery in claimed))
        return len(claimed)

    async def attempt(self, delivery: Claimed, token: UUID) -> Attempt:
        """One attempt of ``delivery``, traced and recorded."""
        attributes: dict[str, str | int] = {
            "webhook.id": str(delivery.webhook_id),
            "webhook.event_id": str(delivery.id),
            "webhook.event": delivery.event,
            "webhook.attempt": delivery.attempts + 1,
        }
        with self.tracer.start_as_current_span(
            "webhook deliver", kind=SpanKind.CLIENT, attributes=attributes, links=_link(delivery.traceparent)
        ) as span:
            attempt = await self._send(delivery)
            if attempt.status_code is not None:
                span.set_attribute("http.response.status_code", attempt.status_code)
            if not attempt.ok:
                span.set_status(Status(StatusCode.ERROR, attempt.error or f"HTTP {attempt.status_code}"))
            await self._record(delivery, token, attempt)
        return attempt

    async def _send(self, delivery: Claimed) -> Attempt:
        try:
            target = await self.rules.resolve(delivery.url)
            secret = self.box.open(delivery.webhook_id, delivery.sealed_secret)
        except TargetRefused as exc:
            return Attempt(None, 0, error=f"target refused: the URL {exc}"[:255])
        except SecretUnreadable:
            return Attempt(None, 0, error="the signing secret does not decrypt: SECRET_KEY changed; rotate the secret")
        original = self.rules.check_url(delivery.url)
        return await self.sender.post(
            target, original, message_id=str(delivery.id), secret=secret, body=delivery.payload.encode()
        )

    async def _record(self, delivery: Claimed, token: UUID, attempt: Attempt) -> None:
        now = datetime.now(UTC)
        retry_at = None
        if not attempt.ok and now < delivery.created_at + self.policy.retry_window:
            retry_at = now + backoff(self.policy, delivery.attempts + 1)
        what = attempt.error or f"HTTP {attempt.status_code}"
        settled = await self.outbox.finish(
            delivery,
            token,
            attempt,
            now=now,
            retry_at=retry_at,
            failing_before=now - self.policy.disable_after,
            disable_reason=f"failed continuously for over {self.policy.disable_after}; last attempt: {what}",
        )
        if settled == "lease lost":
            logger.warning("webhook delivery %s: the lease ran out during the attempt", delivery.id)
        elif settled == "gone":
            logger.info("webhook delivery %s: deleted with its webhook during the attempt", delivery.id)

    async def run_forever(self, stopping: asyncio.Event | None = None) -> None:
        """Rounds until ``stopping`` is set: a full batch goes again at once, otherwise after the poll interval."""
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            try:
                if await self.run_once() >= self.policy.batch:
                    continue
            except Exception:
                logger.exception("webhook delivery round failed; trying again in %g s", self.policy.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.policy.poll_interval)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Run the worker while the app runs; at shutdown the round under way finishes first.

        Its attempts end within the timeout; cancelled in the middle of a statement instead, a round
        could leave a pooled connection checked out. Past that grace it is cancelled (the leases of
        what it claimed pass, and another worker attempts them again).
        """
        stopping = asyncio.Event()

        async def start_later() -> None:
            # One poll interval first: start-up is not slowed, and a replica's first claim comes after it is up.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.policy.poll_interval)
            await self.run_forever(stopping)

        task = asyncio.create_task(start_later(), name="webhook-delivery")
        try:
            yield
        finally:
            stopping.set()
            done, _pending = await asyncio.wait({task}, timeout=self.policy.timeout + 1)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.sender.close()
