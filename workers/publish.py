"""What the web layer may ask of the workers: publish a message, check the broker."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from workers.app import celery_app

log = logging.getLogger(__name__)


def broker_ready(url: str | None = None, *, timeout: float = 2.0) -> str | None:
    """``None`` when the broker (default: the configured one) answers within ``timeout``."""
    try:
        with celery_app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            # Redis connects lazily: a round trip proves it really answers.
            client = getattr(conn.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
    except Exception as exc:  # any transport error means "not ready"
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return f"broker unreachable: {type(exc).__name__}: {first_line}"
    return None


def enqueue_event(event_id: int, *, countdown: float | None = None) -> bool:
    """Ask a worker to process inbox event ``event_id``; ``False`` (logged) if the broker is down.

    Never raises: the event is already committed, and the sweeper publishes
    whatever this could not.
    """
    try:
        celery_app.send_task(
            "crm.ingest.process_event", args=(event_id,), countdown=countdown, queue="ingest"
        )
    except Exception as exc:  # any transport failure: the sweeper will publish it
        first_line = (str(exc).splitlines() or [""])[0][:200]
        log.warning("could not publish event %s: %s: %s", event_id, type(exc).__name__, first_line)
        return False
    return True


def enqueue_events(event_ids: Sequence[int]) -> int:
    """Ask for ``event_ids`` to be processed over one broker connection; how many went.

    The same ``process_event`` message per event as ``enqueue_event``, sent
    through one producer, so a burst costs one connection checkout. Stops at
    the first failure (logged): the sweeper publishes the rest. Never raises.
    """
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for event_id in event_ids:
                celery_app.send_task(
                    "crm.ingest.process_event", args=(event_id,), queue="ingest", producer=producer
                )
                sent += 1
    except Exception as exc:  # any transport failure: the sweeper will publish the rest
        first_line = (str(exc).splitlines() or [""])[0][:200]
        log.warning(
            "could not publish %s of %s events: %s: %s",
            len(event_ids) - sent,
            len(event_ids),
            type(exc).__name__,
            first_line,
        )
    return sent


def enqueue_campaign_work(campaign_id: int | None = None) -> bool:
    """Ask for a campaign dispatch now (or, with an id, a send batch); never raises.

    Beat dispatches every few seconds anyway: this only saves the wait.
    """
    name, args = (
        ("crm.campaigns.send_batch", (campaign_id,))
        if campaign_id
        else ("crm.campaigns.dispatch", ())
    )
    try:
        celery_app.send_task(name, args=args, queue="campaigns")
    except Exception as exc:  # any transport failure: beat dispatches later
        log.warning("could not publish %s: %s: %s", name, type(exc).__name__, exc)
        return False
    return True
