"""Secrets at rest: the keyring they are encrypted under, the column type, and rotation."""
