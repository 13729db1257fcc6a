"""RFC 9457 problem documents: every error this app returns is one."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.exceptions import HTTPException

from crm_core.config import MissingSettingError
from crm_core.errors import failure_trace

log = logging.getLogger(__name__)

# Problems with their own meaning get a type under /problems/; plain HTTP
# errors use "about:blank", as RFC 9457 recommends.
PROBLEM_TYPE_BASE = "/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A ``application/problem+json`` response."""
    phrase = HTTPStatus(status).phrase
    doc: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + type_ if type_ else "about:blank",
        "title": title or phrase,
        "status": status,
    }
    if detail:
        doc["detail"] = detail
    doc.update(extensions)
    response = Response(json.dumps(doc), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn every HTTP error, and every unexpected exception, into a problem document."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type",)}
        return problem(code, exc.description, headers=headers)

    @app.errorhandler(MissingSettingError)
    def _misconfigured(exc: MissingSettingError) -> Response:
        # The operator's to fix, and the message says how: no stack trace needed.
        log.error("%s", exc)
        return problem(503, str(exc), type_="misconfigured")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The stack, not the message: a message can quote the request's body.
        log.error("unhandled error in %s %s\n%s", request.method, request.path, failure_trace(exc))
        return problem(500, "The server could not complete the request; it has been logged.")


class ProblemFieldError(BaseModel):
    """One bad field of the request: its dotted path (``body`` for the whole), what is wrong."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document; a problem may carry more members than these."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(
        default="about:blank", description=f"``about:blank`` or ``{PROBLEM_TYPE_BASE}<name>``"
    )
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Each bad field, when the input is at fault."
    )
