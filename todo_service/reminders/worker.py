"""Firing due reminders, exactly once across every worker and replica.

Each process polls every ``REMINDERS_POLL_SECONDS``. One transaction claims a batch of due reminders
with a single ``UPDATE ... SET fired_at = now WHERE fired_at IS NULL AND fire_at <= now ...
RETURNING`` (on PostgreSQL the rows come from a ``FOR UPDATE SKIP LOCKED`` subquery, so two workers
never wait on, nor take, the same rows; SQLite runs one writer at a time). In the same transaction,
for each reminder of a live task:

- the task's ``reminded_at`` is set to the reminder's ``fire_at``, a new revision, and
  ``reminded_revision`` to that same revision (one expression, :func:`next_revision`). While the
  task stays at it, the change feed shows that change as ``{op: "upsert", task, reminder: {fire_at}}``
  and the live events (SSE) name it ``task.reminder``; any later write moves the revision past it,
  and the change is an ordinary upsert again. The ``task.upserted`` webhooks carry it like any change;
- one ``task.reminder`` event per enabled webhook of the owner subscribed to task changes goes to the
  webhook outbox, delivered signed and retried like the others (docs/webhooks.md).

The claim and its effects commit together: a reminder is fired once, or (the transaction failed)
not at all and claimed again at the next poll. After the commit, :attr:`ReminderWorker.on_fired`
hears of each owner (SQLite's live events are woken in-process; PostgreSQL's by the NOTIFY trigger).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Insert, Integer, Update, bindparam, insert, literal, select, update

from todo_service.db.models import Task, TaskReminder
from todo_service.db.revisions import next_revision
from todo_service.webhooks.models import Webhook, WebhookDelivery
from todo_service.webhooks.openapi import TaskReminderData, TaskReminderEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from todo_service.db.statements import Statements

__all__ = ("EVENT", "ReminderWorker")

logger = logging.getLogger(__name__)
EVENT = "task.reminder"
_REMINDER = TaskReminder.__table__.c


@cache
def _claim(dialect: str) -> Update:
    now = bindparam("now", type_=_REMINDER["fired_at"].type)
    due = (
        select(TaskReminder.id)
        .where(TaskReminder.fired_at.is_(None), TaskReminder.fire_at <= now)
        .order_by(TaskReminder.fire_at)
        .limit(bindparam("batch", type_=Integer))
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(TaskReminder)
        .where(TaskReminder.id.in_(due.scalar_subquery()), TaskReminder.fired_at.is_(None))
        .values(fired_at=now)
        .returning(TaskReminder.id, TaskReminder.task_id, TaskReminder.user_id, TaskReminder.fire_at)
    )


@cache
def _remind(dialect: str) -> Update:
    """Stamp the live task's ``reminded_at`` (a change with a revision, marked as the reminder's); its title."""
    now = bindparam("now", type_=Task.__table__.c["updated_at"].type)
    revision = next_revision(dialect)  # the same value twice in one row's SET (SQLite's counter moves after it)
    return (
        update(Task)
        .where(Task.id == bindparam("task_id", type_=Task.id.type), Task.deleted_at.is_(None))
        .values(reminded_at=bindparam("fire_at", type_=Task.__table__.c["reminded_at"].type), updated_at=now)
        .values(revision=revision, reminded_revision=revision)
        .returning(Task.title, Task.revision)
    )


@cache
def _outbox() -> Insert:
    """One ``task.reminder`` delivery per enabled webhook of the owner subscribed to task changes."""
    columns = WebhookDelivery.__table__.c
    now = bindparam("now", type_=columns["created_at"].type)
    source = select(
        bindparam("delivery_id", type_=columns["id"].type),  # one webhook per statement: see fire()
        Webhook.id,
        literal(EVENT),
        bindparam("task_id", type_=columns["task_id"].type),
        bindparam("revision", type_=columns["revision"].type),
        bindparam("payload", type_=columns["payload"].type),
        now,
        literal("pending"),
        now,
        literal(0),
    ).where(Webhook.id == bindparam("webhook_id", type_=Webhook.id.type))
    names = ["id", "webhook_id", "event", "task_id", "revision", "payload", "created_at", "status"]
    return insert(WebhookDelivery).from_select([*names, "next_attempt_at", "attempts"], source)


@cache
def _subscribed() -> Any:  # noqa: ANN401  (a Select)
    return select(Webhook.id).where(
        Webhook.user_id == bindparam("owner_id", type_=Webhook.user_id.type), Webhook.enabled, Webhook.on_task_upserted
    )


class ReminderWorker:
    """Fires due reminders in batches (one per process; :meth:`step` is a periodic housekeeping step)."""

    # Told each owner whose task a committed batch reminded (app.py: SQLite's in-process live events).
    on_fired: Callable[[uuid.UUID], None] | None = None

    def __init__(self, statements: Statements, *, batch: int = 100) -> None:
        self.statements = statements
        self.batch = batch

    async def fire(self, now: datetime | None = None) -> int:
        """Claim and fire one batch of due reminders (one transaction); how many were claimed."""
        now = now or datetime.now(UTC)
        owners: set[uuid.UUID] = set()
        async with self.statements.transaction() as tx:
            claimed = await tx.all(_claim(tx.dialect_name), {"now": now, "batch": self.batch})
            for reminder_id, task_id, owner_id, fire_at in claimed:
                task = await tx.one(_remind(tx.dialect_name), {"task_id": task_id, "fire_at": fire_at, "now": now})
                if task is None:  # deleted meanwhile: claimed, so never fired later either
                    continue
                owners.add(owner_id)
                data = TaskReminderData(task_id=task_id, reminder_id=reminder_id, title=task[0], fire_at=fire_at)
                payload = msgspec.json.encode(TaskReminderEvent(type=EVENT, timestamp=now, data=data)).decode()
                for (webhook_id,) in await tx.all(_subscribed(), {"owner_id": owner_id}):
                    values = {
                        "delivery_id": uuid.uuid4(),
                        "webhook_id": webhook_id,
                        "task_id": task_id,
                        "revision": task[1],
                        "payload": payload,
                        "now": now,
                    }
                    await tx.affected(_outbox(), values)
        if self.on_fired is not None:
            for owner_id in owners:
                self.on_fired(owner_id)
        return len(claimed)

    async def step(self) -> str:
        """Fire every reminder due now, batch after batch (bounded); what it did, for the log."""
        fired = 0
        for _ in range(100):
            claimed = await self.fire()
            fired += claimed
            if claimed < self.batch:
                break
        return f"fired {fired} reminders"
