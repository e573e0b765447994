"""Signed webhooks: a user's endpoints, the outbox the database fills, and the worker that delivers it."""
