"""Idempotency keys: a client's retried request gets the first answer, not a second effect."""
