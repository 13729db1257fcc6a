"""Bearer API keys for the read endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from crm_core.ingestion.services import authenticate_api_key
from webhooks.failure_budget import count_failure, refused_for_failures
from webhooks.problems import problem


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _valid_api_key() -> bool:
    token = _bearer_token()
    if token is None:
        return False
    with current_app.extensions["crm"].sessions.begin() as session:
        return authenticate_api_key(session, key=token) is not None


def request_has_api_key() -> bool:
    """Whether the request carries a valid API key; ``False`` also when none can be checked."""
    try:
        return _valid_api_key()
    except SQLAlchemyError:  # the database is down: nothing extra is shown
        return False


def require_api_key(view: Callable[..., Response]) -> Callable[..., Response]:
    """Refuse the request with a 401 problem document unless it has a valid API key."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        refusal = refused_for_failures()
        if refusal is not None:
            return refusal
        if _valid_api_key():
            return view(*args, **kwargs)
        # A wrong key counts against the client's budget of failures; a missing one
        # (a browser, a forgotten header) does not.
        unauthorized = problem(
            401,
            "A valid API key is required: 'Authorization: Bearer <key>'.",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="crm"'},
        )
        return unauthorized if _bearer_token() is None else count_failure(unauthorized)

    return guarded
