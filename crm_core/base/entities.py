"""What a service can touch, and a sender's id for it: ``EntityType`` and ``ExternalRef``."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, BigId, check_one_of, intpk, str40, str255, utcnow


class EntityType(enum.StrEnum):
    CUSTOMER = "customer"
    CONTACT = "contact"
    OPPORTUNITY = "opportunity"
    AGREEMENT = "agreement"
    ORDER = "order"
    PRODUCT = "product"
    ACTIVITY = "activity"
    SUPPORT_CASE = "support_case"
    CAMPAIGN = "campaign"


class ExternalRef(Base):
    """A sender's id for one of our entities: (source, type, external id) → entity."""

    __tablename__ = "external_refs"
    __table_args__ = (
        check_one_of("entity_type", EntityType),
        UniqueConstraint("source_id", "entity_type", "external_id"),
        Index("ix_external_refs_entity_type_entity_id", "entity_type", "entity_id"),
    )

    id: Mapped[intpk]
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), info={"erd_label": "names"}
    )
    entity_type: Mapped[str40]
    external_id: Mapped[str255]
    entity_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
