"""The pipeline's handlers: one per event kind, each a few named steps.

Every handler runs inside the task's transaction, is idempotent (a replay
writes nothing new), and returns what it touched as ``(entity_type, id)``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.bounces.services import BouncePolicy
from crm_core.config import Settings, get_settings
from crm_core.customers.models import Contact
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import EntityType, EventKind, InboxEvent
from crm_core.ingestion.pipeline import event_payload, register_handler
from crm_core.ingestion.schemas import DealPayload, EmailPayload, OrderPayload, TicketPayload
from crm_core.leads.contacts import contact_for_address
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import free_mail_domains, normalize_email
from crm_core.leads.services import capture_lead_event
from crm_core.mail import (
    CaseTokens,
    MailLimits,
    MalformedEmail,
    ParsedEmail,
    parse_json,
    parse_rfc822,
)
from crm_core.sales.deals import record_deal
from crm_core.sales.services import record_order
from crm_core.support.auto_ack import AutoAckSettings
from crm_core.support.inbound_mail import MailContext, ThreadDecision, receive_email
from crm_core.support.services import upsert_case_from_ticket
from crm_core.touched import Touched

Entities = list[tuple[str, int]]


def resolve_contact(
    session: Session, email: str, name: str | None, *, field: str = "email"
) -> tuple[Contact, Touched]:
    """The contact of ``email`` (created with its customer when unknown), race-safe."""
    settings = get_settings()
    try:
        match = contact_for_address(
            session,
            email=email,
            name=name,
            free_domains=free_mail_domains(settings.extra_freemail_domain_list()),
        )
    except InvalidField as exc:
        raise InvalidInput([FieldError((field,), exc.message)]) from None
    touched = Touched()
    touched.add(EntityType.CUSTOMER, match.customer.id)
    touched.add(EntityType.CONTACT, match.contact.id)
    return match.contact, touched


def find_contact(session: Session, email: str) -> Contact | None:
    """The contact of ``email`` if we know it; nobody is created."""
    try:
        normalized = normalize_email(email)
    except InvalidField:
        return None
    return session.scalars(select(Contact).where(Contact.email_normalized == normalized)).first()


@register_handler(EventKind.LEADS)
def handle_lead(session: Session, event: InboxEvent) -> Entities:
    """A lead: normalize, match or create the contact and customer, attribute, record."""
    return capture_lead_event(session, event=event)


@register_handler(EventKind.ORDERS)
def handle_order(session: Session, event: InboxEvent) -> Entities:
    """An order: the buyer's contact, products by SKU, the order and its lines."""
    order = event_payload(event)
    assert isinstance(order, OrderPayload)
    buyer, touched = resolve_contact(session, order.email, None)
    touched.extend(
        record_order(
            session, source_id=event.source_id, event_id=event.id, buyer=buyer, order=order
        )
    )
    return touched.items()


@register_handler(EventKind.DEALS)
def handle_deal(session: Session, event: InboxEvent) -> Entities:
    """A deal update: the buyer's contact, the opportunity, its stage, its agreement."""
    deal = event_payload(event)
    assert isinstance(deal, DealPayload)
    buyer, touched = resolve_contact(session, deal.email, None)
    touched.extend(
        record_deal(session, source_id=event.source_id, event_id=event.id, buyer=buyer, deal=deal)
    )
    return touched.items()


@register_handler(EventKind.TICKETS)
def handle_ticket(session: Session, event: InboxEvent) -> Entities:
    """A help-desk ticket: the requester's contact, the case, its status and comments."""
    ticket = event_payload(event)
    assert isinstance(ticket, TicketPayload)
    requester, touched = resolve_contact(
        session, ticket.requester.email, ticket.requester.name, field="requester.email"
    )
    touched.extend(
        upsert_case_from_ticket(
            session,
            source_id=event.source_id,
            event_id=event.id,
            requester=requester,
            ticket=ticket,
            sla_hours=get_settings().sla_first_response_hours,
        )
    )
    return touched.items()


def parse_email_event(event: InboxEvent) -> ParsedEmail:
    """The e-mail of an event, from raw RFC 5322 bytes or from the JSON form."""
    limits = MailLimits.from_settings(get_settings())
    if event.content_type.split(";")[0].strip().lower() == "message/rfc822":
        try:
            return parse_rfc822(event.body, limits=limits)
        except MalformedEmail as exc:
            raise InvalidInput([FieldError((), f"not an e-mail: {exc}")]) from None
    payload = event_payload(event)
    assert isinstance(payload, EmailPayload)
    return parse_json(payload, limits=limits)


def auto_ack_settings(settings: Settings) -> AutoAckSettings:
    """The acknowledgement rules as configured."""
    return AutoAckSettings(
        enabled=settings.auto_ack_enabled,
        subject=settings.auto_ack_subject,
        text=settings.auto_ack_text,
        sender=settings.mail_from,
        own_addresses=frozenset(settings.support_addresses),
        per_sender_per_day=settings.auto_ack_per_sender_per_day,
    )


@register_handler(EventKind.EMAILS)
def handle_email(session: Session, event: InboxEvent) -> Entities:
    """An inbound e-mail: parse, thread, file on a case or a contact, record."""
    parsed = parse_email_event(event)
    settings = get_settings()
    context = MailContext(
        source_id=event.source_id,
        event_id=event.id,
        support_addresses=settings.support_addresses,
        sla_hours=settings.sla_first_response_hours,
        resolve_contact=lambda s, email, name: resolve_contact(s, email, name, field="from"),
        find_contact=find_contact,
        auto_ack=auto_ack_settings(settings),
        case_tokens=CaseTokens.from_secret(settings.resolved_secret_key()),
        bounces=BouncePolicy(
            transient_limit=settings.bounce_transient_limit,
            transient_window=dt.timedelta(days=settings.bounce_transient_days),
        ),
    )
    outcome = receive_email(session, parsed=parsed, context=context)
    # A replay finds its own message already filed: the first decision stands.
    if not (outcome.decision == ThreadDecision.DUPLICATE and event.outcome):
        event.outcome = {"decision": outcome.decision.value, "reason": outcome.reason}
    return outcome.touched.items()
