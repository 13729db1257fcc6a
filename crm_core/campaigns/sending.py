"""Sending one claimed batch: render each message, hand it to the backend, record outcomes.

The three steps are separate so the caller can run them in separate
transactions: rows are claimed and committed first, messages are rendered
from a read, sent with no transaction open, and the outcomes committed last.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, selectinload

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.bounces.models import SentKind
from crm_core.bounces.services import SentRecord, record_sent
from crm_core.campaigns.models import CampaignSend, MarketingCampaign, SendStatus
from crm_core.campaigns.scheduling import ClaimedSend, describe_failure
from crm_core.campaigns.templates import (
    CampaignTemplates,
    compile_templates,
    contact_context,
    customer_context,
)
from crm_core.campaigns.unsubscribe import make_unsubscribe_token, make_unsubscribe_url
from crm_core.config import Settings
from crm_core.customers.models import Contact
from crm_core.errors import PermanentError
from crm_core.mail_transport.base import MailBackend, PermanentDeliveryError, TransientDeliveryError
from crm_core.mail_transport.messages import AutoSubmitted, OutboundMail, build_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailIdentity:
    """Who campaign mail is from, and how its unsubscribe links are made."""

    sender: str
    public_url: str
    secret_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> MailIdentity:
        """The configured identity; ``MissingSettingError`` if production lacks a part of it."""
        return cls(
            sender=settings.mail_from,
            public_url=settings.resolved_public_url(),
            secret_key=settings.resolved_secret_key(),
        )


@dataclass(frozen=True)
class PreparedSend:
    """A claimed row with its message, or with why it cannot have one."""

    claimed: ClaimedSend
    customer_id: int | None
    message: EmailMessage | None
    error: str | None = None


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one claimed row; ``attempted`` False means it never reached the backend."""

    prepared: PreparedSend
    status: SendStatus
    error: str | None = None
    provider_message_id: str | None = None
    attempted: bool = True
    # The backend misbehaved: send nothing more over it in this batch.
    stops_batch: bool = False


# The error of rows a batch gave back unattempted when its time was up.
OUT_OF_TIME = "batch out of time"


def prepare_batch(
    session: Session,
    *,
    campaign_id: int,
    claimed: Sequence[ClaimedSend],
    identity: MailIdentity,
) -> list[PreparedSend]:
    """Render every claimed row's message; a template or header problem fails that row only."""
    campaign = session.get(MarketingCampaign, campaign_id)
    if campaign is None:
        return [PreparedSend(row, None, None, "campaign deleted") for row in claimed]
    templates = compile_templates(
        subject=campaign.subject or "",
        text=campaign.text_template or "",
        html=campaign.html_template,
    )
    contacts = {
        contact.id: contact
        for contact in session.scalars(
            select(Contact)
            .where(Contact.id.in_([row.contact_id for row in claimed]))
            .options(selectinload(Contact.customer))
        )
    }
    return [
        _prepare(row, contacts.get(row.contact_id), campaign_id, templates, identity)
        for row in claimed
    ]


def unsubscribe_url_for(identity: MailIdentity, *, contact_id: int, campaign_id: int) -> str:
    """The signed one-click unsubscribe link of this contact in this campaign."""
    token = make_unsubscribe_token(
        secret_key=identity.secret_key, contact_id=contact_id, campaign_id=campaign_id
    )
    return make_unsubscribe_url(identity.public_url, token)


def render_campaign_message(
    *,
    templates: CampaignTemplates,
    contact: Contact,
    campaign_id: int,
    to: str,
    identity: MailIdentity,
) -> EmailMessage:
    """One contact's message with List-Unsubscribe headers; PermanentError if it cannot be built."""
    url = unsubscribe_url_for(identity, contact_id=contact.id, campaign_id=campaign_id)
    rendered = templates.render(
        contact=contact_context(contact),
        customer=customer_context(contact.customer),
        unsubscribe_url=url,
    )
    return build_message(
        OutboundMail(
            sender=identity.sender,
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            unsubscribe_url=url,
            auto_submitted=AutoSubmitted.GENERATED,
        )
    )


