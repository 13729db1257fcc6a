"""Bearer API keys for the read endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request

from crm_core.ingestion.services import authenticate_api_key
from webhooks.problems import problem


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_api_key(view: Callable[..., Response]) -> Callable[..., Response]:
    """Refuse the request with a 401 problem document unless it has a valid API key."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        token = _bearer_token()
        if token is not None:
            with current_app.extensions["crm"].sessions.begin() as session:
                api_key = authenticate_api_key(session, key=token)
            if api_key is not None:
                return view(*args, **kwargs)
        return problem(
            401,
            "A valid API key is required: 'Authorization: Bearer <key>'.",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="crm"'},
        )

    return guarded
