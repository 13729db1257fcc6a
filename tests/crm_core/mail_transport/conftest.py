"""Fixtures of these tests: a real SMTP server on loopback."""

from tests.smtp_server import smtp_server

__all__ = ["smtp_server"]
