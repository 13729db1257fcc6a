"""The Celery application."""

from celery import Celery
from celery.signals import worker_process_init

celery_app = Celery(
    "crm", include=["workers.tasks", "workers.mailbox_tasks", "workers.followup_tasks"]
)
celery_app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_engine_after_fork(**_kwargs: object) -> None:
    """A forked pool process must not share the parent's database connections."""
    from workers.db import reset_engine

    reset_engine()
