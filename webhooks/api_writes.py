"""The write API (customers, contacts, cases, activities, deals, agreements, merges): JSON in,
problems naming each field.

Each route is a thin face of a ``crm_core.editing`` service, which checks the actor's
permission and writes the audit entry in the request's one transaction. A write to one record
answers with its new ``ETag`` and honours ``If-Match`` (412 when stale; no header, no check).
Every POST honours ``Idempotency-Key`` (``webhooks.idempotency``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import merges
from crm_core.base.serialize import to_dict
from crm_core.editing import activities, cases, contacts, customers, opportunities
from crm_core.editing import schemas as editing
from crm_core.editing.etags import PreconditionFailed, etag, require_current
from crm_core.editing.records import RecordConflict, RecordMerged, RecordNotFound
from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.json_body import parse_json_body
from crm_core.people.permissions import PermissionDenied
from crm_core.readapi import queries, schemas
from crm_core.support.sla import SlaPolicy
from webhooks.attachments import release_attachments
from webhooks.auth import current_actor, forbidden, require_api_key
from webhooks.idempotency import idempotent
from webhooks.openapi.registry import JSON, Body, Header, documented
from webhooks.personal_data import EraseQuery, ErasureDoc, erase_contact
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("api_writes", __name__, url_prefix="/api")
_MAX_ID = 2**63 - 1
MERGE_PATCH_TYPE = "application/merge-patch+json"
WRITE_PROBLEMS = {
    409: "The change conflicts with the record (a duplicate, kept records, or a merged record: "
    "``Location`` names its survivor).",
    422: "The document is not valid (each bad field named).",
}
IF_MATCH = Header(
    "If-Match",
    "The record's ETag as you read it (or ``*``): a 412 when it has changed since. "
    "Without it the change is not checked.",
)
STALE = {412: "The record changed since the ETag in ``If-Match``; ``ETag`` is its current one."}
_ETAG = {"ETag": "The record's new version."}


def _tagged(model: Any, **headers: str) -> Body:
    """An answer of ``model`` with the record's ETag."""
    return Body(model, headers={**_ETAG, **headers})


def MERGE_PATCH(model: type) -> Body:
    """A JSON merge patch body (RFC 7396) of ``model``'s fields."""
    return Body(model, media_types=(JSON, MERGE_PATCH_TYPE))


class _TooLarge(Exception):
    """The body is larger than a JSON document may be."""


def _document() -> Any:
    """The JSON body (``application/json`` or ``application/merge-patch+json``), or None.

    Parsed like a webhook's: bounded in size and depth, so no body ends in a 500.
    """
    settings = crm_state().settings
    if (request.content_length or 0) > settings.max_json_bytes:
        raise _TooLarge
    raw = request.get_data(cache=True)
    if len(raw) > settings.max_json_bytes:
        raise _TooLarge
    if not raw.strip():
        return None
    try:
        return parse_json_body(raw, max_depth=settings.max_json_depth)
    except ValueError as exc:
        raise InvalidInput([FieldError((), str(exc))]) from None


@dataclass(frozen=True)
class Tagged:
    """A record's document and its ETag, read in the write's transaction."""

    doc: dict[str, Any] | None
    etag: str | None


def tagged(session: Session, entity: str, entity_id: int, doc: dict[str, Any] | None) -> Tagged:
    return Tagged(doc, etag(session, entity, entity_id))


def if_match() -> list[str] | None:
    """The ETags of ``If-Match`` (or ``["*"]``); None without the header (nothing is checked)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def merged_problem(exc: RecordMerged, endpoint: str, arg: str) -> Response:
    """The 409 for a write to a merged record: it names, and links, the survivor."""
    values: dict[str, Any] = {arg: exc.into}
    location = url_for(endpoint, **values)
    return problem(
        409,
        f"{str(exc).capitalize()}; write to {exc.entity} {exc.into} instead.",
        title="Merged",
        type_="merged",
        headers={"Location": location},
        merged_into=exc.into,
    )


_SHOW = {
    "customer": ("api.show_customer", "customer_id"),
    "contact": ("api.show_contact", "contact_id"),
}


def _write(
    work: Callable[[Session], Any], *, status: int = 200, ids: tuple[int, ...] = ()
) -> Response:
    """Run ``work`` in one transaction; map the services' errors to problem documents."""
    if any(ident > _MAX_ID for ident in ids):
        return problem(404, "No such record.", type_="not-found")
    try:
        with crm_state().sessions.begin() as session:
            result = work(session)
        release_attachments(session)
    except InvalidInput as exc:
        return problem(
            422, str(exc), title="Invalid input", type_="invalid", errors=exc.error_dicts()
        )
    except RecordNotFound as exc:
        return problem(404, f"No {exc.entity} {exc.entity_id}.", type_="not-found")
    except RecordMerged as exc:
        return merged_problem(exc, *_SHOW[exc.entity])
    except PreconditionFailed as exc:
        return problem(
            412,
            str(exc),
            title="Precondition failed",
            type_="stale",
            headers={"ETag": exc.current},
            etag=exc.current,
        )
    except RecordConflict as exc:
        errors = exc.error_dicts()
        extensions: dict[str, Any] = {"errors": errors} if errors else {}
        return problem(
            409,
            str(exc),
            title="Conflict",
            type_="conflict",
            **extensions,
        )
    except PermissionDenied as exc:
        return forbidden(exc)
    except _TooLarge:
        limit = crm_state().settings.max_json_bytes
        return problem(413, f"A JSON body may have at most {limit} bytes.", type_="too-large")
    except IntegrityError:
        return problem(409, "Another change got there first; read and try again.", type_="conflict")
    if result is None:
        return Response(status=204)
    tag = None
    if isinstance(result, Tagged):
        tag = result.etag
        result = result.doc
    response = jsonify(result)
    response.status_code = status
    if tag:
        response.headers["ETag"] = tag
    return response


