"""Database models: the tables every feature package reads and writes."""

from todo_service.db.models import AuthSession, Priority, Role, Task, User

__all__ = ("AuthSession", "Priority", "Role", "Task", "User")
