"""Unsubscribe links: GET shows a confirmation button, POST (or RFC 8058 one-click) unsubscribes.

A GET never changes anything, because link scanners and mail previewers follow
links; only a POST does, and it is idempotent. No API key: the signed token is
the authorization.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from flask import Blueprint, Response

from crm_core.campaigns.services import record_unsubscribe
from crm_core.campaigns.unsubscribe import (
    InvalidUnsubscribeTokenError,
    UnsubscribeClaim,
    read_unsubscribe_token,
)
from webhooks.openapi.registry import HTML, Body, documented
from webhooks.state import crm_state

bp = Blueprint("unsubscribe", __name__)
TOKEN = {"token": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
PAGE_BODY = Body({"type": "string"}, media_types=(HTML,), description="A page for people.")
# A page too, not a problem document: the reader is a person who clicked a link.
BAD_LINK = Body({"type": "string"}, media_types=(HTML,), description="The link is not valid.")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> Response:
    response = Response(PAGE.format(title=escape(title), body=body), status=status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    # The token is a credential: keep it out of caches and referrers.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _claim(token: str) -> UnsubscribeClaim | Response:
    state = crm_state()
    try:
        return read_unsubscribe_token(
            token,
            secret_key=state.settings.resolved_secret_key(),
            max_age=dt.timedelta(days=state.settings.unsubscribe_max_age_days),
        )
    except InvalidUnsubscribeTokenError as exc:
        why = "This link has expired." if exc.expired else "This link is not valid."
        return _page("Cannot unsubscribe", f"<p>{escape(why)}</p>", status=400)


@bp.get("/unsubscribe/<token>")
@documented(
    summary="The unsubscribe page: a button that POSTs back (nothing changes on GET)",
    path=TOKEN,
    responses={200: PAGE_BODY, 400: BAD_LINK},
    tags=("unsubscribe",),
)
def confirm(token: str) -> Response:
    """A page with a button that POSTs back; nothing changes on GET."""
    claim = _claim(token)
    if isinstance(claim, Response):
        return claim
    form = (
        '<p>Stop receiving our marketing e-mail?</p><form method="post" action="">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@bp.post("/unsubscribe/<token>")
@documented(
    summary="Unsubscribe (RFC 8058 one-click too); idempotent",
    path=TOKEN,
    responses={200: PAGE_BODY, 400: BAD_LINK},
    tags=("unsubscribe",),
)
def unsubscribe(token: str) -> Response:
    """Put the address on the suppression list (idempotent); RFC 8058 one-click lands here."""
    claim = _claim(token)
    if isinstance(claim, Response):
        return claim
    with crm_state().sessions.begin() as session:
        record_unsubscribe(session, contact_id=claim.contact_id, campaign_id=claim.campaign_id)
    return _page("Unsubscribed", "<p>You will not receive our marketing e-mail any more.</p>")
