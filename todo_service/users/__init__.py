"""Users: the caller's own account (``/api/v1/users/me``)."""
