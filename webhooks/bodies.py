"""The size limit of every request body but a webhook's: ``MAX_CONTENT_LENGTH``.

The API and the console take JSON (or form) bodies of at most
``CRM_MAX_JSON_BYTES``. A body that announces more is refused with 413 before
it is read. One that announces nothing (chunked) is read up to the limit and
refused with 413 if there is more; left to Werkzeug it would be cut at the
limit silently and fail as bad JSON. The intake sets its own limit per kind,
after it has looked the source up (an e-mail provider's posts may be as large as an
e-mail).
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from crm_core.config import Settings

# The intake reads its own bodies, with the limit of the source's kind or provider.
INTAKE_ENDPOINTS = frozenset({"intake.receive", "intake.receive_from_provider"})


def init_app(app: Flask, settings: Settings) -> None:
    """Limit the bodies of ``app``'s requests to ``CRM_MAX_JSON_BYTES``."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_json_bytes
    app.before_request(_refuse_long_unannounced_bodies)


def _refuse_long_unannounced_bodies() -> None:
    if request.content_length is not None or request.endpoint in INTAKE_ENDPOINTS:
        return
    limit = request.max_content_length
    if limit is None:
        return
    request.max_content_length = limit + 1  # one byte more tells "too long" from "just right"
    if len(request.get_data(cache=True)) > limit:
        raise RequestEntityTooLarge(f"The body exceeds {limit} bytes.")
