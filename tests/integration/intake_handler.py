"""A leads handler for end-to-end runs: one product row per event, so doubles would show.

Loaded into a real worker with ``CRM_HANDLER_MODULES='["tests.integration.intake_handler"]'``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.pipeline import register_handler
from crm_core.models import Product


@register_handler("leads", replace=True)
def create_product_per_lead(session: Session, event: InboxEvent) -> list[tuple[str, int]]:
    """Record the event as a product whose SKU is unique per event."""
    product = Product(sku=f"EVENT-{event.id}", name=event.webhook_id, currency="EUR")
    session.add(product)
    session.flush()
    return [("product", product.id)]
