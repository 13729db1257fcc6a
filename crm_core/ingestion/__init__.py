"""Sending systems, their secrets, the durable event inbox and external references."""