def _region() -> str:
    region: str = crm_state().settings.default_region
    return region


def _customer_doc(session: Session, customer_id: int) -> Tagged:
    return tagged(
        session, "customer", customer_id, queries.get_customer(session, customer_id=customer_id)
    )


def _contact_doc(session: Session, contact_id: int) -> Tagged:
    return tagged(
        session, "contact", contact_id, queries.get_contact(session, contact_id=contact_id)
    )


@bp.post("/customers")
@documented(
    summary="Create a customer with its primary contact",
    request=Body(editing.CustomerCreate),
    responses={
        201: _tagged(schemas.CustomerDoc, Location="The customer's URL."),
        **WRITE_PROBLEMS,
    },
    tags=("customers",),
)
@require_api_key
@idempotent
def create_customer() -> Response:
    """Create a customer with its ``primary_contact``; 201 with the customer."""

    def work(session: Session) -> Any:
        created = customers.create_customer(
            session, actor=current_actor(), document=_document(), default_region=_region()
        )
        return _customer_doc(session, created.id)

    response = _write(work, status=201)
    if response.status_code == 201:
        response.headers["Location"] = url_for("api.show_customer", customer_id=response.json["id"])  # type: ignore[index]
    return response


@bp.patch("/customers/<int:customer_id>")
@documented(
    headers=(IF_MATCH,),
    summary="Change a customer (JSON merge patch)",
    request=MERGE_PATCH(editing.CustomerFields),
    responses={
        **STALE,
        200: _tagged(schemas.CustomerDoc),
        **WRITE_PROBLEMS,
        404: "No such customer.",
    },
    tags=("customers",),
)
@require_api_key
def update_customer(customer_id: int) -> Response:
    """Change a customer with a JSON merge patch."""

    def work(session: Session) -> Any:
        require_current(session, "customer", customer_id, if_match())
        customers.update_customer(
            session, actor=current_actor(), customer_id=customer_id, document=_document()
        )
        return _customer_doc(session, customer_id)

    return _write(work, ids=(customer_id,))


@bp.delete("/customers/<int:customer_id>")
@documented(
    headers=(IF_MATCH,),
    summary="Delete a customer without orders or agreements",
    responses={**STALE, 204: None, **WRITE_PROBLEMS, 404: "No such customer."},
    tags=("customers",),
)
@require_api_key
def delete_customer(customer_id: int) -> Response:
    """Delete a customer (not one with orders or agreements); 204."""

    def work(session: Session) -> Any:
        require_current(session, "customer", customer_id, if_match())
        customers.delete_customer(session, actor=current_actor(), customer_id=customer_id)

    return _write(work, ids=(customer_id,))


@bp.post("/customers/<int:customer_id>/contacts")
@documented(
    summary="Add a contact to a customer",
    request=Body(editing.ContactCreate),
    responses={
        201: _tagged(schemas.ContactDoc, Location="The contact's URL."),
        **WRITE_PROBLEMS,
        404: "No such customer.",
    },
    tags=("contacts",),
)
@require_api_key
@idempotent
def create_contact(customer_id: int) -> Response:
    """Add a contact to a customer; 201 with the contact."""

    def work(session: Session) -> Any:
        contact = contacts.create_contact(
            session,
            actor=current_actor(),
            customer_id=customer_id,
            document=_document(),
            default_region=_region(),
        )
        return _contact_doc(session, contact.id)

    response = _write(work, status=201, ids=(customer_id,))
    if response.status_code == 201:
        response.headers["Location"] = url_for("api.show_contact", contact_id=response.json["id"])  # type: ignore[index]
    return response


