"""The campaigns API: create, inspect, schedule, send, pause, resume, cancel, preview.

A campaign answers with a strong ``ETag`` of its own state (status, schedule, content; not its
send counts, which move while it is sent) and its actions honour ``If-Match`` (412 when stale;
no header, no check), as the write API's records do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from crm_core.admin import campaigns as admin
from crm_core.campaigns import sending, services
from crm_core.editing.etags import PreconditionFailed, etag, require_current
from crm_core.editing.schemas import parse
from crm_core.errors import FieldError, InvalidInput, PermanentError
from webhooks.api_writes import IF_MATCH, STALE, if_match
from webhooks.auth import current_actor, require_api_key
from webhooks.idempotency import idempotent
from webhooks.openapi.registry import Body, documented
from webhooks.problems import problem
from webhooks.state import crm_state
from workers.publish import enqueue_campaign_work

bp = Blueprint("campaigns", __name__, url_prefix="/api/campaigns")
_MAX_ID = 2**63 - 1
Instant = Annotated[
    str, Field(description="ISO 8601 with a time zone", json_schema_extra={"format": "date-time"})
]


class CampaignCreate(BaseModel):
    """A new campaign; the templates, the segment and the moment are checked by the service."""

    model_config = ConfigDict(extra="ignore")

    name: str
    code: str
    subject: str
    text: str
    html: str | None = None
    segment: dict[str, Any] | None = None
    send_at: Instant | None = None


class CampaignSchedule(BaseModel):
    """When to send (``schedule`` only): once at ``send_at``, or on a ``cron`` schedule."""

    model_config = ConfigDict(extra="ignore")

    send_at: Instant | None = None
    cron: str | None = None


class CampaignCreated(BaseModel):
    id: int


class CampaignSummary(BaseModel):
    id: int
    name: str
    code: str
    status: str


class CampaignList(BaseModel):
    items: list[CampaignSummary]


class CampaignPreview(BaseModel):
    """One contact's message as it would be sent."""

    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str]


class PreviewQuery(BaseModel):
    contact_id: int = Field(ge=0, description="The contact the message is rendered for.")


INVALID = "The campaign is not valid (each bad field named)."
_ETAG = {
    "ETag": "The campaign's version (a strong ETag of its status, schedule and content, not of "
    "its send counts): send it as ``If-Match`` to act on it."
}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise InvalidInput([FieldError(loc=(), msg="the body must be a JSON object")])
    return body


