"""``POST /forms/<source>``: any website's plain HTML form, posted by a visitor's browser.

A browser signs nothing, so the checks are others, in the order of their cost:
the client's budget of failures (429), the source (404), the page the form was
posted from (403 unless its ``Origin``, else its ``Referer``, is one of the
source's allowed origins; a source without any accepts every page), the
client address's rate (429), the media type (415), the size (413) and the
source's rate (429). Then the request is stored verbatim, committed, and
answered: ``303`` to the source's redirect (or to our thank-you page), or
``202 {"event_id": …}`` when the request's ``Accept`` prefers JSON.

A filled honeypot (``_gotcha``) is answered exactly like a real post and stored
``ignored``: nothing is created, and a robot learns nothing. A post the lead's
rules refuse (no e-mail and no phone…) is stored ``invalid`` and answered
``422`` naming each field. Refusals are problem documents, or for a browser
(``Accept`` prefers ``text/html``) a plain page saying the same.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, jsonify, redirect, request, url_for
from markupsafe import escape
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response as BaseResponse

from crm_core.config import Settings
from crm_core.errors import InvalidInput
from crm_core.ingestion.inbox import Inbox, StoredEvent
from crm_core.ingestion.models import EventStatus
from crm_core.ingestion.services import SourceCredentials
from crm_core.ingestion.validation import payload_from_document
from crm_core.payloads.schemas import LeadPayload
from crm_core.providers import ProviderRequest, get_provider
from crm_core.providers.base import Delivery
from crm_core.providers.form import Form, origin_of
from crm_core.providers.form_body import FORM_TYPES
from crm_core.providers.form_mapping import (
    CONSENT_FIELD,
    DENIED,
    GRANTED,
    HONEYPOT_FIELD,
    LEAD_FIELDS,
)
from webhooks.failure_budget import client_key
from webhooks.intake import (
    Refused,
    check_failures,
    check_rate,
    known_source,
    publish_new,
    read_body,
    unavailable,
)
from webhooks.openapi.registry import HTML, Body, Header, documented
from webhooks.problems import PROBLEM_CONTENT_TYPE, problem
from webhooks.ratelimit import rate_limiter
from webhooks.state import crm_state
from webhooks.telemetry import note

bp = Blueprint("forms", __name__)
JSON_TYPES = ("application/json", PROBLEM_CONTENT_TYPE)


class _FormFields(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True, json_schema_extra={"additionalProperties": {"type": "string"}}
    )


# The fields a form's lead is made of (``form_mapping``); any other is kept in its Activity.
FormFields = create_model(  # type: ignore[call-overload]
    "FormFields",
    __base__=_FormFields,
    __doc__="A posted form's fields: a lead's, the consent checkbox, the honeypot; any other "
    "field is kept, as given, in the lead's Activity.",
    **{name: (str, "") for name in LEAD_FIELDS},
    **{
        CONSENT_FIELD: (
            str,
            Field(
                default="",
                description=f"Marketing consent: {', '.join(sorted(GRANTED))} grant it; "
                f"{', '.join(sorted(DENIED))} deny it; empty or absent states nothing.",
            ),
        ),
        "gotcha": (
            str,
            Field(
                default="",
                alias=HONEYPOT_FIELD,
                description="The honeypot: hidden from people; a robot that fills it is "
                "answered as anyone, and nothing is created.",
            ),
        ),
    },
)


class FormReceipt(BaseModel):
    """The stored post's event (for a client that asks for JSON)."""

    event_id: int


_CORS = {
    "Access-Control-Allow-Origin": "The posting page's origin, when it sent one.",
    "Vary": "``Origin``.",
}
_POSTED_FROM = (
    Header("Origin", "The posting page's origin: one the source allows, if it names any."),
    Header("Referer", "The posting page, when the browser sends no ``Origin``."),
)


@bp.post("/forms/<source_name>")
@documented(
    summary="Receive a website's HTML form, posted by a visitor's browser",
    request=Body(FormFields, media_types=FORM_TYPES),
    headers=_POSTED_FROM,
    responses={
        200: Body(FormReceipt, description="Posted before (the same form again).", headers=_CORS),
        202: Body(FormReceipt, description="Stored (``Accept`` prefers JSON).", headers=_CORS),
        303: Body(
            None,
            description="Stored: to the source's redirect, or to the thank-you page.",
            headers={"Location": "Where the browser goes next.", **_CORS},
        ),
        403: "The page the form was posted from is not one the source allows.",
        404: "No such (enabled) source, or the source is not a web form.",
        413: "The form is larger than the server takes.",
        415: "The body is not a form (``application/x-www-form-urlencoded`` or "
        "``multipart/form-data``).",
        422: "The form lacks what a lead needs (each field named); stored as ``invalid``.",
        429: "Too many forms from this address or to this source; ``Retry-After`` says when.",
        503: "The inbox is unavailable: nothing was stored; post again.",
    },
    pages=True,
    tags=("forms",),
)
def receive_form(source_name: str) -> BaseResponse:
    """Accept one posted form: 303 (or 202 for JSON) once it is stored; a refusal otherwise."""
    settings: Settings = crm_state().settings
    try:
        check_failures()
        inbox: Inbox = crm_state().inbox
        source, _ = known_source(inbox, source_name[:80])
        provider = get_provider(source.provider)
        if not isinstance(provider, Form):
            detail = "This source is not a web form: it posts to /webhooks/<source>."
            raise Refused(problem(404, detail, type_="wrong-endpoint"))
        origin = _check_origin(source)
        _check_client_rate(settings)
        if request.mimetype not in provider.media_types:
            accepted = list(provider.media_types)
            detail = f"A form is sent as {' or '.join(accepted)}."
            raise Refused(problem(415, detail, type_="unsupported-media-type", accepted=accepted))
        message = ProviderRequest(
            request.headers, read_body(limit=settings.max_form_bytes), request.mimetype
        )
        check_rate(source)
        delivery = provider.classify(message, max_depth=settings.max_json_depth)
        note(kind=delivery.kind)
        if delivery.handled and not delivery.errors:
            delivery = _checked(provider, message, delivery)
        stored = inbox.store(
            source_id=source.id,
            kind=delivery.kind,
            webhook_id=delivery.webhook_id,
            content_type=(request.content_type or request.mimetype)[:255],
            body=message.body,
            headers={**delivery.headers, "user-agent": request.headers.get("User-Agent", "")[:255]},
            errors=delivery.errors,
            topic=delivery.topic,
            ignored=not delivery.handled,
        )
    except Refused as refused:
        return _for_browser(refused.response)
    except DBAPIError as exc:
        return _for_browser(unavailable(exc))
    publish_new(stored)
    return _with_cors(_answer(stored, source, source_name), origin)


