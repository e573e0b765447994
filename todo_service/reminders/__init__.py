"""Reminders of tasks: ``/users/{user_id}/tasks/{task_id}/reminders``, and the worker that fires them once."""
