"""What senders post, as typed payloads: the webhook kinds and their pydantic schemas.

Ingestion and the providers' mappings speak these; the domains take their own commands.
"""
