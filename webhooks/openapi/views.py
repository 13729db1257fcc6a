"""``GET /openapi.json`` (the document) and ``GET /docs`` (Swagger UI on it), both public.

Swagger UI is vendored under ``static/swagger-ui`` (version and licence beside it) and
served by the app: the page loads nothing from elsewhere, and its Content-Security-Policy
allows only this origin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template_string, url_for

from webhooks.openapi.document import build_document
from webhooks.openapi.registry import HTML, Body, documented

SWAGGER_UI_VERSION = "5.35.0"
bp = Blueprint("apidocs", __name__, static_folder="static", static_url_path="/docs/assets")

# Only this origin: scripts, styles, images, fetches. No inline script; Swagger UI sets
# styles through the DOM, which ``style-src 'self'`` does not stop.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'self'"
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{{ asset('swagger-ui/swagger-ui.css') }}">
</head><body data-spec="{{ spec }}"><div id="swagger-ui"></div>
<script src="{{ asset('swagger-ui/swagger-ui-bundle.js') }}"></script>
<script src="{{ asset('docs.js') }}"></script>
</body></html>
"""


def _document() -> dict[str, Any]:
    """Built once per app: the routes do not change after the app starts."""
    cached: dict[str, Any] | None = current_app.extensions.get("crm.openapi")
    if cached is None:
        cached = current_app.extensions["crm.openapi"] = build_document(current_app)
    return cached


@bp.get("/openapi.json")
@documented(
    summary="This API's OpenAPI 3.1 document",
    responses={200: Body({"type": "object"}, description="The OpenAPI document.")},
    tags=("docs",),
)
def openapi_json() -> Response:
    return jsonify(_document())


@bp.get("/docs")
@documented(
    summary="The API's reference pages (Swagger UI)",
    responses={200: Body({"type": "string"}, media_types=(HTML,))},
    tags=("docs",),
)
def docs() -> Response:
    page = render_template_string(
        PAGE,
        title=_document()["info"]["title"],
        spec=url_for("apidocs.openapi_json"),
        asset=lambda name: url_for("apidocs.static", filename=name),
    )
    response = Response(page, mimetype=HTML)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
