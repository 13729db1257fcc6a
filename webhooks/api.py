"""The read API: lists of every entity for incremental sync, search, contacts, customers,
opportunities and their timelines, cases and their activities, agreements, orders, follow-up
tasks, suppressions.

A single record answers with a strong ``ETag`` (``crm_core.editing.etags``) and a 304 to a
matching ``If-None-Match``; a merged customer or contact answers 301 to its survivor, and so do
its timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import Blueprint, Response, jsonify, request, url_for
from pydantic import BaseModel
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from crm_core.base.pagination import Page, parse_limit
from crm_core.base.serialize import to_dict
from crm_core.bounces import suppression
from crm_core.customers.models import Contact, Customer
from crm_core.customers.services import surviving
from crm_core.editing.etags import etag
from crm_core.editing.schemas import parse
from crm_core.errors import InvalidInput
from crm_core.followups import services as followups
from crm_core.followups.models import FollowUpStatus
from crm_core.mail import CaseTokens
from crm_core.mail_transport.backends import backend_from_url
from crm_core.readapi import lists, queries, schemas, search
from crm_core.sales.models import Agreement
from crm_core.support.replies import CaseNotFound, ReplyOutcome, send_case_reply
from webhooks.auth import current_actor, require_api_key
from webhooks.idempotency import idempotent
from webhooks.openapi.registry import Body, Header, documented
from webhooks.problems import problem
from webhooks.state import crm_state
from webhooks.validators import content_tagged

bp = Blueprint("api", __name__, url_prefix="/api")
INVALID_QUERY = "A query parameter is not valid (each one named)."
F = TypeVar("F", bound=Callable[..., Any])


class CaseReply(BaseModel):
    """A reply from a case: its text, and optionally its HTML."""

    body: str
    html: str | None = None


class ReplySent(BaseModel):
    """The reply's Activity, its Message-ID, and that the mail server took it."""

    activity_id: int
    message_id: str
    delivery: Literal["sent"]


# Ids are BIGINT: anything larger names nothing (and must not reach the database).
_MAX_ID = 2**63 - 1


def _read(work: Callable[[Any], Any], *ids: int) -> Any:
    """Run ``work`` in a read-only session; None when an id is out of range."""
    if any(ident > _MAX_ID for ident in ids):
        return None
    with crm_state().sessions() as session:
        return work(session)


def _answer(found: dict[str, Any] | Page | None, what: str, ident: int) -> Response:
    if found is None:
        return problem(404, f"No {what} {ident}.", type_="not-found")
    return jsonify(found.as_dict() if isinstance(found, Page) else found)


_MERGEABLE: dict[str, tuple[type[Contact] | type[Customer], str]] = {
    "customer": (Customer, "customer_id"),
    "contact": (Contact, "contact_id"),
}


def _values(args: MultiDict[str, str], **more: Any) -> dict[str, Any]:
    """A query's arguments and ``more``, as ``url_for`` takes them."""
    return {**args.to_dict(), **more}


def _survivor(session: Session, entity: str, ident: int) -> int | None:
    """The id a merged customer or contact redirects to; None for any other record."""
    if entity not in _MERGEABLE:
        return None
    if entity == "contact":
        contact = session.get(Contact, ident)
        if contact is None or contact.merged_into is None:
            return None
        return surviving(session, contact).id
    customer = session.get(Customer, ident)
    if customer is None or customer.merged_into is None:
        return None
    return surviving(session, customer).id


def _single(entity: str, ident: int, fetch: Callable[[Session], dict[str, Any] | None]) -> Response:
    """One record with its ETag (304 when ``If-None-Match`` has it; 301 when it was merged)."""
    if ident > _MAX_ID:
        return problem(404, f"No {entity} {ident}.", type_="not-found")
    with crm_state().sessions() as session:
        survivor = _survivor(session, entity, ident)
        if survivor is not None:
            endpoint = request.endpoint or ""
            args = {**(request.view_args or {}), _MERGEABLE[entity][1]: survivor}
            response = Response(status=301)
            response.headers["Location"] = url_for(endpoint, **args)
            return response
        found = fetch(session)
        tag = etag(session, entity, ident) if found is not None else None
    if found is None:
        return problem(404, f"No {entity} {ident}.", type_="not-found")
    if tag is not None and tag in _tags(request.headers.get("If-None-Match")):
        response = Response(status=304)
    else:
        response = jsonify(found)
    if tag is not None:
        response.headers["ETag"] = tag
    return response


