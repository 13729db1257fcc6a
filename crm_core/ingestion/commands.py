"""Payloads become the domains' commands: ingestion's side of every domain service it calls.

The domains never see a payload schema (``crm_core.payloads``); each takes its own command
types, built here from what a sender posted (or what a provider's mapping restated).
"""

from __future__ import annotations

from crm_core.customers.consent import ConsentStatement, ConsentStatus
from crm_core.leads.errors import InvalidField, invalid_lead
from crm_core.leads.normalize import (
    LeadDeal,
    NormalizedLead,
    clean_text,
    join_name,
    normalize_country,
    normalize_email,
    normalize_phone,
    split_name,
)
from crm_core.payloads.schemas import (
    DealPayload,
    LeadConsent,
    LeadPayload,
    OrderPayload,
    TicketPayload,
)
from crm_core.payloads.schemas import LeadDeal as LeadDealPayload
from crm_core.sales.commands import DealCommand, OrderCommand, OrderLineCommand
from crm_core.support.commands import TicketCommand, TicketCommentCommand


def order_command(order: OrderPayload) -> OrderCommand:
    """What ``sales.services.record_order`` takes, from an orders payload."""
    return OrderCommand(
        order_number=order.order_number,
        currency=order.currency,
        lines=tuple(
            OrderLineCommand(
                sku=line.sku, quantity=line.quantity, unit_price=line.unit_price, name=line.name
            )
            for line in order.lines
        ),
        total=order.total,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        tax_total=order.tax_total,
        shipping_total=order.shipping_total,
        status=order.status,
        ordered_at=order.ordered_at,
        updated_at=order.updated_at,
    )


def deal_command(deal: DealPayload) -> DealCommand:
    """What ``sales.deals.record_deal`` takes, from a deals payload."""
    return DealCommand(
        external_id=deal.external_id,
        name=deal.name,
        stage=deal.stage,
        amount=deal.amount,
        currency=deal.currency,
        close_date=deal.close_date,
    )


def ticket_command(ticket: TicketPayload) -> TicketCommand:
    """What ``support.services.upsert_case_from_ticket`` takes, from a tickets payload."""
    return TicketCommand(
        external_id=ticket.external_id,
        subject=ticket.subject,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        comments=tuple(
            TicketCommentCommand(
                body=comment.body,
                author_email=comment.author_email,
                created_at=comment.created_at,
                external_id=comment.external_id,
            )
            for comment in ticket.comments
        ),
        opened_at=ticket.opened_at,
    )


def _lead_deal(deal: LeadDealPayload | None) -> LeadDeal | None:
    if deal is None:
        return None
    return LeadDeal(
        name=deal.name, amount=deal.amount, currency=deal.currency, close_date=deal.close_date
    )


def _names(payload: LeadPayload) -> tuple[str | None, str | None, str | None]:
    first, last = clean_text(payload.first_name), clean_text(payload.last_name)
    if first is None and last is None:
        first, last = split_name(payload.full_name)
    return first, last, clean_text(payload.full_name) or join_name(first, last)


def normalize_lead(payload: LeadPayload, *, default_region: str | None) -> NormalizedLead:
    """Normalize every field of ``payload``; ``InvalidInput`` lists each bad field."""
    problems: list[InvalidField] = []
    email = None
    if payload.email:
        try:
            email = normalize_email(payload.email)
        except InvalidField as problem:
            problems.append(problem)
    if problems:
        raise invalid_lead(problems)
    country = normalize_country(payload.country)
    phone = None
    if payload.phone and payload.phone.strip():
        phone = normalize_phone(payload.phone, region=country or default_region)
    first, last, full = _names(payload)
    return NormalizedLead(
        email=email,
        email_display=payload.email.strip() if payload.email else None,
        phone=phone,
        first_name=first,
        last_name=last,
        full_name=full,
        company=clean_text(payload.company),
        job_title=clean_text(payload.job_title),
        country=country,
        country_raw=clean_text(payload.country),
        external_id=clean_text(payload.external_id),
        message=payload.message.strip() if payload.message else None,
        utm_source=clean_text(payload.utm_source),
        utm_medium=clean_text(payload.utm_medium),
        utm_campaign=clean_text(payload.utm_campaign),
        deal=_lead_deal(payload.deal),
        attributes=dict(payload.attributes or {}),
        consent=_consent(payload.consent),
        extra_fields=dict(payload.extra_fields or {}),
    )


def _consent(consent: LeadConsent | None) -> ConsentStatement | None:
    if consent is None:
        return None
    method = clean_text(consent.method)
    return ConsentStatement(ConsentStatus(consent.status.value), consent.at, method)
