"""Taking an address off the suppression list, as admins do it: checked against the
``campaigns`` permission (the address may then get campaign mail again) and recorded in the
audit log with the reason given."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.bounces.models import Suppression
from crm_core.bounces.suppression import remove_suppression as remove
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "suppression"


def remove_suppression(
    session: Session, *, actor: Actor, email: str, reason: str
) -> dict[str, Any] | None:
    """Take ``email`` off the list (``bounces.suppression.remove_suppression``); what was
    removed, or None when the address was not on it."""
    actor.require(Permission.CAMPAIGNS)
    normalized = email.strip().lower()
    row_id = session.scalar(
        select(Suppression.id).where(Suppression.email_normalized == normalized)
    )
    removed = remove(session, email=email, reason=reason)
    if removed is None or row_id is None:
        return removed
    before = {
        "email": removed["email"],
        "reason": removed["reason"],
        "detail": removed.get("detail"),
        "campaign_id": removed.get("campaign_id"),
    }
    changes = audit.removed(before)
    changes["removal_reason"] = {"before": None, "after": reason.strip()[:1000]}
    audit.record(
        session, actor=actor, entity=ENTITY, entity_id=row_id, action="delete", changes=changes
    )
    return removed
