"""What a lead says about a contact, and how it merges into one we already have.

The rule: fill what is empty, never overwrite a value, never blank one out.
Every change is returned as ``{field: {"from": old, "to": new}}`` so the
lead's Activity can say exactly what the lead changed.
"""

from __future__ import annotations

from typing import Any

from crm_core.customers.models import Contact, Customer
from crm_core.leads.normalize import NormalizedLead

Changes = dict[str, dict[str, Any]]

# Contact fields a lead fills, in the order an Activity lists them.
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "email_normalized",
    "phone",
    "phone_raw",
    "phone_valid",
    "job_title",
    "country",
)


def lead_contact_values(lead: NormalizedLead) -> dict[str, Any]:
    """The contact fields a lead supplies; absent ones are ``None``."""
    phone = lead.phone
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "full_name": lead.full_name,
        "email": lead.email_display,
        "email_normalized": lead.email,
        "phone": phone.e164 if phone else None,
        "phone_raw": phone.raw if phone else None,
        "phone_valid": phone.valid if phone else None,
        "job_title": lead.job_title,
        "country": lead.country,
    }


def _phone_fill(contact: Contact, values: dict[str, Any]) -> dict[str, Any]:
    """The phone fields to take from the lead: a valid number fills an empty
    E.164 slot (replacing a flagged raw one); a flagged one only fills nothing."""
    if contact.phone is None and values["phone"] is not None:
        return {key: values[key] for key in ("phone", "phone_raw", "phone_valid")}
    if contact.phone is None and contact.phone_raw is None and values["phone_raw"] is not None:
        return {key: values[key] for key in ("phone_raw", "phone_valid")}
    return {}


def merge_into_contact(contact: Contact, lead: NormalizedLead) -> Changes:
    """Fill ``contact``'s empty fields from ``lead``; the changes made."""
    values = lead_contact_values(lead)
    updates = {
        name: value
        for name, value in values.items()
        if not name.startswith("phone") and value is not None and getattr(contact, name) is None
    }
    updates.update(_phone_fill(contact, values))
    changes: Changes = {}
    for name in CONTACT_FIELDS:
        if name in updates:
            changes[name] = {"from": getattr(contact, name), "to": updates[name]}
            setattr(contact, name, updates[name])
    changes.update(merge_attributes(contact, lead))
    return changes


def merge_attributes(contact: Contact, lead: NormalizedLead) -> Changes:
    """The lead's attributes into the contact's: each is the sender's latest statement of a
    fact only it knows (an SMS consent, say), so unlike the fields above it replaces the old
    value. (E-mail marketing consent has its own columns and rule: ``customers.consent``.)"""
    stored = dict(contact.attributes or {})
    changes: Changes = {}
    for name, value in lead.attributes.items():
        if stored.get(name) != value:
            changes[f"attributes.{name}"] = {"from": stored.get(name), "to": value}
            stored[name] = value
    if changes:
        contact.attributes = stored
    return changes


def new_contact_changes(contact: Contact) -> Changes:
    """The fields a new contact was created with, as changes from nothing."""
    return {
        name: {"from": None, "to": getattr(contact, name)}
        for name in CONTACT_FIELDS
        if getattr(contact, name) is not None
    } | {
        f"attributes.{name}": {"from": None, "to": value}
        for name, value in (contact.attributes or {}).items()
    }


def merge_into_customer(customer: Customer, lead: NormalizedLead) -> Changes:
    """Fill the customer's empty country from the lead (the only customer field a lead has)."""
    if customer.country is None and lead.country is not None:
        customer.country = lead.country
        return {"country": {"from": None, "to": lead.country}}
    return {}
