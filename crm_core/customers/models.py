"""Customer 1:N Contact, with exactly one primary contact per customer."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base, Timestamped, Versioned, check_one_of, intpk, str40, str80, str255

if TYPE_CHECKING:
    from crm_core.sales.models import Opportunity


class ConsentStatus(enum.StrEnum):
    """A contact's marketing consent as last stated (``crm_core.customers.consent``)."""

    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"


class CustomerKind(enum.StrEnum):
    PERSON = "person"
    COMPANY = "company"


class LifecycleStage(enum.StrEnum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    CHURNED = "churned"


class Customer(Versioned, Timestamped, Base):
    """A person or a company that buys, or may buy."""

    __tablename__ = "customers"
    __table_args__ = (
        check_one_of("kind", CustomerKind),
        check_one_of("lifecycle_stage", LifecycleStage),
        Index("ix_customers_name_key", "name_key"),
        Index("ix_customers_lifecycle_stage", "lifecycle_stage"),
        # The list API's keyset order (incremental sync by ``updated_since``).
        Index("ix_customers_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[intpk]
    kind: Mapped[str40] = mapped_column(default=CustomerKind.PERSON)
    name: Mapped[str255]
    # Lower-cased, whitespace-folded name: how a company is matched by name.
    name_key: Mapped[str255]
    # A company's e-mail domain, lower-case; free-mail domains never land here.
    domain: Mapped[str255 | None] = mapped_column(unique=True)
    lifecycle_stage: Mapped[str40] = mapped_column(default=LifecycleStage.LEAD)
    email: Mapped[str255 | None]
    phone: Mapped[str40 | None]
    website: Mapped[str255 | None]
    industry: Mapped[str80 | None]
    address_line1: Mapped[str255 | None]
    address_line2: Mapped[str255 | None]
    city: Mapped[str80 | None]
    region: Mapped[str80 | None]
    postal_code: Mapped[str40 | None]
    country: Mapped[str | None] = mapped_column(String(2))
    owner: Mapped[str255 | None]
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Custom fields an integrator or a team keeps on the customer (string keys, JSON values).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set when this customer was merged into another: the row stays as a tombstone that
    # redirects to the survivor (and goes when the survivor is deleted).
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # Set when the person this customer is was erased: the row stays, emptied of them, so
    # the orders and agreements that point at it keep their meaning (crm_core.privacy).
    erased_at: Mapped[dt.datetime | None]

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="Contact.customer_id",
    )
    # By name: sales sits above customers and imports them; customers never import sales.
    opportunities: Mapped[list[Opportunity]] = relationship(
        "Opportunity", back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class Contact(Versioned, Timestamped, Base):
    """An individual at a customer: the person we write to and hear from."""

    __tablename__ = "contacts"
    __table_args__ = (
        # At most one primary contact per customer; the customer service makes it exactly one.
        Index(
            "uq_contacts_primary_per_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("is_primary"),
            sqlite_where=text("is_primary"),
        ),
        Index("ix_contacts_phone", "phone"),
        Index("ix_contacts_last_activity_at", "last_activity_at"),
        check_one_of("marketing_consent", ConsentStatus),
        Index("ix_contacts_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"),
        index=True,
        info={"erd_label": "has"},
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_name: Mapped[str80 | None]
    last_name: Mapped[str80 | None]
    full_name: Mapped[str255 | None]
    # As given by the sender, for display.
    email: Mapped[str255 | None]
    # Trimmed, lower-cased, validated: the natural key leads are matched on.
    email_normalized: Mapped[str255 | None] = mapped_column(unique=True)
    # E.164 when it parsed; otherwise NULL and the raw value is kept below.
    phone: Mapped[str40 | None]
    phone_raw: Mapped[str80 | None]
    phone_valid: Mapped[bool | None]
    job_title: Mapped[str255 | None]
    country: Mapped[str | None] = mapped_column(String(2))
    notes: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_activity_at: Mapped[dt.datetime | None]
    # Set when this contact was merged into another (a tombstone, as for customers). Its
    # address and phone stay here, so a later lead or e-mail from them finds the survivor.
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    # Marketing consent as last stated (NULL: never stated), when, by which source and how;
    # written only by ``crm_core.customers.consent.apply_consent``.
    marketing_consent: Mapped[str40 | None]
    marketing_consent_at: Mapped[dt.datetime | None]
    marketing_consent_source_id: Mapped[int | None] = mapped_column(
        # A source with events cannot be deleted (the inbox RESTRICTs it), so neither can one
        # that stated a consent.
        ForeignKey("sources.id"),
        info={"erd_label": "stated_consent"},
    )
    marketing_consent_method: Mapped[str80 | None]
    # Set when this person was erased: a tombstone without their data (crm_core.privacy).
    erased_at: Mapped[dt.datetime | None]

    customer: Mapped[Customer] = relationship(back_populates="contacts", foreign_keys=[customer_id])