def preview_message(
    session: Session, *, campaign_id: int, contact_id: int, identity: MailIdentity
) -> EmailMessage | None:
    """The message the campaign would send this contact; None when either does not exist.

    InvalidInput (or another PermanentError) when it cannot be rendered or built.
    """
    campaign = session.get(MarketingCampaign, campaign_id)
    contact = session.get(Contact, contact_id)
    if campaign is None or contact is None:
        return None
    templates = compile_templates(
        subject=campaign.subject or "",
        text=campaign.text_template or "",
        html=campaign.html_template,
    )
    return render_campaign_message(
        templates=templates,
        contact=contact,
        campaign_id=campaign_id,
        to=contact.email or contact.email_normalized or "",
        identity=identity,
    )


def _prepare(
    row: ClaimedSend,
    contact: Contact | None,
    campaign_id: int,
    templates: CampaignTemplates,
    identity: MailIdentity,
) -> PreparedSend:
    if contact is None:
        return PreparedSend(row, None, None, "contact deleted")
    try:
        message = render_campaign_message(
            templates=templates, contact=contact, campaign_id=campaign_id, to=row.email,
            identity=identity,
        )  # fmt: skip
    except PermanentError as exc:
        return PreparedSend(row, contact.customer_id, None, str(exc)[:500])
    return PreparedSend(row, contact.customer_id, message)


def deliver_batch(
    backend: MailBackend, prepared: Sequence[PreparedSend], *, deadline: float | None = None
) -> list[SendOutcome]:
    """Send each message over one backend connection; one outcome per row, in order; never raises.

    A transient failure that proves nothing went out stops the batch: that row
    and the rest go back to pending for a later batch. One that may have gone
    out (the connection broke during DATA) is ``unknown``. Past ``deadline``
    (``time.monotonic()``) no further message is started and the backend makes
    no further retry: the rest go back to pending, unattempted, so a slow
    server never keeps rows ``sending`` until the dispatcher takes them for a
    dead batch's.
    """
    outcomes: list[SendOutcome] = []
    try:
        backend.limit_to(deadline)
        backend.open()
        for index, item in enumerate(prepared):
            if deadline is not None and index and time.monotonic() > deadline:
                outcomes.extend(_released(prepared[index:], OUT_OF_TIME, attempted=False))
                break
            outcome = _deliver_one(backend, item)
            outcomes.append(outcome)
            if outcome.status == SendStatus.PENDING or outcome.stops_batch:
                rest = prepared[index + 1 :]
                outcomes.extend(_released(rest, outcome.error, attempted=False))
                break
    except TransientDeliveryError as exc:  # from open(): nothing of this batch went out
        outcomes.extend(_released(prepared[len(outcomes) :], str(exc), attempted=False))
    except PermanentDeliveryError as exc:  # from open(): bad credentials, refused server
        outcomes.extend(_released(prepared[len(outcomes) :], str(exc), attempted=True))
    except Exception as exc:  # from open(): a backend broken in a way it cannot place
        outcomes.extend(_released(prepared[len(outcomes) :], describe_failure(exc), attempted=True))
    finally:
        _close(backend)
    return outcomes


def release_unsent(claimed: Sequence[ClaimedSend], error: str) -> list[SendOutcome]:
    """Outcomes giving a claimed batch back unsent: pending again, failed after the attempt limit.

    For a batch that failed after its claim and before any message reached
    the backend (its messages could not be prepared): nothing can have gone
    out, so none of it is ``unknown``.
    """
    items = [PreparedSend(row, None, None, error) for row in claimed]
    return _released(items, error, attempted=True)


def _close(backend: MailBackend) -> None:
    # A failing close must not turn a settled batch into an exception.
    try:
        backend.close()
    except Exception as exc:
        log.warning("closing the mail backend failed: %s", describe_failure(exc))


