"""``Idempotency-Key`` on the API's POSTs: a retried request gets the first answer again.

``idempotent`` wraps a view (inside ``require_api_key``, so the actor is known). With a key,
the first request claims it (``crm_core.idempotency``) in a transaction of its own, runs, and
its answer (status, body, ``Location``/``ETag``) is stored for 24 hours
(``CRM_IDEMPOTENCY_KEY_HOURS``).
A retry with the same key replays that answer, with ``Idempotent-Replayed: true``, and does
nothing again: no second record, no second e-mail. The same key with another request is a
422; a retry while the first still runs is a 409 with ``Retry-After``. Keys are per actor.

An answer the server could not give (500, 503) is not kept: the retry runs again.
``check_idempotent_posts`` makes the app refuse to start with a POST under ``/api`` that is
not wrapped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, request

from crm_core.idempotency.services import (
    KeyInProgress,
    KeyReused,
    StoredAnswer,
    claim,
    complete,
    release,
)
from webhooks.auth import current_actor
from webhooks.problems import problem
from webhooks.state import crm_state

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_MARK = "_crm_idempotent"
_KEPT_HEADERS = ("Content-Type", "Location", "ETag", "Retry-After")
_NOT_KEPT = frozenset({500, 503})


def _bad_key(message: str) -> Response:
    return problem(
        400,
        message,
        title="Invalid header",
        type_="invalid-header",
        errors=[{"field": HEADER, "message": message, "type": "value_error"}],
    )


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.full_path.encode(), request.get_data(cache=True)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _owner() -> str:
    actor = current_actor()
    return f"{actor.kind}:{actor.id if actor.id is not None else actor.label}"


def _replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _stored(response: Response) -> StoredAnswer:
    kept = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    return StoredAnswer(
        status=response.status_code, headers=kept, body=response.get_data(as_text=True)
    )


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Honour ``Idempotency-Key`` on this view (a POST behind ``require_api_key``)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        raw = request.headers.get(HEADER)
        if raw is None:
            return view(*args, **kwargs)
        key = raw.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
            return _bad_key(f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
        crm = crm_state()
        owner = _owner()
        ttl = dt.timedelta(hours=crm.settings.idempotency_key_hours)
        try:
            with crm.sessions.begin() as session:
                first = claim(session, actor=owner, key=key, fingerprint=_fingerprint(), ttl=ttl)
        except KeyReused:
            return problem(
                422,
                "This Idempotency-Key was used with another request; use a new key.",
                title="Idempotency-Key reused",
                type_="idempotency-key-reused",
                errors=[
                    {"field": HEADER, "message": "used with another request", "type": "reused"}
                ],
            )
        except KeyInProgress:
            return problem(
                409,
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                title="Request in progress",
                type_="idempotency-key-in-progress",
                headers={"Retry-After": "1"},
            )
        if first is not None:
            return _replay(first)
        try:
            response = view(*args, **kwargs)
        except BaseException:
            with crm.sessions.begin() as session:
                release(session, actor=owner, key=key)
            raise
        with crm.sessions.begin() as session:
            if response.status_code in _NOT_KEPT:
                release(session, actor=owner, key=key)
            else:
                complete(session, actor=owner, key=key, answer=_stored(response))
        return response

    setattr(wrapper, _MARK, True)
    return wrapper


def is_idempotent(view: Callable[..., Any]) -> bool:
    """Whether ``view`` honours ``Idempotency-Key`` (it is wrapped by ``idempotent``)."""
    return bool(getattr(view, _MARK, False))


def check_idempotent_posts(app: Flask) -> None:
    """Refuse to build an app with a POST under ``/api`` that ignores ``Idempotency-Key``."""
    missing = sorted(
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
        and rule.rule.startswith("/api/")
        and not getattr(app.view_functions[rule.endpoint], _MARK, False)
    )
    if missing:
        raise RuntimeError(f"POST routes under /api without webhooks.idempotency: {missing}")
