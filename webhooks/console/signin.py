"""Signing in and out of the console, as one of the users of ``crm users``.

The password is checked by ``crm_core.people.users.authenticate`` (argon2, and the failed
sign-ins counted per account and per client address in the rate-limit storage, shared by
every web process). A wrong address and a wrong password get the same answer.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from crm_core.people.login_throttle import LoginThrottle
from crm_core.people.users import LoginRefused, LoginThrottled, authenticate
from webhooks.console import sessions
from webhooks.console.access import public, signed_in_actor
from webhooks.console.site import safe_next
from webhooks.ratelimit import rate_limiter
from webhooks.state import crm_state

bp = Blueprint("signin", __name__)


def _throttle() -> LoginThrottle:
    settings = crm_state().settings
    return LoginThrottle(
        rate_limiter().storage,
        prefix=settings.ratelimit_prefix,
        per_account=settings.login_failures_per_account,
        per_address=settings.login_failures_per_address,
        window_seconds=settings.login_window_seconds,
    )


def _form(*, email: str = "", error: str = "", status: int = 200) -> tuple[str, int]:
    page = render_template(
        "console/signin.html", email=email, error=error, next=request.values.get("next", "")
    )
    return page, status


@bp.get("/signin")
@public
def show() -> Response | tuple[str, int]:
    """The sign-in form (straight on to the console when already signed in)."""
    if signed_in_actor() is not None:
        return redirect(safe_next(request.args.get("next")), 303)
    return _form()


@bp.post("/signin")
@public
def sign_in() -> Response | tuple[str, int]:
    """Check the address and password; start a session and go where the user was going."""
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    if not email or not password:
        return _form(email=email, error="Enter your e-mail address and password.", status=400)
    try:
        with crm_state().sessions.begin() as db:
            actor = authenticate(
                db,
                email=email,
                password=password,
                throttle=_throttle(),
                client_address=request.remote_addr,
            )
    except LoginThrottled as exc:
        message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
        return _form(email=email, error=message, status=429)
    except LoginRefused:
        return _form(email=email, error="Wrong e-mail address or password.", status=401)
    assert actor.user_id is not None
    sessions.start(actor.user_id)
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/signout")
@public
def sign_out() -> Response:
    """End the session (a POST with the CSRF token: a link elsewhere cannot sign anyone out)."""
    sessions.end()
    return redirect(url_for("console.signin.show"), 303)
