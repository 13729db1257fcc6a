"""The console's session: a signed cookie saying who signed in, when, and the CSRF token.

The cookie is Flask's signed session (itsdangerous, keyed with ``CRM_SECRET_KEY``):
``HttpOnly``, ``SameSite=Lax``, and ``Secure`` whenever the request came over https. It
holds the user's id, the sign-in time, the time of the last page or click, and the CSRF
token; never the role, which is read from the database on every request, so a changed role
or a disabled account takes effect at once. A session ends ``CRM_CONSOLE_IDLE_MINUTES``
after the last request that was not a live refresh, and ``CRM_CONSOLE_SESSION_HOURS``
after sign-in in any case.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time

from flask import Flask, Request, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from crm_core.config import MissingSettingError, Settings
from webhooks.state import crm_state

CONSOLE_PATH = "/console"
COOKIE_NAME = "crm_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# The overview's polling sends this header: a live refresh does not keep a session alive.
POLL_HEADER = "X-Console-Poll"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_USER = "uid"
_SIGNED_IN = "iat"
_SEEN = "seen"
_CSRF = "csrf"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session for the console's paths only (the API and the webhook
    intake neither read nor set a cookie), keyed with the platform's secret key when first
    needed, ``Secure`` under https. Without a key the console has a null session, and says
    so (``unavailable``)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(CONSOLE_PATH):
            return None  # Flask gives the request a null session
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            try:
                app.secret_key = crm_state().settings.resolved_secret_key()
            except MissingSettingError:
                return None
        return super().get_signing_serializer(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or super().get_cookie_secure(app))


def configure(app: Flask, settings: Settings) -> None:
    """Set the session cookie's name, flags and lifetime on ``app``."""
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.console_session_hours),
    )


def unavailable() -> bool:
    """Whether this request has no session to keep (no secret key to sign the cookie)."""
    return current_app.session_interface.is_null_session(session)


def start(user_id: int) -> None:
    """Begin a session for ``user_id``: everything before it (and its CSRF token) is dropped,
    so a token or cookie planted before sign-in is worth nothing after it."""
    session.clear()
    now = int(time.time())
    session.permanent = True
    session.update({_USER: user_id, _SIGNED_IN: now, _SEEN: now, _CSRF: _new_token()})


def end() -> None:
    """Sign out: the cookie is emptied."""
    session.clear()


def signed_in_user(settings: Settings, req: Request) -> int | None:
    """The user id of a live session, or None (and the session ended) when it timed out."""
    user_id = session.get(_USER)
    if not isinstance(user_id, int):
        return None
    now = int(time.time())
    signed_in, seen = int(session.get(_SIGNED_IN, 0)), int(session.get(_SEEN, 0))
    if (
        now - seen > settings.console_idle_minutes * 60
        or now - signed_in > settings.console_session_hours * 3600
    ):
        end()
        return None
    if req.headers.get(POLL_HEADER) is None and now - seen >= 1:
        session[_SEEN] = now
    return user_id


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token() -> str:
    """The session's CSRF token, made on first use (the sign-in form has one too)."""
    if unavailable():
        return ""
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = session[_CSRF] = _new_token()
    return token


def csrf_ok(req: Request) -> bool:
    """Whether a writing request carries the session's token, in the form or the header."""
    expected = session.get(_CSRF)
    sent = req.headers.get(CSRF_HEADER) or req.form.get(CSRF_FIELD) or ""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), sent.encode())