def _checked(provider: Form, message: ProviderRequest, delivery: Delivery) -> Delivery:
    """``delivery`` with the problems of its lead, found as the intake checks any lead, so the
    visitor is told at once what the worker would refuse."""
    mapped = provider.lead_document(message)
    if mapped is None:
        return delivery
    try:
        payload_from_document(LeadPayload, mapped.document)
    except InvalidInput as exc:
        return replace(delivery, errors=mapped.translate(exc.errors))
    return delivery


@bp.get("/forms/<source_name>/thanks")
@documented(
    summary="The thank-you page after a form is posted",
    responses={200: Body({"type": "string"}, media_types=(HTML,))},
    tags=("forms",),
)
def thanks(source_name: str) -> BaseResponse:
    """The page a browser lands on after posting a form whose source has no redirect."""
    page = (
        "<!doctype html><html><head><meta charset=utf-8><title>Thank you</title></head>"
        f"<body><h1>Thank you</h1><p>Your message to {escape(source_name[:80])} has been"
        " received.</p></body></html>"
    )
    return Response(page, mimetype="text/html")


def _answer(stored: StoredEvent, source: SourceCredentials, source_name: str) -> BaseResponse:
    """422 for a post the lead's rules refuse; else 202 JSON or a 303 to the thank-you page."""
    if stored.status == EventStatus.INVALID:
        return _for_browser(
            problem(
                422,
                "The form is missing something or has a field that is not right.",
                type_="invalid-payload",
                event_id=stored.id,
                errors=stored.errors or [],
            )
        )
    if _prefers_json():
        response = jsonify(event_id=stored.id)
        response.status_code = 202 if stored.created else 200
        return response
    target = source.redirect_url or url_for("forms.thanks", source_name=source_name)
    return redirect(target, code=303)


def _check_origin(source: SourceCredentials) -> str | None:
    """The posting page's origin; 403 unless the source allows it (or allows every page)."""
    origin = origin_of(request.headers.get("Origin")) or origin_of(request.headers.get("Referer"))
    if source.allowed_origins and origin not in source.allowed_origins:
        detail = "This form may only be posted from the pages of its own site."
        raise Refused(problem(403, detail, type_="origin-not-allowed"))
    return origin


def _check_client_rate(settings: Settings) -> None:
    client = client_key(request.remote_addr)
    budget = settings.form_posts_per_address_per_minute
    wait = rate_limiter().retry_after_for(f"form-client:{client}", budget)
    if wait is not None:
        detail = f"Too many forms posted from this address; retry in {wait} s."
        raise Refused(
            problem(429, detail, type_="rate-limited", headers={"Retry-After": str(wait)})
        )


def _prefers_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", *JSON_TYPES])
    return best in JSON_TYPES


def _for_browser(response: BaseResponse) -> BaseResponse:
    """A problem document as a plain page when the client is a browser that prefers HTML."""
    best = request.accept_mimetypes.best_match([*JSON_TYPES, "text/html"])
    if best != "text/html":
        return response
    document = response.get_json(force=True, silent=True) or {}
    lines = [
        f"<li>{escape(e.get('field') or 'form')}: {escape(e.get('message'))}</li>"
        for e in document.get("errors", [])
        if isinstance(e, dict)
    ]
    page = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{escape(document.get('title', 'Error'))}</title></head><body>"
        f"<h1>{escape(document.get('title', 'Error'))}</h1>"
        f"<p>{escape(document.get('detail', ''))}</p>"
        + (f"<ul>{''.join(lines)}</ul>" if lines else "")
        + "<p>Go back, correct the form and send it again.</p></body></html>"
    )
    page_response = Response(page, status=response.status_code, mimetype="text/html")
    for name in ("Retry-After",):
        if name in response.headers:
            page_response.headers[name] = response.headers[name]
    return page_response


def _with_cors(response: BaseResponse, origin: str | None) -> BaseResponse:
    """Let the posting page's script read the answer (a form sent with ``fetch``)."""
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response