def _tags(header: str | None) -> list[str]:
    return [t.strip() for t in (header or "").split(",") if t.strip()]


def _invalid(exc: InvalidInput) -> Response:
    return problem(
        400, str(exc), title="Invalid query", type_="invalid-query", errors=exc.error_dicts()
    )


def _paged(
    fetch: Callable[[Any, str | None, int], Any], of: tuple[str, int] | None = None
) -> Response:
    """``fetch(session, cursor, limit)`` with ``?cursor=`` and ``?limit=``: 400 for bad ones.

    ``of`` names the record the page belongs to (``("case", 7)``): 404 when it does not exist.
    """
    try:
        limit = parse_limit(request.args.get("limit"))
        ids = (of[1],) if of else ()
        found = _read(lambda s: fetch(s, request.args.get("cursor"), limit), *ids)
    except InvalidInput as exc:
        return _invalid(exc)
    if of is None:
        return jsonify(found.as_dict())
    return _answer(found, *of)


IF_NONE_MATCH = Header(
    "If-None-Match", "ETags you hold: a 304 without a body when the record still has one."
)
_ETAG = {"ETag": "The record's version (a strong ETag): send it as ``If-Match`` to change it."}
_CONTENT_ETAG = {
    "ETag": "A digest of the document (a strong ETag): send it as ``If-None-Match`` to re-read."
}


def _record(
    model: Any, what: str, *, merged: bool = False, tag: dict[str, str] = _ETAG
) -> dict[int, Any]:
    """The answers of a single record's read (``_single``)."""
    answers: dict[int, Any] = {
        200: Body(model, headers=tag),
        304: Body(None, description="Not modified: the ETag you hold is current.", headers=tag),
        404: f"No such {what}.",
    }
    if merged:
        answers[301] = Body(
            None,
            description=f"The {what} was merged: ``Location`` is the survivor's.",
            headers={"Location": "The surviving record's URL."},
        )
    return answers


def _listing(kind: str, summary: str, tag: str) -> Callable[[F], F]:
    """The description of ``GET /api/<kind>``: its filters as ``lists`` reads them."""
    return documented(
        summary=summary,
        query=schemas.list_query(kind),
        responses={200: schemas.list_page(kind), 400: INVALID_QUERY},
        tags=(tag,),
    )


def _listed(kind: str) -> Response:
    """A page of ``kind`` filtered by the query string (every value of a repeated parameter)."""
    params = {name: ",".join(values) for name, values in request.args.lists()}
    return _paged(
        lambda s, cursor, limit: lists.list_entities(
            s, kind=kind, params=params, cursor=cursor, limit=limit
        )
    )


@bp.get("/contacts")
@_listing("contacts", "Contacts by last change (incremental sync)", "contacts")
@require_api_key
def list_contacts() -> Response:
    """Contacts by last change; ``?email=`` (matched normalized), ``?customer_id=``."""
    return _listed("contacts")


@bp.get("/customers")
@_listing("customers", "Customers by last change (incremental sync)", "customers")
@require_api_key
def list_customers() -> Response:
    """Customers by last change; ``?kind=``, ``?lifecycle_stage=``, ``?owner=``."""
    return _listed("customers")


@bp.get("/cases")
@_listing("cases", "Support cases by last change (incremental sync)", "cases")
@require_api_key
def list_cases() -> Response:
    """Support cases by last change; ``?status=``, ``?priority=``, ``?assignee=``,
    ``?sla_breached=``, ``?customer_id=``."""
    return _listed("cases")


@bp.get("/opportunities")
@_listing("opportunities", "Opportunities by last change (incremental sync)", "sales")
@require_api_key
def list_opportunities() -> Response:
    """Opportunities by last change; ``?stage=``, ``?owner=``, ``?customer_id=``."""
    return _listed("opportunities")


