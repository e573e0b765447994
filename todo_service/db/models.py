"""SQLAlchemy models. Timestamps are timezone-aware UTC on both PostgreSQL and SQLite.

(Over 300 lines on purpose: the core tables in one file, the schema the migrations build read in one place;
the webhooks' and live events' own tables live with their features.)
"""

import enum
import secrets
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDAuditBase, UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    column,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

__all__ = (
    "AuditEvent",
    "AuthSession",
    "ChangeCounter",
    "IdempotencyKey",
    "Label",
    "LoginFailure",
    "Priority",
    "RefreshToken",
    "Role",
    "Task",
    "TaskCompletion",
    "TaskLabel",
    "TaskList",
    "TaskReminder",
    "User",
)


class Role(enum.StrEnum):
    """What a user may do: guests read, users read and write their own, admins also manage users."""

    ADMIN = "admin"
    USER = "user"
    GUEST = "guest"


class Priority(enum.StrEnum):
    """Task priority, ordered from least to most pressing."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


def _string_enum(enum_type: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint (portable; no PostgreSQL ENUM type to migrate)."""
    return Enum(
        enum_type,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class User(UUIDAuditBase):
    """An account. ``email`` is stored lower-cased, which makes its uniqueness case-insensitive."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(255), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # Deferred: loaded only by the queries that verify a password.
    password_hash: Mapped[str] = mapped_column(String(255), deferred=True)
    role: Mapped[Role] = mapped_column(_string_enum(Role, "role"), default=Role.USER)
    is_active: Mapped[bool] = mapped_column(default=True)
    # The highest revision among this user's pruned tombstones: a change-feed cursor below it may
    # have missed a delete, so it is refused (410 CURSOR_EXPIRED).
    feed_floor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The IANA time zone of the account (migration 0007): the zone of its tasks that name none. None: UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))


def _random_rank() -> str:
    """A rank (tasks/ranks.py) at a random place near the start: 'n0', 16 random digits, never 0 last."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "n0" + "".join(secrets.choice(digits) for _ in range(16)) + secrets.choice(digits[1:])


class Task(UUIDAuditBase):
    """A to-do item owned by one user."""

    __tablename__ = "tasks"
    __table_args__ = (
        # Default listing (newest first, id as tiebreaker) and every per-user filter start here.
        Index("ix_tasks_user_id_created_at", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_completed", "user_id", "completed"),
        Index("ix_tasks_user_id_due_date", "user_id", "due_date"),
        # The change feed: a user's changes in revision order (keyset on revision, id).
        Index("ix_tasks_user_id_revision", "user_id", "revision", "id"),
        # Pruning tombstones past their retention.
        Index("ix_tasks_deleted_at", "deleted_at"),
        # A list's tasks, newest first (the list_id filter; also the foreign key's lookups).
        Index("ix_tasks_list_id_created_at", "list_id", "created_at", "id"),
        # completed_since, and the trash (what is still restorable).
        Index("ix_tasks_user_id_completed_at", "user_id", "completed_at"),
        Index("ix_tasks_user_id_trash_expires_at", "user_id", "trash_expires_at"),
        # A listing's total (and the label filter's semi-join) counts live tasks from the index alone.
        Index(
            "ix_tasks_live_user_id_id",
            "user_id",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        # Manual order (migration 0007): one live task per position among its siblings (same list and
        # parent), in position order: subtasks here, top-level tasks (no parent) in the next one.
        # Concurrent moves that chose the same key meet here and retry (tasks/ordering.py).
        Index(
            "uq_tasks_subtasks_position",
            "list_id",
            "parent_id",
            "position",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND parent_id IS NOT NULL"),
            sqlite_where=text("deleted_at IS NULL AND parent_id IS NOT NULL"),
        ),
        Index(
            "uq_tasks_top_level_position",
            "list_id",
            "position",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND parent_id IS NULL"),
            sqlite_where=text("deleted_at IS NULL AND parent_id IS NULL"),
        ),
        # A task's subtasks: the parent_id filter, and the walks of a subtree (delete, restore, list moves).
        Index(
            "ix_tasks_parent_id",
            "parent_id",
            postgresql_where=text("parent_id IS NOT NULL"),
            sqlite_where=text("parent_id IS NOT NULL"),
        ),
        # The overdue filter (timed and all-day tasks alike).
        Index("ix_tasks_user_id_overdue_at", "user_id", "overdue_at"),
        # Search (migrations 0010 and 0011, PostgreSQL only): a GIN index per expression the search
        # statement tests with LIKE '%word%', over live tasks, led by the owner (btree_gin) so that it
        # hands back the owner's matches alone. SQLite scans the owner's tasks instead.
        *(
            Index(
                f"ix_tasks_live_owner_{name}_trgm",
                "user_id",
                func.lower(column(name)).label(name),
                postgresql_using="gin",
                postgresql_ops={name: "gin_trgm_ops"},
                postgresql_where=text("deleted_at IS NULL"),
            ).ddl_if(dialect="postgresql")
            for name in ("title", "description")
        ),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1000))
    completed: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[Priority] = mapped_column(_string_enum(Priority, "priority"), default=Priority.MEDIUM)
    due_date: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Set by every write (todo_service/db/revisions.py): the ETag and the change feed's order.
    revision: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # A deleted task is a tombstone for the change feed until pruned; every other route ignores it.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The list the task is in (its owner's Inbox unless given). No cascade: a list's tasks are
    # trashed or moved by the service first, so they leave tombstones for the change feed.
    list_id: Mapped[UUID] = mapped_column(ForeignKey("task_lists.id"))
    # A trashed task is a tombstone (deleted_at) that can be restored until then.
    trash_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Subtasks (migration 0007): the parent, same owner and list, no cycles, MAX_DEPTH levels
    # (tasks/tree.py). No foreign key: a delete leaves tombstones of the whole subtree, pruned together.
    parent_id: Mapped[UUID | None]
    # Manual order among siblings: a rank (tasks/ranks.py) compared byte by byte (the C collation).
    # A row inserted through the ORM (tests, scripts; the service always sets it) gets a random one.
    position: Mapped[str] = mapped_column(
        String(64).with_variant(String(64, collation="C"), "postgresql"), default=_random_rank
    )
    # An all-day task's due date (a calendar date, in the task's zone), instead of the due_date instant.
    due_on: Mapped[date | None] = mapped_column(Date)
    # Recurrence: an RFC 5545 RRULE (tasks/recurrence.py) and the IANA zone it runs in (None: the owner's).
    rrule: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str | None] = mapped_column(String(64))
    # When the task becomes overdue: due_date, or the end of the due_on date in the task's zone
    # (its own, else its owner's), kept by every write that changes them (tasks/schedule.py).
    overdue_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # When its last reminder fired (todo_service/reminders): a change, so the feed, SSE and webhooks carry it.
    reminded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The revision the reminder worker stamped with reminded_at: while it is still the task's revision,
    # the feed and SSE show that change as a fired reminder (any later write moves the revision past it).
    reminded_revision: Mapped[int | None] = mapped_column(BigInteger)


class TaskCompletion(UUIDBase):
    """One completed occurrence of a recurring task (the task itself moved on to the next one)."""

    __tablename__ = "task_completions"
    __table_args__ = (Index("ix_task_completions_task_id_completed_at", "task_id", "completed_at"),)

    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    completed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # The occurrence that was completed: its due instant or its due date.
    due_date: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    due_on: Mapped[date | None] = mapped_column(Date)


class TaskReminder(UUIDBase):
    """A reminder of a task: at a time, or some seconds before its due; fired once (``fired_at``)."""

    __tablename__ = "task_reminders"
    __table_args__ = (
        Index("ix_task_reminders_task_id", "task_id"),
        # The worker's claim: reminders due and not fired yet.
        Index(
            "ix_task_reminders_fire_at",
            "fire_at",
            postgresql_where=text("fired_at IS NULL"),
            sqlite_where=text("fired_at IS NULL"),
        ),
    )

    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    before_due: Mapped[int | None] = mapped_column(Integer)
    # When it fires: ``at``, or the task's due minus ``before_due`` seconds (None: the task has no due).
    fire_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    fired_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class TaskList(UUIDAuditBase):
    """A list of one user's tasks; each user has exactly one default list, the Inbox (migration 0006).

    A trigger on ``users`` creates the Inbox with the account; a partial unique index keeps it one.
    """

    __tablename__ = "task_lists"
    __table_args__ = (
        Index("ix_task_lists_user_id_created_at", "user_id", "created_at", "id"),
        Index(
            "uq_task_lists_user_id_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)
    # Moves with every change of the list: its ETag.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class Label(UUIDAuditBase):
    """A label of one user's tasks: a name unique per user case-insensitively, and a colour."""

    __tablename__ = "labels"
    __table_args__ = (Index("uq_labels_user_id_name_key", "user_id", "name_key", unique=True),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    # The name NFKC-normalised and case-folded (labels/services.py): the same on both databases,
    # where SQLite's lower() folds ASCII only.
    name_key: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(7))
    # Moves with every change of the label: its ETag.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class TaskLabel(DefaultBase):
    """A label on a task."""

    __tablename__ = "task_labels"
    # The label filter: a label's tasks (the primary key serves a task's labels).
    __table_args__ = (Index("ix_task_labels_label_id_task_id", "label_id", "task_id"),)

    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[UUID] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)


class ChangeCounter(UUIDBase):
    """SQLite only: the last revision handed out (PostgreSQL's revisions are transaction ids).

    One row; a trigger on ``tasks`` (migration 0003) moves it forward within the writing statement.
    """

    __tablename__ = "change_counter"

    value: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(UUIDBase):
    """A POST's ``Idempotency-Key`` and the response it got, replayed to retries for a day."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("uq_idempotency_keys_user_id_key", "user_id", "key", unique=True),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, path and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Who holds the key while its request runs; the response is stored only by that holder.
    claim: Mapped[UUID]
    lease_until: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    # The stored response (NULL while the first request runs).
    status: Mapped[int | None] = mapped_column(SmallInteger)
    headers: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuthSession(UUIDBase):
    """One login: every token issued for it dies with it (logout, password change, deactivation)."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # When the last token of this session expires; pruned after that.
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class RefreshToken(UUIDBase):
    """One refresh token of a login session; stored as a SHA-256 hash, used once, then replaced."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[UUID] = mapped_column(ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # Set when exchanged for a new pair; presenting it again revokes the whole session (reuse detection).
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class LoginFailure(UUIDBase):
    """Recent failed logins for one email (known or not), keyed by a keyed hash of the email."""

    __tablename__ = "login_failures"

    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class AuditEvent(UUIDBase):
    """A security event. Never holds a password or a token; emails only as a keyed hash."""

    __tablename__ = "audit_events"

    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    # No foreign key: the trail outlives the accounts it mentions.
    user_id: Mapped[UUID | None] = mapped_column(index=True)
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(String(255))
