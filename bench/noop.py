"""A Celery task that does nothing: the baseline of what a worker can drain."""

from workers.app import celery_app


@celery_app.task(name="bench.noop")
def noop(event_id: int) -> None:
    """Receive one id, as process_events does, and do nothing with it."""
