"""What the web layer may ask of the workers: publish a message, check the broker."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from crm_core.errors import error_line
from workers.app import celery_app
from workers.telemetry import REQUEST_IDS_HEADER

log = logging.getLogger(__name__)
_REQUEST_IDS: ContextVar[Mapping[int, str] | None] = ContextVar("request_ids", default=None)


@contextmanager
def publishing_for(request_ids: Mapping[int, str]) -> Iterator[None]:
    """``enqueue_events`` in the block tells each event's request id (unless given others)."""
    token = _REQUEST_IDS.set(request_ids)
    try:
        yield
    finally:
        _REQUEST_IDS.reset(token)


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
        return f"broker unreachable: {error_line(exc, limit=200)}"
    return None


def enqueue_events(
    event_ids: Sequence[int],
    *,
    per_message: int = 100,
    countdown: float | None = None,
    request_ids: Mapping[int, str] | None = None,
) -> int:
    """Ask for ``event_ids`` to be processed, ``per_message`` to a message; how many went.

    One ``crm.ingest.process_events`` message per slice: building and sending a
    Celery message costs far more than the id in it, so a burst of webhooks
    costs a few messages, not one each. ``countdown`` delays them (a retry).
    ``request_ids`` (event id -> the web request that stored it) go with each
    message's events in its ``crm_request_ids`` header, for the worker's log lines.
    Stops at the first failure (logged): the sweeper publishes the rest, as the
    events are already committed. Never raises.
    """
    ids = [int(event_id) for event_id in event_ids]
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for start in range(0, len(ids), per_message):
                chunk = ids[start : start + per_message]
                celery_app.send_task(
                    "crm.ingest.process_events",
                    args=(chunk,),
                    countdown=countdown,
                    queue="ingest",
                    producer=producer,
                    headers=_request_headers(chunk, request_ids or _REQUEST_IDS.get()),
                )
                sent += len(chunk)
    except Exception as exc:  # any transport failure: the sweeper will publish the rest
        log.warning(
            "could not publish %s of %s events: %s",
            len(ids) - sent,
            len(ids),
            error_line(exc, limit=200),
        )
    return sent


def _request_headers(
    chunk: Sequence[int], request_ids: Mapping[int, str] | None
) -> dict[str, object] | None:
    if not request_ids:
        return None
    known = {str(i): request_ids[i] for i in chunk if i in request_ids}
    return {REQUEST_IDS_HEADER: known} if known else None


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
        log.warning("could not publish %s: %s", name, error_line(exc, limit=200))
        return False
    return True
