"""People: users and their roles, scoped API keys, the actor behind every write, the audit log."""
