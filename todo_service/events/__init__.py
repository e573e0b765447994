"""Live events: the change feed of a user's tasks as a Server-Sent Events stream."""
