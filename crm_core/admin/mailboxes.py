"""Mailboxes as admins change them: add and remove, checked against the ``mailboxes``
permission and recorded in the audit log (the password only as ``<redacted>``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_core.mailboxes import services
from crm_core.mailboxes.services import MailboxView
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "mailbox"


def _fields(view: MailboxView) -> dict[str, Any]:
    # The view's URL is the display form, which never holds the password.
    return {
        "name": view.name,
        "url": view.url,
        "move_to": view.move_to,
        "source_id": view.source_id,
    }


def add_mailbox(
    session: Session,
    *,
    actor: Actor,
    name: str,
    url: str,
    move_to: str | None = None,
    password: str | None = None,
) -> MailboxView:
    """Poll a new mailbox (``services.add_mailbox``)."""
    actor.require(Permission.MAILBOXES)
    view = services.add_mailbox(session, name=name, url=url, move_to=move_to, password=password)
    changes = audit.created(_fields(view))
    changes["password"] = {"before": None, "after": audit.REDACTED}
    audit.record(
        session, actor=actor, entity=ENTITY, entity_id=view.id, action="create", changes=changes
    )
    return view


def remove_mailbox(session: Session, *, actor: Actor, name: str) -> bool:
    """Stop polling a mailbox (``services.remove_mailbox``); False when there was none."""
    actor.require(Permission.MAILBOXES)
    mailbox = services.get_mailbox(session, name=name)
    if mailbox is None:
        return False
    before = _fields(services.view_of(mailbox))
    mailbox_id = mailbox.id
    if not services.remove_mailbox(session, name=name):
        return False
    audit.record(
        session,
        actor=actor,
        entity=ENTITY,
        entity_id=mailbox_id,
        action="delete",
        changes=audit.removed(before),
    )
    return True