@bp.get("/orders")
@_listing("orders", "Orders by last change (incremental sync)", "sales")
@require_api_key
def list_orders() -> Response:
    """Orders by last change; ``?status=``, ``?customer_id=``."""
    return _listed("orders")


@bp.get("/products")
@_listing("products", "Products by last change (incremental sync)", "sales")
@require_api_key
def list_products() -> Response:
    """Products by last change; ``?kind=``, ``?active=``."""
    return _listed("products")


@bp.get("/products/<int:product_id>")
@documented(
    summary="One product",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.ProductDoc, "product", tag=_CONTENT_ETAG),
    tags=("sales",),
)
@require_api_key
def show_product(product_id: int) -> Response:
    """One product. No API call changes a product (they come from the shops' events), so its
    ETag is a digest of the document."""
    found = _read(lambda s: queries.get_product(s, product_id=product_id), product_id)
    return _content_tagged(found, "product", product_id)


@bp.get("/agreements")
@_listing("agreements", "Agreements by last change (incremental sync)", "sales")
@require_api_key
def list_agreements() -> Response:
    """Agreements by last change; ``?status=``, ``?customer_id=``."""
    return _listed("agreements")


@bp.get("/search")
@documented(
    summary="Contacts, customers and cases matching a query, best first",
    query=schemas.SearchQuery,
    responses={200: schemas.Page[schemas.SearchHit], 400: INVALID_QUERY},
    tags=("search",),
)
@require_api_key
def search_all() -> Response:
    """Contacts, customers and cases matching ``?q=``, best first."""
    query = request.args.get("q", "")
    return _paged(
        lambda s, cursor, limit: search.search(s, query=query, cursor=cursor, limit=limit)
    )


def _timeline(of: str, ident: int) -> Response:
    survivor = _read(lambda s: _survivor(s, of, ident), ident)
    if survivor is not None:
        response = Response(status=301)
        response.headers["Location"] = url_for(
            f"api.{of}_timeline", **_values(request.args, **{f"{of}_id": survivor})
        )
        return response
    return _paged(
        lambda s, cursor, limit: queries.timeline(
            s, of=of, ident=ident, cursor=cursor, limit=limit
        ),
        (of, ident),
    )


@bp.get("/contacts/<int:contact_id>")
@documented(
    summary="A contact",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.ContactDoc, "contact", merged=True),
    tags=("contacts",),
)
@require_api_key
def show_contact(contact_id: int) -> Response:
    return _single("contact", contact_id, lambda s: queries.get_contact(s, contact_id=contact_id))


@bp.get("/customers/<int:customer_id>")
@documented(
    summary="A customer with its contacts",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.CustomerDoc, "customer", merged=True),
    tags=("customers",),
)
@require_api_key
def show_customer(customer_id: int) -> Response:
    """A customer with its contacts, the primary one marked and first."""
    return _single(
        "customer", customer_id, lambda s: queries.get_customer(s, customer_id=customer_id)
    )


@bp.get("/customers/<int:customer_id>/timeline")
@documented(
    summary="A customer's Activities, newest first",
    query=schemas.PageQuery,
    responses={
        200: schemas.page_of(schemas.ActivityItem),
        400: INVALID_QUERY,
        404: "No such customer.",
    },
    tags=("customers",),
)
@require_api_key
def customer_timeline(customer_id: int) -> Response:
    """A customer's Activities, newest first, a page at a time."""
    return _timeline("customer", customer_id)


@bp.get("/contacts/<int:contact_id>/timeline")
@documented(
    summary="A contact's Activities, newest first",
    query=schemas.PageQuery,
    responses={
        200: schemas.page_of(schemas.ActivityItem),
        400: INVALID_QUERY,
        404: "No such contact.",
    },
    tags=("contacts",),
)
@require_api_key
def contact_timeline(contact_id: int) -> Response:
    """A contact's Activities, newest first, a page at a time."""
    return _timeline("contact", contact_id)


