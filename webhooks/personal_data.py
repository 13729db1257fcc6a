"""A person's data over HTTP (admin): ``GET /api/contacts/<id>/export`` (a subject access
request) and the erasure behind ``DELETE /api/contacts/<id>?erase=true``.

Both are faces of ``crm_core.privacy``, which checks the ``personal_data`` permission (the
``admin`` scope) and, for an erasure, records it in the audit log without the data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from crm_core.people.permissions import PermissionDenied
from crm_core.privacy.erasure import erase_person, reclaim_sqlite_space
from crm_core.privacy.export import export_person
from crm_core.privacy.subjects import SubjectNotFound
from webhooks.attachments import release_attachments
from webhooks.auth import current_actor, forbidden, require_api_key
from webhooks.openapi.registry import documented
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("personal_data", __name__, url_prefix="/api")
_MAX_ID = 2**63 - 1


class EraseQuery(BaseModel):
    """The query of ``DELETE /api/contacts/<id>``."""

    erase: bool = Field(
        default=False,
        description=(
            "Erase the person everywhere (needs the ``admin`` scope; cannot be undone)"
            " instead of deleting a secondary contact."
        ),
    )


class ErasureDoc(BaseModel):
    """What an erasure did: rows changed per step, or when it had been done before."""

    contact_id: int
    erased_at: dt.datetime
    already_erased: bool = Field(description="The contact had been erased before; nothing changed.")
    steps: dict[str, int] = Field(description="step -> rows it changed")


class PersonExport(BaseModel):
    """Everything held about a person (docs/operations/personal-data.md lists the parts)."""

    model_config = {"extra": "allow"}

    format: int
    exported_at: dt.datetime
    contact_id: int
    erased_at: dt.datetime | None
    contacts: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    support_cases: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    inbox_events: list[dict[str, Any]]
    audit_entries: list[dict[str, Any]]


def erase_contact(contact_id: int) -> Response:
    """Erase the person of contact ``contact_id`` (``DELETE …?erase=true``)."""
    if contact_id > _MAX_ID:
        return problem(404, "No such record.", type_="not-found")
    secret_key = crm_state().settings.resolved_secret_key()
    try:
        with crm_state().sessions.begin() as session:
            report = erase_person(
                session, actor=current_actor(), secret_key=secret_key, contact_id=contact_id
            )
            erased_at = report.already or _erased_at(session, contact_id)
    except SubjectNotFound:
        return problem(404, f"No contact {contact_id}.", type_="not-found")
    except PermissionDenied as exc:
        return forbidden(exc)
    if report.already is None:
        # Committed: the files no row names any more go now (a crash or a failing store
        # leaves them to ``crm attachments sweep``).
        release_attachments(session)
        reclaim_sqlite_space(crm_state().engine)
    return jsonify(
        {
            "contact_id": report.contact_id,
            "erased_at": erased_at.isoformat(),
            "already_erased": report.already is not None,
            "steps": report.steps,
        }
    )


def _erased_at(session: Session, contact_id: int) -> dt.datetime:
    from crm_core.customers.models import Contact
    from crm_core.customers.services import surviving

    contact = surviving(session, session.get_one(Contact, contact_id))
    assert contact.erased_at is not None
    return contact.erased_at


@bp.get("/contacts/<int:contact_id>/export")
@documented(
    summary="Everything held about a person, as one document (a subject access request)",
    responses={200: PersonExport, 404: "No such contact."},
    tags=("contacts",),
)
@require_api_key
def export_contact(contact_id: int) -> Response:
    """The export of the person of contact ``contact_id`` (a merged one's survivor)."""
    if contact_id > _MAX_ID:
        return problem(404, "No such record.", type_="not-found")
    try:
        with crm_state().sessions() as session:
            document = export_person(session, actor=current_actor(), contact_id=contact_id)
    except SubjectNotFound:
        return problem(404, f"No contact {contact_id}.", type_="not-found")
    except PermissionDenied as exc:
        return forbidden(exc)
    response = jsonify(document)
    response.headers["Content-Disposition"] = f'attachment; filename="contact-{contact_id}.json"'
    return response
