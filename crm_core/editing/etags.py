"""Strong HTTP validators (ETags) for single records, and the ``If-Match`` check of writes.

An ETag is derived from the ``version`` counters of the rows a record's representation is
made of: a customer's shows its contacts, an opportunity its agreements, a case its
activities, an order its lines. It changes whenever one of them does, so a client that sends
it back in ``If-Match`` learns, with a 412, that someone else wrote in between.

A campaign's ETag describes the campaign itself (status, schedule, content, run, failure),
changed by people and by the dispatcher, and not its sends: a campaign being sent keeps its
ETag while its counts move, so ``If-Match`` on ``pause`` still works mid-send.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.campaigns.models import MarketingCampaign
from crm_core.customers.models import Contact, Customer
from crm_core.sales.models import Agreement, Opportunity, Order, OrderLine, agreement_opportunities
from crm_core.support.models import SupportCase


class PreconditionFailed(Exception):
    """``If-Match`` named another version than the record's current one."""

    def __init__(self, entity: str, entity_id: int, current: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.current = current
        super().__init__(
            f"{entity} {entity_id} has changed since it was read (its ETag is now {current});"
            " read it again and send the new ETag in If-Match"
        )


def _contacts(session: Session, customer_id: int) -> list[Any]:
    return list(
        session.execute(
            select(Contact.id, Contact.version)
            .where(Contact.customer_id == customer_id, Contact.merged_into.is_(None))
            .order_by(Contact.id)
        )
    )


def _activities(session: Session, case_id: int) -> list[Any]:
    return list(
        session.execute(
            select(func.count(Activity.id), func.max(Activity.id)).where(
                Activity.support_case_id == case_id
            )
        )
    )


def _agreements(session: Session, opportunity_id: int) -> list[Any]:
    return list(
        session.execute(
            select(Agreement.id, Agreement.version)
            .join(agreement_opportunities, agreement_opportunities.c.agreement_id == Agreement.id)
            .where(agreement_opportunities.c.opportunity_id == opportunity_id)
            .order_by(Agreement.id)
        )
    )


def _lines(session: Session, order_id: int) -> list[Any]:
    return list(
        session.execute(
            select(OrderLine.id, OrderLine.quantity, OrderLine.unit_price)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.id)
        )
    )


# entity -> (its model, what else its representation shows)
VERSIONED: dict[str, tuple[type[Any], Callable[[Session, int], Sequence[Any]] | None]] = {
    "customer": (Customer, _contacts),
    "contact": (Contact, None),
    "case": (SupportCase, _activities),
    "opportunity": (Opportunity, _agreements),
    "agreement": (Agreement, None),
    "order": (Order, _lines),
    "campaign": (MarketingCampaign, None),
}


def etag(session: Session, entity: str, entity_id: int) -> str | None:
    """The record's current ETag (quoted, as the header carries it); None when it is gone."""
    model, parts = VERSIONED[entity]
    version = session.scalar(select(model.version).where(model.id == entity_id))
    if version is None:
        return None
    if parts is None:
        return f'"{entity}-{entity_id}-v{version}"'
    digest = hashlib.sha256(repr([tuple(row) for row in parts(session, entity_id)]).encode())
    return f'"{entity}-{entity_id}-v{version}-{digest.hexdigest()[:12]}"'


def require_current(
    session: Session, entity: str, entity_id: int, if_match: Sequence[str] | None
) -> None:
    """Lock the record and check ``If-Match`` (its ETags, or ``*``) against it.

    ``None`` (no header) checks nothing; a missing or merged record is left for the write to
    report.
    """
    if if_match is None:
        return
    model, _ = VERSIONED[entity]
    row = session.get(model, entity_id, with_for_update=True)
    if row is None or getattr(row, "merged_into", None) is not None:
        return  # the write reports a missing or merged record (404, 409 naming the survivor)
    current = etag(session, entity, entity_id)
    if current is None or "*" in if_match:
        return
    if current not in if_match:
        raise PreconditionFailed(entity, entity_id, current)
