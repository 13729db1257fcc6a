"""Publishing inbox events off the request thread: a slow or dead broker never holds a webhook up.

A committed event is already safe; whatever is not published here the sweeper publishes. How the
thread batches and lingers: ``docs/performance.md`` (Webhook intake).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app

from crm_core.config import Settings
from workers.publish import enqueue_events, publishing_for

log = logging.getLogger(__name__)
_EXTENSION = "crm_publisher"


class BackgroundPublisher:
    """A bounded queue of event ids and the daemon thread that publishes them in batches."""

    def __init__(
        self,
        publish: Callable[[list[int]], object],
        *,
        capacity: int = 10_000,
        max_batch: int = 1000,
        linger: float = 0.0,
    ) -> None:
        self._publish = publish
        self._max_batch = max_batch
        self.linger = linger
        self._queue: queue.Queue[int] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        # The web request each queued event came from, told to the worker with the message.
        self._request_ids: dict[int, str] = {}

    def submit(self, event_id: int, request_id: str | None = None) -> None:
        """Queue ``event_id`` for publishing; drop it (the sweeper has it) when full."""
        self._ensure_thread()
        if request_id:
            self._request_ids[event_id] = request_id
        try:
            self._queue.put_nowait(event_id)
        except queue.Full:
            self._request_ids.pop(event_id, None)
            log.warning("publish queue full; event %s is left to the sweeper", event_id)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was handed over; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        # A thread does not survive fork (gunicorn workers): start one per process.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="inbox-publisher", daemon=True
                )
                self._thread.start()

    def _next_batch(self) -> list[int]:
        """The next id, and whatever else has queued up (at most ``max_batch``)."""
        batch = [self._queue.get()]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            request_ids = {i: self._request_ids.pop(i) for i in batch if i in self._request_ids}
            try:
                with publishing_for(request_ids):
                    self._publish(batch)
            except Exception:  # the publisher must outlive any error
                log.exception("publishing events %s failed", batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if self.linger:
                # At most one round per linger: what arrives meanwhile goes out
                # together. A sleep, not a wait on the queue, which would wake
                # this thread (and take the GIL from requests) on every id.
                time.sleep(self.linger)


def init_app(app: Flask, settings: Settings) -> None:
    """Give ``app`` a background publisher of inbox events."""
    app.extensions[_EXTENSION] = BackgroundPublisher(
        enqueue_events, linger=settings.publish_linger_ms / 1000
    )


def event_publisher() -> BackgroundPublisher:
    """The current app's publisher."""
    publisher: BackgroundPublisher = current_app.extensions[_EXTENSION]
    return publisher
