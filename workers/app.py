"""The Celery application."""

from celery import Celery
from celery.signals import worker_init, worker_process_init

from workers import telemetry  # noqa: F401 (connects the logging and metrics signals)
from workers.db import CrmTask

celery_app = Celery(
    "crm",
    include=[
        "workers.tasks",
        "workers.mailbox_tasks",
        "workers.followup_tasks",
        "workers.retention_tasks",
        "workers.ops_tasks",
    ],
    # Every task carries its settings and sessions (``self.settings``, ``self.session()``).
    task_cls=CrmTask,
)
celery_app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_engine_after_fork(**_kwargs: object) -> None:
    """A forked pool process must not share the parent's database connections."""
    from workers.db import reset_engine

    reset_engine()


@worker_init.connect
def _refuse_a_bad_mail_url(**_kwargs: object) -> None:
    """A worker whose mail URL names no usable backend stops at start, with one line saying why.

    Otherwise it would start, claim campaign sends and only then find it cannot send them.
    """
    from crm_core.config import get_settings
    from crm_core.mail_transport.backends import check_mail_url

    problem = check_mail_url(get_settings().resolved_mail_url())
    if problem:
        # SystemExit passes Celery's signal dispatch (which logs other errors and carries on).
        raise SystemExit(f"crm worker: {problem}")