def needs_backoff(outcomes: Sequence[SendOutcome]) -> bool:
    """Whether a batch stopped on a delivery failure (not on its deadline): wait before the next."""
    return any(o.status == SendStatus.PENDING and o.error != OUT_OF_TIME for o in outcomes)


def _released(
    items: Sequence[PreparedSend], error: str | None, *, attempted: bool
) -> list[SendOutcome]:
    return [SendOutcome(item, SendStatus.PENDING, error, attempted=attempted) for item in items]


def _deliver_one(backend: MailBackend, item: PreparedSend) -> SendOutcome:
    if item.message is None:
        return SendOutcome(item, SendStatus.FAILED, item.error)
    try:
        provider_id = backend.send(item.message, idempotency_key=f"campaign-send-{item.claimed.id}")
    except PermanentDeliveryError as exc:
        return SendOutcome(item, SendStatus.FAILED, str(exc)[:500])
    except TransientDeliveryError as exc:
        status = SendStatus.UNKNOWN if exc.maybe_sent else SendStatus.PENDING
        return SendOutcome(item, status, str(exc)[:500])
    except Exception as exc:
        # Not a failure the backend could place: the message may have left, so it is
        # unknown (never sent twice), and the batch stops before the next one.
        reason = f"unexpected error while sending: {describe_failure(exc)}"[:500]
        return SendOutcome(item, SendStatus.UNKNOWN, reason, stops_batch=True)
    return SendOutcome(item, SendStatus.SENT, provider_message_id=provider_id)


def record_outcomes(
    session: Session,
    *,
    campaign_id: int,
    outcomes: Sequence[SendOutcome],
    max_attempts: int,
    now: dt.datetime,
) -> None:
    """Settle every row of a batch, and add a ``campaign_sent`` Activity per message sent.

    A row released to pending after ``max_attempts`` attempts fails instead.
    Both writes are bulk statements: one round trip each for the batch.
    """
    if not outcomes:
        return
    session.execute(update(CampaignSend), [_row_values(o, max_attempts, now) for o in outcomes])
    # What may have left is remembered, so a report of its failure can be verified.
    record_sent(session, [_sent_record(o) for o in outcomes if o.status in _MAY_HAVE_LEFT])
    sent = [o for o in outcomes if o.status == SendStatus.SENT]
    if sent:
        session.execute(insert(Activity), [_activity(o, campaign_id, now) for o in sent])


_MAY_HAVE_LEFT = (SendStatus.SENT, SendStatus.UNKNOWN)


def _sent_record(outcome: SendOutcome) -> SentRecord:
    message = outcome.prepared.message
    message_id = str(message["Message-ID"]) if message is not None else ""
    return SentRecord(
        message_id,
        outcome.prepared.claimed.email,
        SentKind.CAMPAIGN,
        provider_message_id=outcome.provider_message_id,
        campaign_send_id=outcome.prepared.claimed.id,
    )


def _row_values(outcome: SendOutcome, max_attempts: int, now: dt.datetime) -> dict[str, object]:
    attempts = outcome.prepared.claimed.attempts + (1 if outcome.attempted else 0)
    status = outcome.status
    if status == SendStatus.PENDING and attempts >= max_attempts:
        status = SendStatus.FAILED
    return {
        "id": outcome.prepared.claimed.id,
        "status": status,
        "attempts": attempts,
        "error": outcome.error,
        "provider_message_id": outcome.provider_message_id,
        "sent_at": now if status == SendStatus.SENT else None,
    }


def _activity(outcome: SendOutcome, campaign_id: int, now: dt.datetime) -> dict[str, object]:
    message = outcome.prepared.message
    return {
        "type": ActivityType.CAMPAIGN_SENT,
        "direction": Direction.OUTBOUND,
        "occurred_at": now,
        "summary": str(message["Subject"]) if message is not None else "Campaign message",
        "details": {"send_id": outcome.prepared.claimed.id},
        "message_id": str(message["Message-ID"]) if message is not None else None,
        "customer_id": outcome.prepared.customer_id,
        "contact_id": outcome.prepared.claimed.contact_id,
        "campaign_id": campaign_id,
    }