def _instant(value: str | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise InvalidInput([FieldError(loc=(field,), msg="must be ISO 8601 with a time zone")])
    # Converted to UTC by the service, which also refuses a moment out of range.
    return instant


def _run(work: Callable[[Any], Any], *, status: int = 200, tag_of: int | None = None) -> Response:
    """Run ``work`` in one transaction and map the service errors to problems.

    ``tag_of`` names the campaign whose ETag the answer carries, read in the same transaction.
    """
    tag = None
    try:
        with crm_state().sessions.begin() as session:
            result = work(session)
            if tag_of is not None:
                tag = etag(session, "campaign", tag_of)
    except PreconditionFailed as exc:
        return problem(
            412,
            str(exc),
            title="Precondition failed",
            type_="stale",
            headers={"ETag": exc.current},
            etag=exc.current,
        )
    except services.CampaignNotFoundError as exc:
        return problem(404, str(exc), type_="not-found")
    except services.CampaignStateError as exc:
        return problem(409, str(exc), title="Not allowed now", type_="campaign-state")
    except InvalidInput as exc:
        return problem(
            422, str(exc), title="Invalid campaign", type_="invalid", errors=exc.error_dicts()
        )
    except PermanentError as exc:
        return problem(422, str(exc), title="Invalid campaign", type_="invalid")
    response = jsonify(result)
    response.status_code = status
    if tag is not None:
        response.headers["ETag"] = tag
    return response


def _view(session: Any, campaign_id: int) -> dict[str, Any]:
    return services.get_campaign_view(session, campaign_id=campaign_id).as_dict()


@bp.post("")
@documented(
    summary="Create a campaign",
    request=CampaignCreate,
    responses={201: CampaignCreated, 409: "Not allowed now.", 422: INVALID},
    tags=("campaigns",),
)
@require_api_key
@idempotent
def create() -> Response:
    """Create a campaign: 201 with its id."""

    def work(session: Any) -> dict[str, Any]:
        body = parse(CampaignCreate, _body())
        campaign = admin.create_campaign(
            session,
            actor=current_actor(),
            name=body.name,
            code=body.code,
            subject=body.subject,
            text=body.text,
            html=body.html,
            segment=body.segment,
            send_at=_instant(body.send_at, "send_at"),
        )
        return {"id": campaign.id}

    return _run(work, status=201)


@bp.get("")
@documented(
    summary="Every campaign with its status, newest first",
    responses={200: CampaignList},
    tags=("campaigns",),
)
@require_api_key
def list_all() -> Response:
    """Every campaign with its status, newest first."""
    return _run(
        lambda s: {
            "items": [
                {"id": c.id, "name": c.name, "code": c.code, "status": c.status}
                for c in services.list_campaigns(s)
            ]
        }
    )


@bp.get("/<int:campaign_id>")
@documented(
    summary="A campaign with its status and stats",
    responses={200: Body(services.CampaignView, headers=_ETAG), 404: "No such campaign."},
    tags=("campaigns",),
)
@require_api_key
def show(campaign_id: int) -> Response:
    """The campaign with its status and stats, and its ETag.

    No 304 for ``If-None-Match``: the stats move under an unchanged ETag.
    """
    if campaign_id > _MAX_ID:
        return problem(404, f"no campaign {campaign_id}", type_="not-found")
    return _run(lambda s: _view(s, campaign_id), tag_of=campaign_id)


@bp.post("/<int:campaign_id>/<any(send,schedule,pause,resume,cancel):action>")
@documented(
    summary="Send, schedule, pause, resume or cancel a campaign",
    request=Body(CampaignSchedule, required=False, description="For ``schedule`` only."),
    headers=(IF_MATCH,),
    responses={
        **STALE,
        200: Body(services.CampaignView, headers={"ETag": "The campaign's new version."}),
        404: "No such campaign.",
        409: "Not allowed in the campaign's status.",
        422: INVALID,
    },
    tags=("campaigns",),
)
@require_api_key
@idempotent
def act(campaign_id: int, action: str) -> Response:
    """Change the campaign's status; the new view answers."""
    if campaign_id > _MAX_ID:
        return problem(404, f"no campaign {campaign_id}", type_="not-found")

    actor = current_actor()
    expected = if_match()

    def work(session: Any) -> dict[str, Any]:
        require_current(session, "campaign", campaign_id, expected)
        if action == "send":
            admin.send_now(session, actor=actor, campaign_id=campaign_id)
        elif action == "schedule":
            body = parse(CampaignSchedule, _body())
            admin.schedule(
                session,
                actor=actor,
                campaign_id=campaign_id,
                send_at=_instant(body.send_at, "send_at"),
                cron=body.cron,
            )
        else:
            getattr(admin, action)(session, actor=actor, campaign_id=campaign_id)
        return _view(session, campaign_id)

    response = _run(work, tag_of=campaign_id)
    # After commit: start now rather than at the next beat.
    if response.status_code == 200 and action == "send":
        enqueue_campaign_work()
    elif response.status_code == 200 and action == "resume":
        enqueue_campaign_work(campaign_id)
    return response


@bp.get("/<int:campaign_id>/preview")
@documented(
    summary="One contact's message as it would be sent",
    query=PreviewQuery,
    responses={
        200: CampaignPreview,
        404: "No such campaign or contact.",
        422: "``contact_id`` is not a contact's id, or a template fails.",
    },
    tags=("campaigns",),
)
@require_api_key
def preview(campaign_id: int) -> Response:
    """One contact's message as it would be sent: subject, text, html and headers."""
    contact_id = request.args.get("contact_id", "")
    digits = contact_id.isascii() and contact_id.isdigit()
    if not digits or int(contact_id) > _MAX_ID or campaign_id > _MAX_ID:
        return problem(422, "contact_id must be a contact's id", type_="invalid")
    settings = crm_state().settings
    identity = sending.MailIdentity.from_settings(settings)

    def work(session: Any) -> dict[str, Any]:
        message = sending.preview_message(
            session, campaign_id=campaign_id, contact_id=int(contact_id), identity=identity
        )
        if message is None:
            raise services.CampaignNotFoundError(
                f"no campaign {campaign_id} or contact {contact_id}"
            )
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        return {
            "subject": str(message["Subject"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "headers": {name: str(value) for name, value in message.items()
                        if name.lower() not in ("content-type", "mime-version",
                                                "content-transfer-encoding")},
        }  # fmt: skip

    return _run(work)