@bp.patch("/contacts/<int:contact_id>")
@documented(
    headers=(IF_MATCH,),
    summary="Change a contact (JSON merge patch)",
    request=MERGE_PATCH(editing.ContactFields),
    responses={
        **STALE,
        200: _tagged(schemas.ContactDoc),
        **WRITE_PROBLEMS,
        404: "No such contact.",
    },
    tags=("contacts",),
)
@require_api_key
def update_contact(contact_id: int) -> Response:
    """Change a contact with a JSON merge patch."""

    def work(session: Session) -> Any:
        require_current(session, "contact", contact_id, if_match())
        contacts.update_contact(
            session,
            actor=current_actor(),
            contact_id=contact_id,
            document=_document(),
            default_region=_region(),
        )
        return _contact_doc(session, contact_id)

    return _write(work, ids=(contact_id,))


@bp.post("/contacts/<int:contact_id>/primary")
@documented(
    headers=(IF_MATCH,),
    summary="Make a contact its customer's primary contact",
    responses={
        **STALE,
        200: _tagged(schemas.CustomerDoc),
        **WRITE_PROBLEMS,
        404: "No such contact.",
    },
    tags=("contacts",),
)
@require_api_key
@idempotent
def make_primary(contact_id: int) -> Response:
    """Make a contact its customer's primary contact; the customer answers."""

    def work(session: Session) -> Any:
        require_current(session, "contact", contact_id, if_match())
        contact = contacts.make_primary(session, actor=current_actor(), contact_id=contact_id)
        return _customer_doc(session, contact.customer_id)

    return _write(work, ids=(contact_id,))


@bp.delete("/contacts/<int:contact_id>")
@documented(
    headers=(IF_MATCH,),
    summary=(
        "Delete a contact that is not its customer's primary one, or with ``erase=true``"
        " erase the person everywhere (admin)"
    ),
    query=EraseQuery,
    responses={
        **STALE,
        200: ErasureDoc,
        204: None,
        **WRITE_PROBLEMS,
        400: "``erase`` is not ``true`` or ``false``.",
        404: "No such contact.",
    },
    tags=("contacts",),
)
@require_api_key
def delete_contact(contact_id: int) -> Response:
    """Delete a contact that is not its customer's primary contact; 204. With ``erase=true``
    erase the person (``webhooks.personal_data``); 200 with what was done."""
    erase = request.args.get("erase", "false").strip().lower()
    if erase not in ("true", "false", "1", "0"):
        return problem(
            400,
            "erase must be true or false.",
            title="Invalid query",
            type_="invalid-query",
            errors=InvalidInput([FieldError(("erase",), "must be true or false")]).error_dicts(),
        )
    if erase in ("true", "1"):
        return erase_contact(contact_id)

    def work(session: Session) -> Any:
        require_current(session, "contact", contact_id, if_match())
        contacts.delete_contact(session, actor=current_actor(), contact_id=contact_id)

    return _write(work, ids=(contact_id,))


@bp.patch("/cases/<int:case_id>")
@documented(
    headers=(IF_MATCH,),
    summary="Change a case's status, priority or assignee",
    request=MERGE_PATCH(editing.CasePatch),
    responses={**STALE, 200: _tagged(schemas.CaseDoc), **WRITE_PROBLEMS, 404: "No such case."},
    tags=("cases",),
)
@require_api_key
def update_case(case_id: int) -> Response:
    """Change a case's ``status``, ``priority`` or ``assignee``; the case answers."""
    sla = SlaPolicy.from_settings(crm_state().settings)

    def work(session: Session) -> Any:
        require_current(session, "case", case_id, if_match())
        case = cases.update_case(
            session,
            actor=current_actor(),
            case_id=case_id,
            document=_document(),
            sla=sla,
        )
        return tagged(session, "case", case.id, queries.get_case(session, case_id=case.id))

    return _write(work, ids=(case_id,))


@bp.post("/activities")
@documented(
    summary="Log a call, a meeting or a note",
    request=Body(editing.ActivityCreate),
    responses={201: schemas.ActivityDoc, **WRITE_PROBLEMS, 404: "A linked record does not exist."},
    tags=("activities",),
)
@require_api_key
@idempotent
def log_activity() -> Response:
    """Log a ``call``, ``meeting`` or ``note`` on linked entities; 201 with the activity."""

    def work(session: Session) -> Any:
        activity = activities.log_activity(session, actor=current_actor(), document=_document())
        return to_dict(activity)  # whole, as GET /api/activities/<id>

    return _write(work, status=201)


