"""Deals and agreements written by people: create a deal, change its stage, amount or owner,
terminate an agreement.

A stage change goes through ``crm_core.sales.deals.apply_stage``, the webhook path's own: it
records the change on the timeline, and a deal moved to ``won`` signs exactly one agreement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_core.customers.models import Contact, Customer
from crm_core.editing import records
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.editing.schemas import (
    REQUIRED_ON_OPPORTUNITY,
    AgreementTermination,
    OpportunityCreate,
    OpportunityFields,
    parse,
    parse_patch,
)
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.sales.deals import apply_stage
from crm_core.sales.models import Agreement, AgreementStatus, Opportunity, OpportunityStage

AUDITED = (
    "customer_id",
    "contact_id",
    "name",
    "description",
    "stage",
    "amount",
    "currency",
    "expected_close_date",
    "closed_at",
    "owner",
)
AGREEMENT_AUDITED = ("status", "terminates_on")


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise InvalidInput([FieldError(("customer_id",), f"no customer {customer_id}")])
    if customer.merged_into is not None:
        raise InvalidInput(
            [
                FieldError(
                    ("customer_id",),
                    f"customer {customer_id} was merged into customer {customer.merged_into}",
                )
            ]
        )
    return customer


def _check_contact(session: Session, contact_id: int | None, customer_id: int) -> None:
    if contact_id is None:
        return
    contact = session.get(Contact, contact_id)
    if contact is None or contact.merged_into is not None or contact.customer_id != customer_id:
        raise InvalidInput(
            [FieldError(("contact_id",), f"must be a contact of customer {customer_id}")]
        )


def _set_fields(opportunity: Opportunity, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name != "stage":
            setattr(opportunity, name, value)


def create_opportunity(session: Session, *, actor: Actor, document: Any) -> Opportunity:
    """Open a deal for a customer, at ``stage`` (default ``new``)."""
    actor.require(Permission.WRITE)
    data = parse(OpportunityCreate, document)
    customer = _customer(session, data.customer_id)
    _check_contact(session, data.contact_id, customer.id)
    opportunity = Opportunity(customer=customer, name=data.name, stage=OpportunityStage.NEW)
    _set_fields(opportunity, data.model_dump(exclude_unset=True, exclude={"customer_id"}))
    session.add(opportunity)
    session.flush()
    stage = data.stage or OpportunityStage.NEW
    apply_stage(session, opportunity, stage, is_new=True, event_id=None)
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="opportunity",
        entity_id=opportunity.id,
        action="create",
        changes=audit.created(records.snapshot(opportunity, AUDITED)),
    )
    return opportunity


def update_opportunity(
    session: Session, *, actor: Actor, opportunity_id: int, document: Any
) -> Opportunity:
    """Apply a JSON merge patch to a deal; a new ``stage`` is recorded (``won`` signs)."""
    actor.require(Permission.WRITE)
    patch, sent = parse_patch(OpportunityFields, document, not_null=REQUIRED_ON_OPPORTUNITY)
    opportunity = session.get(Opportunity, opportunity_id, with_for_update=True)
    if opportunity is None:
        raise RecordNotFound("opportunity", opportunity_id)
    if "contact_id" in sent:
        _check_contact(session, patch.contact_id, opportunity.customer_id)
    before = records.snapshot(opportunity, AUDITED)
    _set_fields(opportunity, {name: getattr(patch, name) for name in sent})
    if patch.stage is not None:
        apply_stage(session, opportunity, patch.stage, is_new=False, event_id=None)
    session.flush()
    changes = audit.changes_between(before, records.snapshot(opportunity, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="opportunity",
            entity_id=opportunity.id,
            action="update",
            changes=changes,
        )
    return opportunity


def terminate_agreement(
    session: Session, *, actor: Actor, agreement_id: int, document: Any
) -> Agreement:
    """End an agreement on ``terminated_on`` (not before it took effect)."""
    actor.require(Permission.WRITE)
    data = parse(AgreementTermination, document)
    agreement = session.get(Agreement, agreement_id, with_for_update=True)
    if agreement is None:
        raise RecordNotFound("agreement", agreement_id)
    if agreement.status == AgreementStatus.TERMINATED:
        raise RecordConflict(
            f"agreement {agreement.number} was already terminated on {agreement.terminates_on}",
            field="terminated_on",
        )
    if data.terminated_on < agreement.effective_on:
        raise InvalidInput(
            [
                FieldError(
                    ("terminated_on",),
                    f"must not be before the agreement took effect ({agreement.effective_on})",
                )
            ]
        )
    before = records.snapshot(agreement, AGREEMENT_AUDITED)
    agreement.status = AgreementStatus.TERMINATED
    agreement.terminates_on = data.terminated_on
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="agreement",
        entity_id=agreement.id,
        action="update",
        changes=audit.changes_between(before, records.snapshot(agreement, AGREEMENT_AUDITED)),
    )
    return agreement
