"""The write API (customers, contacts, cases, activities): JSON in, problems naming each field.

Each route is a thin face of a ``crm_core.editing`` service, which checks the actor's
permission and writes the audit entry in the request's one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.base.serialize import to_dict
from crm_core.editing import activities, cases, contacts, customers
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.json_body import parse_json_body
from crm_core.people.permissions import PermissionDenied
from crm_core.readapi import queries
from webhooks.auth import current_actor, forbidden, require_api_key
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("api_writes", __name__, url_prefix="/api")
_MAX_ID = 2**63 - 1


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


def _write(
    work: Callable[[Session], Any], *, status: int = 200, ids: tuple[int, ...] = ()
) -> Response:
    """Run ``work`` in one transaction; map the services' errors to problem documents."""
    if any(ident > _MAX_ID for ident in ids):
        return problem(404, "No such record.", type_="not-found")
    try:
        with crm_state().sessions.begin() as session:
            result = work(session)
    except InvalidInput as exc:
        return problem(
            422, str(exc), title="Invalid input", type_="invalid", errors=exc.error_dicts()
        )
    except RecordNotFound as exc:
        return problem(404, f"No {exc.entity} {exc.entity_id}.", type_="not-found")
    except RecordConflict as exc:
        errors = exc.error_dicts()
        return problem(
            409,
            str(exc),
            title="Conflict",
            type_="conflict",
            **({"errors": errors} if errors else {}),
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
    response = jsonify(result)
    response.status_code = status
    return response


def _region() -> str:
    region: str = crm_state().settings.default_region
    return region


def _customer_doc(session: Session, customer_id: int) -> dict[str, Any] | None:
    return queries.get_customer(session, customer_id=customer_id)


@bp.post("/customers")
@require_api_key
def create_customer() -> Response:
    """Create a customer with its ``primary_contact``; 201 with the customer."""

    def work(session: Session) -> dict[str, Any] | None:
        created = customers.create_customer(
            session, actor=current_actor(), document=_document(), default_region=_region()
        )
        return _customer_doc(session, created.id)

    response = _write(work, status=201)
    if response.status_code == 201:
        response.headers["Location"] = url_for("api.show_customer", customer_id=response.json["id"])  # type: ignore[index]
    return response


@bp.patch("/customers/<int:customer_id>")
@require_api_key
def update_customer(customer_id: int) -> Response:
    """Change a customer with a JSON merge patch."""

    def work(session: Session) -> dict[str, Any] | None:
        customers.update_customer(
            session, actor=current_actor(), customer_id=customer_id, document=_document()
        )
        return _customer_doc(session, customer_id)

    return _write(work, ids=(customer_id,))


@bp.delete("/customers/<int:customer_id>")
@require_api_key
def delete_customer(customer_id: int) -> Response:
    """Delete a customer (not one with orders or agreements); 204."""
    return _write(
        lambda s: customers.delete_customer(s, actor=current_actor(), customer_id=customer_id),
        ids=(customer_id,),
    )


@bp.post("/customers/<int:customer_id>/contacts")
@require_api_key
def create_contact(customer_id: int) -> Response:
    """Add a contact to a customer; 201 with the contact."""

    def work(session: Session) -> dict[str, Any] | None:
        contact = contacts.create_contact(
            session,
            actor=current_actor(),
            customer_id=customer_id,
            document=_document(),
            default_region=_region(),
        )
        return queries.get_contact(session, contact_id=contact.id)

    response = _write(work, status=201, ids=(customer_id,))
    if response.status_code == 201:
        response.headers["Location"] = url_for("api.show_contact", contact_id=response.json["id"])  # type: ignore[index]
    return response


@bp.patch("/contacts/<int:contact_id>")
@require_api_key
def update_contact(contact_id: int) -> Response:
    """Change a contact with a JSON merge patch."""

    def work(session: Session) -> dict[str, Any] | None:
        contacts.update_contact(
            session,
            actor=current_actor(),
            contact_id=contact_id,
            document=_document(),
            default_region=_region(),
        )
        return queries.get_contact(session, contact_id=contact_id)

    return _write(work, ids=(contact_id,))


@bp.post("/contacts/<int:contact_id>/primary")
@require_api_key
def make_primary(contact_id: int) -> Response:
    """Make a contact its customer's primary contact; the customer answers."""

    def work(session: Session) -> dict[str, Any] | None:
        contact = contacts.make_primary(session, actor=current_actor(), contact_id=contact_id)
        return _customer_doc(session, contact.customer_id)

    return _write(work, ids=(contact_id,))


@bp.delete("/contacts/<int:contact_id>")
@require_api_key
def delete_contact(contact_id: int) -> Response:
    """Delete a contact that is not its customer's primary contact; 204."""
    return _write(
        lambda s: contacts.delete_contact(s, actor=current_actor(), contact_id=contact_id),
        ids=(contact_id,),
    )


@bp.patch("/cases/<int:case_id>")
@require_api_key
def update_case(case_id: int) -> Response:
    """Change a case's ``status``, ``priority`` or ``assignee``; the case answers."""
    sla_hours = crm_state().settings.sla_first_response_hours

    def work(session: Session) -> dict[str, Any] | None:
        case = cases.update_case(
            session,
            actor=current_actor(),
            case_id=case_id,
            document=_document(),
            sla_hours=sla_hours,
        )
        return to_dict(case)

    return _write(work, ids=(case_id,))


@bp.post("/activities")
@require_api_key
def log_activity() -> Response:
    """Log a ``call``, ``meeting`` or ``note`` on linked entities; 201 with the activity."""

    def work(session: Session) -> dict[str, Any] | None:
        activity = activities.log_activity(session, actor=current_actor(), document=_document())
        return to_dict(activity)  # whole, as GET /api/activities/<id>

    return _write(work, status=201)
