"""Capturing a lead: one contact per person, one company per domain, a timeline entry.

Services take a ``Session`` and never commit; the task that calls them owns
the transaction. One lead is captured as a batch of one (``crm_core.leads.batch``),
so there is one set of rules for both.
"""

from __future__ import annotations

from collections.abc import Container

from pydantic import ValidationError
from sqlalchemy.orm import Session

from crm_core.config import Settings, get_settings
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.schemas import LeadPayload
from crm_core.leads.batch import LeadItem, LeadResult, capture_or_conflict
from crm_core.leads.contacts import retrying_on_conflict
from crm_core.leads.normalize import NormalizedLead, free_mail_domains, normalize_lead


def capture_lead(
    session: Session,
    *,
    source_id: int | None,
    event_id: int | None,
    lead: NormalizedLead,
    free_domains: Container[str] | None = None,
) -> LeadResult:
    """Turn a normalized lead into a contact, its customer, an opportunity for its
    deal, campaign attribution for its UTM code, and a ``lead_captured`` Activity.

    A batch of one (``capture_leads``) in a savepoint, retried after a conflict
    with a concurrent writer. Capturing the same event twice writes nothing the
    second time.
    """
    domains = free_domains if free_domains is not None else free_mail_domains()
    item = LeadItem(event_id, source_id, lead)
    return retrying_on_conflict(
        session, lambda: capture_or_conflict(session, [item], free_domains=domains)[0]
    )


def capture_lead_event(
    session: Session, *, event: InboxEvent, settings: Settings | None = None
) -> list[tuple[str, int]]:
    """Capture a stored ``leads`` event; the ``(entity_type, id)`` pairs it touched.

    A body that is not a lead, or a lead with bad fields, raises ``InvalidInput``
    listing each problem.
    """
    config = settings or get_settings()
    lead = lead_of_event(event, settings=config)
    free_domains = free_mail_domains(config.extra_freemail_domain_list())
    result = capture_lead(
        session, source_id=event.source_id, event_id=event.id, lead=lead, free_domains=free_domains
    )
    return result.entities


def lead_of_event(event: InboxEvent, *, settings: Settings) -> NormalizedLead:
    """The normalized lead of a stored ``leads`` event; ``InvalidInput`` listing each problem."""
    try:
        payload = LeadPayload.model_validate_json(event.body)
    except ValidationError as exc:
        raise InvalidInput(
            [FieldError(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
        ) from None
    return normalize_lead(payload, default_region=settings.default_region)