@bp.post("/contacts/<int:contact_id>/merge")
@documented(
    summary="Merge a contact into another of the same customer",
    headers=(IF_MATCH,),
    request=Body(editing.MergeInto),
    responses={
        **STALE,
        200: _tagged(schemas.ContactMerged),
        **WRITE_PROBLEMS,
        404: "No such contact.",
    },
    tags=("contacts",),
)
@require_api_key
@idempotent
def merge_contact(contact_id: int) -> Response:
    """Merge a contact into ``{"into": id}`` of the same customer; the survivor answers."""

    def work(session: Session) -> Any:
        into, moved = merges.merge_contacts(
            session,
            actor=current_actor(),
            contact_id=contact_id,
            document=_document(),
            if_match=if_match(),
        )
        found = _contact_doc(session, into.id)
        return Tagged({**(found.doc or {}), "merged": contact_id, "moved": moved}, found.etag)

    return _write(work, ids=(contact_id,))


@bp.post("/customers/<int:customer_id>/merge")
@documented(
    summary="Merge a customer into another",
    headers=(IF_MATCH,),
    request=Body(editing.MergeInto),
    responses={
        **STALE,
        200: _tagged(schemas.CustomerMerged),
        **WRITE_PROBLEMS,
        404: "No such customer.",
    },
    tags=("customers",),
)
@require_api_key
@idempotent
def merge_customer(customer_id: int) -> Response:
    """Merge a customer into ``{"into": id}``; the survivor answers, with what moved."""

    def work(session: Session) -> Any:
        into, moved = merges.merge_customers(
            session,
            actor=current_actor(),
            customer_id=customer_id,
            document=_document(),
            if_match=if_match(),
        )
        found = _customer_doc(session, into.id)
        return Tagged({**(found.doc or {}), "merged": customer_id, "moved": moved}, found.etag)

    return _write(work, ids=(customer_id,))


def _opportunity_doc(session: Session, opportunity_id: int) -> Tagged:
    doc = queries.get_opportunity(session, opportunity_id=opportunity_id)
    return tagged(session, "opportunity", opportunity_id, doc)


@bp.post("/opportunities")
@documented(
    summary="Open a deal for a customer (and its agreement when won)",
    request=Body(editing.OpportunityCreate),
    responses={
        201: _tagged(schemas.OpportunityDoc, Location="The deal's URL."),
        **WRITE_PROBLEMS,
        404: "A linked record does not exist.",
    },
    tags=("sales",),
)
@require_api_key
@idempotent
def create_opportunity() -> Response:
    """Open a deal for a customer; 201 with the deal (and its agreement when ``won``)."""

    def work(session: Session) -> Any:
        created = opportunities.create_opportunity(
            session, actor=current_actor(), document=_document()
        )
        return _opportunity_doc(session, created.id)

    response = _write(work, status=201)
    if response.status_code == 201:
        response.headers["Location"] = url_for(
            "api.show_opportunity",
            opportunity_id=response.json["id"],  # type: ignore[index]
        )
    return response


@bp.patch("/opportunities/<int:opportunity_id>")
@documented(
    summary="Change a deal (JSON merge patch); won signs its agreement",
    headers=(IF_MATCH,),
    request=MERGE_PATCH(editing.OpportunityFields),
    responses={
        **STALE,
        200: _tagged(schemas.OpportunityDoc),
        **WRITE_PROBLEMS,
        404: "No such opportunity.",
    },
    tags=("sales",),
)
@require_api_key
def update_opportunity(opportunity_id: int) -> Response:
    """Change a deal's stage, amount, owner… with a JSON merge patch; ``won`` signs."""

    def work(session: Session) -> Any:
        require_current(session, "opportunity", opportunity_id, if_match())
        opportunities.update_opportunity(
            session, actor=current_actor(), opportunity_id=opportunity_id, document=_document()
        )
        return _opportunity_doc(session, opportunity_id)

    return _write(work, ids=(opportunity_id,))


@bp.post("/agreements/<int:agreement_id>/terminate")
@documented(
    summary="End an agreement",
    headers=(IF_MATCH,),
    request=Body(editing.AgreementTermination),
    responses={
        **STALE,
        200: _tagged(schemas.AgreementDoc),
        **WRITE_PROBLEMS,
        404: "No such agreement.",
    },
    tags=("sales",),
)
@require_api_key
@idempotent
def terminate_agreement(agreement_id: int) -> Response:
    """End an agreement: ``{"terminated_on": "YYYY-MM-DD"}``; the agreement answers."""

    def work(session: Session) -> Any:
        require_current(session, "agreement", agreement_id, if_match())
        agreement = opportunities.terminate_agreement(
            session, actor=current_actor(), agreement_id=agreement_id, document=_document()
        )
        return tagged(session, "agreement", agreement.id, to_dict(agreement))

    return _write(work, ids=(agreement_id,))
