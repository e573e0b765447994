"""Database models: the tables every feature package reads and writes."""

from todo_service.db.models import AuditEvent, AuthSession, LoginFailure, Priority, RefreshToken, Role, Task, User

__all__ = ("AuditEvent", "AuthSession", "LoginFailure", "Priority", "RefreshToken", "Role", "Task", "User")
