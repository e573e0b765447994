"""Idempotency keys: a retried POST answers its first response again instead of acting twice."""
