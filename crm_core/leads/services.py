"""Capturing a lead: one contact per person, one company per domain, a timeline entry.

Services take a ``Session`` and never commit; the task that calls them owns
the transaction. One lead is captured as a batch of one (``crm_core.leads.batch``),
so there is one set of rules for both.
"""

from __future__ import annotations

from collections.abc import Container

from sqlalchemy.orm import Session

from crm_core.leads.batch import LeadItem, LeadResult, capture_or_conflict
from crm_core.leads.contacts import retrying_on_conflict
from crm_core.leads.normalize import NormalizedLead, free_mail_domains


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
