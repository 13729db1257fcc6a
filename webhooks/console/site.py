"""The console's frame: the parent blueprint at ``/console``, what runs around every page.

Before a console view runs: the session is read and the user loaded (an ``Actor`` with the
role's permissions); a signed-out browser is sent to the sign-in page; a writing request
without the session's CSRF token is refused; a view's declared permission is checked. After
it: a strict Content-Security-Policy (this origin only, no inline script or style, no
framing) and headers that keep pages out of caches and other sites' frames. Errors are
HTML pages; a server error shows a reference id that is also in the log, never a traceback.

The pages (overview, events, people, …) are blueprints of their own, registered under this
one, so all of this applies to them without a line of their own.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from crm_core.config import MissingSettingError
from crm_core.errors import failure_trace
from crm_core.people.models import User
from crm_core.people.permissions import Actor, Permission, PermissionDenied
from webhooks.console import sessions
from webhooks.console.access import (
    is_public,
    public,
    required_permission,
    set_actor,
    signed_in_actor,
)
from webhooks.state import crm_state

log = logging.getLogger(__name__)

HTMX_VERSION = "2.0.11"

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)

# Only this origin, for everything; no inline script or style (so no 'unsafe-inline'), no
# eval, no plugins, no framing by anyone. A sanitized e-mail shown in a sandboxed iframe
# comes from this origin too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation: shown when its page exists and the user may open it."""

    label: str
    endpoint: str
    permission: Permission


NAV: tuple[NavItem, ...] = (
    NavItem("Overview", "console.overview.index", Permission.READ),
    NavItem("Events", "console.events.index", Permission.READ),
    NavItem("People", "console.people.index", Permission.READ),
    NavItem("Cases", "console.cases.index", Permission.READ),
    NavItem("Pipeline", "console.pipeline.index", Permission.READ),
    NavItem("Campaigns", "console.campaigns.index", Permission.READ),
    NavItem("Settings", "console.settings.index", Permission.USERS),
)


def _actor_of_session() -> Actor | None:
    user_id = sessions.signed_in_user(crm_state().settings, request)
    if user_id is None:
        return None
    with crm_state().sessions() as db:
        user = db.get(User, user_id)
        if user is None or user.disabled_at is not None:
            sessions.end()
            return None
        return Actor.for_user(user_id=user.id, email=user.email, role=user.role)


def _to_sign_in() -> Response:
    """Send a signed-out browser to the sign-in page, back here afterwards."""
    target = url_for("console.signin.show", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        # An htmx request would swap the sign-in page into a fragment: reload instead.
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


@bp.before_request
def _guard() -> Response | tuple[str, int] | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if request.endpoint and request.endpoint.endswith(".static"):
        return None
    if sessions.unavailable():
        return error_page(503, "The console needs CRM_SECRET_KEY to sign its session cookie.")
    actor = _actor_of_session()
    if actor is not None:
        set_actor(actor)
    if request.method not in sessions.SAFE_METHODS and not sessions.csrf_ok(request):
        return error_page(403, "The form had expired or came from elsewhere. Reload the page.")
    if is_public(view):
        return None
    if actor is None:
        return _to_sign_in()
    permission = required_permission(view)
    if permission is None:  # unreachable: check_console_routes refuses such an app
        return error_page(403, "This page declares no permission.")
    if not actor.allows(permission):
        return error_page(403, str(PermissionDenied(actor, permission)))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def _nav() -> list[dict[str, Any]]:
    actor = signed_in_actor()
    if actor is None:
        return []
    endpoints = current_app.view_functions
    return [
        {"label": item.label, "url": url_for(item.endpoint), "endpoint": item.endpoint}
        for item in NAV
        if item.endpoint in endpoints and actor.allows(item.permission)
    ]


@bp.app_context_processor
def _context() -> dict[str, Any]:
    if not request.blueprint or not request.blueprint.startswith("console"):
        return {}
    actor = signed_in_actor()

    def can(permission: str) -> bool:
        return actor is not None and actor.allows(Permission(permission))

    return {
        "actor": actor,
        "can": can,
        "page_url": page_url,
        "csrf_token": sessions.csrf_token,
        "csrf_field": sessions.CSRF_FIELD,
        "nav": _nav(),
        "poll_header": sessions.POLL_HEADER,
    }


@bp.app_template_filter("zip_pairs")
def zip_pairs(values: Any) -> list[tuple[str, str]]:
    """``["a", "b"]`` -> ``[("a", "a"), ("b", "b")]``: options whose value is their label."""
    return [(str(value), str(value)) for value in values]


def page_url(endpoint: str, **values: Any) -> str | None:
    """The URL of a console page, or None while no such page exists (a link to a page area
    not built yet is left out rather than left dead)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def error_page(status: int, message: str, *, reference: str | None = None) -> tuple[str, int]:
    """The console's HTML page for an error: what happened, and what to do."""
    titles = {
        400: "Bad request",
        403: "Not allowed",
        404: "Not found",
        405: "Not allowed here",
        429: "Too many requests",
        500: "Something went wrong",
        503: "Not available",
    }
    title = titles.get(status, "Error")
    return render_template(
        "console/error.html", status=status, title=title, message=message, reference=reference
    ), status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    return error_page(exc.code or 500, exc.description or "")


@bp.errorhandler(PermissionDenied)
def _denied(exc: PermissionDenied) -> tuple[str, int]:
    return error_page(403, str(exc))


@bp.errorhandler(MissingSettingError)
def _misconfigured(exc: MissingSettingError) -> tuple[str, int]:
    log.error("%s", exc)
    return error_page(503, str(exc))


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str, int]:
    reference = secrets.token_hex(6)
    log.error(
        "console error %s in %s %s\n%s", reference, request.method, request.path, failure_trace(exc)
    )
    return error_page(
        500,
        "The page could not be shown; the error has been logged. Quote the reference"
        " below when you report it.",
        reference=reference,
    )


@bp.route("/<path:anything>", methods=["GET", "POST"])
@public
def not_found(anything: str) -> tuple[str, int]:
    """Any other path under /console: the console's own 404 page."""
    return error_page(404, "There is no page at this address.")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path of this site, else the overview."""
    fallback = url_for("console.overview.index")
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return fallback
    if "\\" in target or target.startswith("//"):
        return fallback
    return target


root = Blueprint("console_root", __name__)


@root.get("/")
def front_door() -> Response:
    """``/`` is the console (through the sign-in page when signed out)."""
    return redirect(url_for("console.overview.index"), 302)
