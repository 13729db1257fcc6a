"""Bearer API keys: who is asking, and whether the route allows it.

Each guarded route's permission is declared once, in ``ROUTE_PERMISSIONS`` (by endpoint
name). ``require_api_key`` resolves the key to an ``Actor``, refuses with 401 without a
valid key and with 403 (naming the scope) without the permission, and leaves the actor
for the view (``current_actor()``) to hand to the services. ``check_route_permissions``
makes the app refuse to start with a guarded route missing from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from crm_core.people.api_keys import authenticate_api_key
from crm_core.people.permissions import PERMISSION_SCOPE, Actor, Permission, PermissionDenied
from webhooks.failure_budget import count_failure, refused_for_failures
from webhooks.problems import problem
from webhooks.state import crm_state

P = Permission
# endpoint -> what it needs. Reads need ``read``; CRM writes ``write``; replies and
# campaigns ``send``; the audit log ``admin`` (see PERMISSION_SCOPE).
ROUTE_PERMISSIONS: dict[str, Permission] = {
    "events.show_event": P.READ,
    "api.list_contacts": P.READ,
    "exports.export_contacts_file": P.READ,
    "attachments.download_attachment": P.READ,
    "api.show_contact": P.READ,
    "api.show_customer": P.READ,
    "api.customer_timeline": P.READ,
    "api.contact_timeline": P.READ,
    "api.opportunity_timeline": P.READ,
    "api.list_customers": P.READ,
    "api.list_cases": P.READ,
    "api.list_opportunities": P.READ,
    "api.list_orders": P.READ,
    "api.list_products": P.READ,
    "api.list_agreements": P.READ,
    "api.search_all": P.READ,
    "api.show_case": P.READ,
    "api.show_activity": P.READ,
    "api.show_product": P.READ,
    "api.show_followup": P.READ,
    "api.list_suppressions": P.READ,
    "api.show_opportunity": P.READ,
    "api.show_order": P.READ,
    "api.list_followups": P.READ,
    "api.close_followup": P.WRITE,
    "api.reply_to_case": P.REPLY,
    "campaigns.list_all": P.READ,
    "campaigns.show": P.READ,
    "campaigns.preview": P.READ,
    "campaigns.create": P.CAMPAIGNS,
    "campaigns.act": P.CAMPAIGNS,
    "audit.list_audit": P.AUDIT,
    "api_writes.create_customer": P.WRITE,
    "api_writes.update_customer": P.WRITE,
    "api_writes.delete_customer": P.WRITE,
    "api_writes.create_contact": P.WRITE,
    "api_writes.update_contact": P.WRITE,
    # With ``erase=true`` the erasure needs ``personal_data`` too (``admin``), checked by it.
    "api_writes.delete_contact": P.WRITE,
    "personal_data.export_contact": P.PERSONAL_DATA,
    "api_writes.make_primary": P.WRITE,
    "api_writes.update_case": P.WRITE,
    "api_writes.log_activity": P.WRITE,
    "api_writes.merge_contact": P.WRITE,
    "api_writes.merge_customer": P.WRITE,
    "api_writes.create_opportunity": P.WRITE,
    "api_writes.update_opportunity": P.WRITE,
    "api_writes.terminate_agreement": P.WRITE,
    "api.show_agreement": P.READ,
    "metrics.show_metrics": P.METRICS,
}

_GUARDED = "_crm_requires_api_key"
_ACTOR = "crm_actor"


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _actor_of_request() -> Actor | None:
    token = _bearer_token()
    if token is None:
        return None
    with crm_state().sessions.begin() as session:
        return authenticate_api_key(session, key=token)


def request_has_admin_key() -> bool:
    """Whether the request carries a valid key with the ``admin`` scope; ``False`` also when
    none can be checked."""
    try:
        actor = _actor_of_request()
    except SQLAlchemyError:  # the database is down: nothing extra is shown
        return False
    return actor is not None and actor.allows(Permission.AUDIT)


def forbidden(exc: PermissionDenied) -> Response:
    """The 403 problem document for a missing permission, naming the scope it needs."""
    return problem(
        403,
        str(exc),
        title="Missing permission",
        type_="forbidden",
        scope=exc.scope.value,
        permission=exc.permission.value,
    )


def require_api_key(view: Callable[..., Response]) -> Callable[..., Response]:
    """Refuse the request unless a valid API key with the route's permission sent it."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        refusal = refused_for_failures()
        if refusal is not None:
            return refusal
        actor = _actor_of_request()
        if actor is None:
            unauthorized = problem(
                401,
                "A valid API key is required: 'Authorization: Bearer <key>'.",
                type_="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="crm"'},
            )
            # A wrong key counts against the client's budget of failures; a missing one
            # (a browser, a forgotten header) does not.
            return unauthorized if _bearer_token() is None else count_failure(unauthorized)
        try:
            actor.require(ROUTE_PERMISSIONS[request.endpoint or ""])
        except PermissionDenied as exc:
            return forbidden(exc)
        setattr(g, _ACTOR, actor)
        return view(*args, **kwargs)

    setattr(guarded, _GUARDED, True)
    return guarded


def current_actor() -> Actor:
    """The actor of the current request, as ``require_api_key`` resolved it."""
    actor: Actor = getattr(g, _ACTOR)
    return actor


def check_route_permissions(app: Flask) -> None:
    """Refuse to build an app with a guarded route whose permission is not declared."""
    missing = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, _GUARDED, False) and endpoint not in ROUTE_PERMISSIONS
    )
    if missing:
        raise RuntimeError(
            f"routes without a declared permission in webhooks.auth.ROUTE_PERMISSIONS: {missing}"
        )


def guarded_endpoints(app: Flask) -> dict[str, str]:
    """Every guarded endpoint with the scope it needs (for the docs and the tests)."""
    return {
        endpoint: PERMISSION_SCOPE[ROUTE_PERMISSIONS[endpoint]].value
        for endpoint, view in app.view_functions.items()
        if getattr(view, _GUARDED, False)
    }
