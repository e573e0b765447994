"""Which processes watch whose tasks: the live events' table (migration 0008).

A process that holds streams of an owner has a row here, with a lease it renews
(:mod:`todo_service.events.listener`); the trigger on ``tasks`` sends a notification for a write only
while its owner has a current row, so unwatched writes do not take PostgreSQL's notify lock.
"""

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("EventWatcher",)


class EventWatcher(DefaultBase):
    """One process watching one owner's task changes, until ``expires_at`` unless renewed."""

    __tablename__ = "event_watchers"

    # No foreign key: a row lapses by itself (a deleted user's within a lease), and writing one locks no user.
    user_id: Mapped[UUID] = mapped_column(primary_key=True)
    listener_id: Mapped[UUID] = mapped_column(primary_key=True, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