@bp.get("/cases/<int:case_id>")
@documented(
    summary="A support case with a page of its Activities",
    query=schemas.PageQuery,
    headers=(IF_NONE_MATCH,),
    responses={**_record(schemas.CaseDoc, "case"), 400: INVALID_QUERY},
    tags=("cases",),
)
@require_api_key
def show_case(case_id: int) -> Response:
    """A support case with a page of its Activities, oldest first (``?cursor=``, ``?limit=``)."""
    try:
        limit = parse_limit(request.args.get("limit"))
        cursor = request.args.get("cursor")
        return _single(
            "case",
            case_id,
            lambda s: queries.get_case(s, case_id=case_id, cursor=cursor, limit=limit),
        )
    except InvalidInput as exc:
        return _invalid(exc)


@bp.get("/activities/<int:activity_id>")
@documented(
    summary="One Activity, whole",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.ActivityShown, "activity", tag=_CONTENT_ETAG),
    tags=("activities",),
)
@require_api_key
def show_activity(activity_id: int) -> Response:
    """One Activity whole: the lists show an excerpt of its body and link here.

    No API call changes an Activity, so its ETag is a digest of the document (an erasure
    changes it).
    """
    found = _read(lambda s: queries.get_activity(s, activity_id=activity_id), activity_id)
    return _content_tagged(found, "activity", activity_id)


def _content_tagged(found: dict[str, Any] | None, what: str, ident: int) -> Response:
    """The record, or a 404 problem; with an ETag of its body (304 on ``If-None-Match``)."""
    response = _answer(found, what, ident)
    if found is None:
        return response
    return content_tagged(response, f"{what.replace(' ', '-')}-{ident}")


@bp.get("/opportunities/<int:opportunity_id>")
@documented(
    summary="An opportunity with its agreements",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.OpportunityDoc, "opportunity"),
    tags=("sales",),
)
@require_api_key
def show_opportunity(opportunity_id: int) -> Response:
    """An opportunity with its agreements."""
    return _single(
        "opportunity",
        opportunity_id,
        lambda s: queries.get_opportunity(s, opportunity_id=opportunity_id),
    )


@bp.get("/agreements/<int:agreement_id>")
@documented(
    summary="An agreement with the deals it covers",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.AgreementShown, "agreement"),
    tags=("sales",),
)
@require_api_key
def show_agreement(agreement_id: int) -> Response:
    """An agreement: its number, status, period and the deals it covers."""

    def fetch(session: Session) -> dict[str, Any] | None:
        agreement = session.get(Agreement, agreement_id)
        if agreement is None:
            return None
        deals = sorted(o.id for o in agreement.opportunities)
        return {**to_dict(agreement), "opportunity_ids": deals}

    return _single("agreement", agreement_id, fetch)


@bp.get("/opportunities/<int:opportunity_id>/timeline")
@documented(
    summary="An opportunity's Activities, newest first",
    query=schemas.PageQuery,
    responses={
        200: schemas.page_of(schemas.ActivityItem),
        400: INVALID_QUERY,
        404: "No such opportunity.",
    },
    tags=("sales",),
)
@require_api_key
def opportunity_timeline(opportunity_id: int) -> Response:
    """An opportunity's Activities, newest first, a page at a time."""
    return _timeline("opportunity", opportunity_id)


@bp.get("/orders/<int:order_id>")
@documented(
    summary="An order with its lines",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.OrderDoc, "order"),
    tags=("sales",),
)
@require_api_key
def show_order(order_id: int) -> Response:
    """An order with its lines and total."""
    return _single("order", order_id, lambda s: queries.get_order(s, order_id=order_id))


@bp.get("/followups")
@documented(
    summary="Follow-up tasks, the longest-due first",
    query=schemas.FollowUpQuery,
    responses={200: schemas.page_of(schemas.FollowUpDoc), 400: INVALID_QUERY},
    tags=("follow-ups",),
)
@require_api_key
def list_followups() -> Response:
    """Follow-up tasks, the longest-due first; ``?status=open|done|cancelled``."""
    status = request.args.get("status") or None
    return _paged(
        lambda s, cursor, limit: followups.list_followups(
            s, status=status, cursor=cursor, limit=limit
        )
    )


