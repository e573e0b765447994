"""Tasks: a user's to-do items (``/api/v1/users/{user_id}/tasks``)."""
