"""Outbound mail: building messages and handing them to SMTP, an HTTP API or files."""
