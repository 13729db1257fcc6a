"""Notification subscriptions as admins change them: add and remove, checked against the
``subscriptions`` permission and recorded in the audit log (the signing secret only as
``<redacted>``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.notifications import services
from crm_core.notifications.models import Subscription
from crm_core.notifications.services import NewSubscription
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "subscription"


def add_subscription(
    session: Session, *, actor: Actor, url: str, events: list[str]
) -> NewSubscription:
    """Subscribe ``url`` to ``events`` (``services.add_subscription``)."""
    actor.require(Permission.SUBSCRIPTIONS)
    created = services.add_subscription(session, url=url, events=events)
    changes = audit.created({"url": created.url, "events": created.events})
    changes["secret"] = {"before": None, "after": audit.REDACTED}
    audit.record(
        session, actor=actor, entity=ENTITY, entity_id=created.id, action="create", changes=changes
    )
    return created


def remove_subscription(session: Session, *, actor: Actor, subscription_id: int) -> bool:
    """Delete a subscription and what it is still owed; False if there is none."""
    actor.require(Permission.SUBSCRIPTIONS)
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        return False
    before = {
        "url": subscription.url,
        "events": list(subscription.events),
        "enabled": subscription.enabled,
    }
    if not services.remove_subscription(session, subscription_id=subscription_id):
        return False
    audit.record(
        session,
        actor=actor,
        entity=ENTITY,
        entity_id=subscription_id,
        action="delete",
        changes=audit.removed(before),
    )
    return True
