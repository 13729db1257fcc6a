"""Deals: opportunities upserted by (source, external id); a won deal signs one agreement."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.activities.stale import is_stale, iso, latest, record_stale_update
from crm_core.base.entities import EntityType
from crm_core.base.touched import Touched
from crm_core.customers.models import Contact
from crm_core.db import insert_or_lock, utcnow
from crm_core.notifications.events import DealLost, DealSummary, DealWon
from crm_core.notifications.services import notify
from crm_core.sales.commands import DealCommand
from crm_core.sales.models import Agreement, AgreementStatus, Opportunity, OpportunityStage
from crm_core.sales.services import promote_customer


def record_deal(
    session: Session, *, source_id: int, event_id: int | None, buyer: Contact, deal: DealCommand
) -> Touched:
    """Upsert the opportunity; each stage change is an Activity; ``won`` signs an agreement.

    An update older than the stored one (by the sender's ``updated_at``) changes
    nothing and is recorded as a ``stale_update`` Activity.
    """
    opportunity, created = insert_or_lock(
        session,
        Opportunity,
        key={"source_id": source_id, "external_id": deal.external_id},
        values={
            "customer_id": buyer.customer_id,
            "contact_id": buyer.id,
            "name": deal.name,
            "stage": OpportunityStage.NEW,
            "source_updated_at": deal.updated_at,
        },
    )
    touched = Touched()
    touched.add(EntityType.OPPORTUNITY, opportunity.id)
    touched.add(EntityType.CUSTOMER, opportunity.customer_id)
    touched.add(EntityType.CONTACT, buyer.id)
    if not created and is_stale(opportunity.source_updated_at, deal.updated_at):
        touched.add(EntityType.ACTIVITY, _stale(session, opportunity, deal, event_id))
        return touched
    opportunity.source_updated_at = latest(opportunity.source_updated_at, deal.updated_at)
    _apply_fields(opportunity, deal)
    touched.extend(apply_stage(session, opportunity, deal.stage, is_new=created, event_id=event_id))
    return touched


def apply_stage(
    session: Session, opportunity: Opportunity, stage: str, *, is_new: bool, event_id: int | None
) -> Touched:
    """Move the deal to ``stage`` (an Activity records the change); a won deal signs its one
    agreement and makes its customer a customer. The webhook and the API both go through here."""
    touched = Touched()
    stage_activity = _change_stage(session, opportunity, stage, is_new=is_new, event_id=event_id)
    if stage_activity is not None:
        touched.add(EntityType.ACTIVITY, stage_activity.id)
    if opportunity.stage == OpportunityStage.WON:
        touched.extend(sign_agreement(session, opportunity=opportunity, event_id=event_id))
        promote_customer(opportunity.customer)
    return touched


def _stale(
    session: Session, opportunity: Opportunity, deal: DealCommand, event_id: int | None
) -> int:
    """Record that an older update of ``opportunity`` arrived late and changed nothing."""
    return record_stale_update(
        session,
        event_id=event_id,
        summary=f"Deal '{opportunity.name}': an update older than the stored one, ignored",
        details={
            "updated_at": iso(deal.updated_at),
            "stored_updated_at": iso(opportunity.source_updated_at),
            "stage": deal.stage,
        },
        customer_id=opportunity.customer_id,
        contact_id=opportunity.contact_id,
        link="opportunity_id",
        record_id=opportunity.id,
    )


def _apply_fields(opportunity: Opportunity, deal: DealCommand) -> None:
    opportunity.name = deal.name
    if deal.amount is not None:
        opportunity.amount = deal.amount
    if deal.currency:
        opportunity.currency = deal.currency.upper()
    if deal.close_date:
        opportunity.expected_close_date = deal.close_date


def _change_stage(
    session: Session, opportunity: Opportunity, stage: str, *, is_new: bool, event_id: int | None
) -> Activity | None:
    """Move to ``stage``, recording the change; a new deal records its first stage."""
    previous = opportunity.stage
    if previous == stage and not is_new:
        return None
    opportunity.stage = stage
    if not OpportunityStage(stage).is_open and opportunity.closed_at is None:
        opportunity.closed_at = utcnow()
    activity = Activity(
        type=ActivityType.DEAL_STAGE_CHANGED,
        direction=Direction.INTERNAL,
        summary=f"Deal '{opportunity.name}': {previous if not is_new else 'created'} → {stage}",
        details={"from": None if is_new else previous, "to": stage},
        customer_id=opportunity.customer_id,
        contact_id=opportunity.contact_id,
        opportunity_id=opportunity.id,
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    outcome = {OpportunityStage.WON: DealWon, OpportunityStage.LOST: DealLost}.get(
        OpportunityStage(stage)
    )
    if outcome is not None:
        notify(
            session,
            outcome(
                deal=DealSummary.model_validate(opportunity),
                previous_stage=None if is_new else previous,
            ),
        )
    return activity


def agreement_number(opportunity: Opportunity) -> str:
    """A stable number: the same opportunity always yields the same agreement number."""
    year = (opportunity.closed_at or utcnow()).year
    return f"AG-{year}-{opportunity.id:06d}"


def sign_agreement(session: Session, *, opportunity: Opportunity, event_id: int | None) -> Touched:
    """Create the one agreement of a won opportunity (a no-op when it exists)."""
    closed = opportunity.closed_at or utcnow()
    agreement, created = insert_or_lock(
        session,
        Agreement,
        key={"origin_opportunity_id": opportunity.id},
        values={
            "number": agreement_number(opportunity),
            "customer_id": opportunity.customer_id,
            "title": opportunity.name,
            "status": AgreementStatus.ACTIVE,
            "signed_at": closed,
            "effective_on": opportunity.expected_close_date or closed.date(),
            "amount": opportunity.amount,
            "currency": opportunity.currency,
        },
    )
    touched = Touched()
    touched.add(EntityType.AGREEMENT, agreement.id)
    if not created:
        return touched
    agreement.opportunities.append(opportunity)
    activity = Activity(
        type=ActivityType.AGREEMENT_SIGNED,
        direction=Direction.INTERNAL,
        summary=f"Agreement {agreement.number} signed for '{opportunity.name}'",
        details={"number": agreement.number},
        customer_id=opportunity.customer_id,
        contact_id=opportunity.contact_id,
        opportunity_id=opportunity.id,
        agreement_id=agreement.id,
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    touched.add(EntityType.ACTIVITY, activity.id)
    return touched
