"""Who may open which console page: each view declares the permission it needs.

``@console_route(Permission.X)`` under the route decorator declares it; the console checks it
before the view runs (``webhooks.console.site``), with the same ``Actor`` and permissions the
API and the services use, so a page does nothing the API would refuse. ``@public`` marks the
few views a signed-out browser may reach (sign-in, the static files). ``check_console_routes``
makes the app refuse to start with a console view that declares neither, and
``console_permissions`` lists the table for the docs and the tests::

    @bp.post("/<int:customer_id>/contacts/<int:contact_id>")
    @console_route(Permission.WRITE)
    def update_contact(customer_id: int, contact_id: int) -> str: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g

from crm_core.people.permissions import Actor, Permission

F = TypeVar("F", bound=Callable[..., Any])

CONSOLE = "console"  # the parent blueprint: every console endpoint starts with "console."
_PERMISSION = "_crm_console_permission"
_PUBLIC = "_crm_console_public"
_ACTOR = "crm_console_actor"


def console_route(permission: Permission) -> Callable[[F], F]:
    """Declare the permission a console view needs (put it under ``@bp.get``/``@bp.post``)."""

    def declare(view: F) -> F:
        setattr(view, _PERMISSION, permission)
        return view

    return declare


def public(view: F) -> F:
    """Let a signed-out browser reach this console view (sign-in, error pages)."""
    setattr(view, _PUBLIC, True)
    return view


def is_public(view: Callable[..., Any] | None) -> bool:
    return bool(getattr(view, _PUBLIC, False))


def required_permission(view: Callable[..., Any] | None) -> Permission | None:
    """The permission a console view declared, if any."""
    permission: Permission | None = getattr(view, _PERMISSION, None)
    return permission


def _is_console(endpoint: str) -> bool:
    return endpoint == CONSOLE or endpoint.startswith(CONSOLE + ".")


def _is_static(endpoint: str) -> bool:
    return endpoint.endswith(".static") or endpoint == "static"


def check_console_routes(app: Flask) -> None:
    """Refuse to build an app with a console view that declares no permission."""
    missing = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if _is_console(endpoint)
        and not _is_static(endpoint)
        and not is_public(view)
        and required_permission(view) is None
    )
    if missing:
        raise RuntimeError(
            f"console views without @console_route(permission) or @public: {missing}"
        )


def console_permissions(app: Flask) -> dict[str, str]:
    """Every guarded console endpoint with the permission it needs."""
    table = {}
    for endpoint, view in app.view_functions.items():
        permission = required_permission(view)
        if _is_console(endpoint) and permission is not None:
            table[endpoint] = permission.value
    return dict(sorted(table.items()))


def set_actor(actor: Actor) -> None:
    setattr(g, _ACTOR, actor)


def signed_in_actor() -> Actor | None:
    """The signed-in user of this request as an ``Actor``, or None."""
    actor: Actor | None = getattr(g, _ACTOR, None)
    return actor


def current_actor() -> Actor:
    """The signed-in user of this request (a guarded view always has one)."""
    actor = signed_in_actor()
    if actor is None:
        raise RuntimeError("no signed-in user: is the view missing @console_route?")
    return actor
