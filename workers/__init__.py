"""Celery workers: thin tasks that open a session, call a crm_core service and commit."""
