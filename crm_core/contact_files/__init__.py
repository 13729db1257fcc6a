"""Contacts in and out of files: CSV import through the lead resolver, CSV or NDJSON export."""