@bp.get("/followups/<int:followup_id>")
@documented(
    summary="One follow-up task",
    headers=(IF_NONE_MATCH,),
    responses=_record(schemas.FollowUpDoc, "follow-up task", tag=_CONTENT_ETAG),
    tags=("follow-ups",),
)
@require_api_key
def show_followup(followup_id: int) -> Response:
    """One follow-up task; its ETag is a digest of the document (closing it changes it)."""
    found = _read(lambda s: followups.get_followup(s, followup_id=followup_id), followup_id)
    return _content_tagged(found, "follow-up task", followup_id)


@bp.get("/suppressions")
@documented(
    summary="Suppressed addresses with their verified failures",
    query=schemas.SuppressionQuery,
    responses={200: schemas.page_of(schemas.SuppressionDoc), 400: INVALID_QUERY},
    tags=("suppressions",),
)
@require_api_key
def list_suppressions() -> Response:
    """Suppressed addresses with their verified failures, or only ``?email=``."""
    email = request.args.get("email")
    return _paged(
        lambda s, cursor, limit: suppression.list_suppressions(
            s, email=email, cursor=cursor, limit=limit
        )
    )


@bp.post("/followups/<int:task_id>/<any(complete, cancel):action>")
@documented(
    summary="Complete or cancel a follow-up task",
    responses={200: schemas.FollowUpDoc, 404: "No such follow-up task."},
    tags=("follow-ups",),
)
@require_api_key
@idempotent
def close_followup(task_id: int, action: str) -> Response:
    """Mark a follow-up task done (``complete``) or ``cancel`` it; repeating changes nothing."""
    if task_id > _MAX_ID:
        return problem(404, f"No follow-up {task_id}.", type_="not-found")
    status = FollowUpStatus.DONE if action == "complete" else FollowUpStatus.CANCELLED
    with crm_state().sessions.begin() as session:
        found = followups.close_followup(
            session, actor=current_actor(), task_id=task_id, status=status
        )
    return _answer(found, "follow-up", task_id)


@bp.post("/cases/<int:case_id>/reply")
@documented(
    summary="Send a reply from a support case",
    request=CaseReply,
    responses={
        201: ReplySent,
        400: "The body is not a reply (each bad field named).",
        404: "No such case.",
        422: "The case cannot be answered (no address to write to).",
        502: "The reply is on record, but the mail server did not take it.",
    },
    tags=("cases",),
)
@require_api_key
@idempotent
def reply_to_case(case_id: int) -> Response:
    """Send a reply from a case: ``{"body": ..., "html": ...}``; 201 with its delivery."""
    try:
        reply = parse(CaseReply, request.get_json(silent=True))
    except InvalidInput as exc:
        return _invalid(exc)
    crm = crm_state()
    settings = crm.settings
    backend = backend_from_url(
        settings.resolved_mail_url(), rate_per_second=settings.mail_rate_per_second
    )
    try:
        outcome = send_case_reply(
            crm.sessions,
            backend,
            actor=current_actor(),
            case_id=case_id,
            body=reply.body,
            html=reply.html,
            sender=settings.mail_from,
            case_tokens=CaseTokens.from_secret(settings.resolved_secret_key()),
        )
    except CaseNotFound:
        return problem(404, f"No case {case_id}.", type_="not-found")
    except InvalidInput as exc:
        return problem(422, str(exc), type_="invalid-reply", errors=exc.error_dicts())
    status = 201 if outcome.delivery == "sent" else 502
    return _reply_answer(outcome, status)


def _reply_answer(outcome: ReplyOutcome, status: int) -> Response:
    doc: dict[str, Any] = {
        "activity_id": outcome.activity_id,
        "message_id": outcome.message_id,
        "delivery": outcome.delivery,
    }
    if status != 201:
        return problem(
            status,
            f"The reply is on record but its delivery {outcome.delivery}: {outcome.error}",
            type_="reply-not-delivered",
            **doc,
        )
    response = jsonify(doc)
    response.status_code = status
    return response
