"""Record what was sent; let a delivery report suppress an address only when it proves itself.

Anyone can send mail that looks like a bounce. A report counts only when it is
an RFC 3464 delivery-status report that quotes the Message-ID of a message this
platform sent (a campaign message, a case reply, an acknowledgement) to the very
address it says failed. A permanent failure (5.x.x) suppresses the address at
once; transient ones (4.x.x) are counted and suppress after ``transient_limit``
within ``transient_window``. Anything else suppresses nothing: the caller records
it, with the reason this module gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core.bounces.models import MailBounce, SentKind, SentMessage, SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.db import dialect_insert, utcnow
from crm_core.mail import Bounce, BouncedRecipient, normalize_address, normalize_message_id

if TYPE_CHECKING:
    from crm_core.config import Settings


@dataclass(frozen=True)
class BouncePolicy:
    """When transient failures suppress: ``CRM_BOUNCE_TRANSIENT_LIMIT`` within ``…_DAYS``."""

    transient_limit: int = 3
    transient_window: dt.timedelta = dt.timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Settings) -> BouncePolicy:
        """The policy as configured."""
        return cls(
            transient_limit=settings.bounce_transient_limit,
            transient_window=dt.timedelta(days=settings.bounce_transient_days),
        )


@dataclass(frozen=True)
class SentRecord:
    message_id: str
    recipient: str
    kind: SentKind
    # What the mail system called it, when it said (``MailBackend.send``'s answer).
    provider_message_id: str | None = None
    # A campaign message's send row.
    campaign_send_id: int | None = None


@dataclass
class BounceResult:
    """What a report did: addresses suppressed, transient failures counted, and what was not."""

    suppressed: list[str] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)
    # Why (part of) the report was not believed; empty when all of it was.
    unverified: list[str] = field(default_factory=list)


def record_sent(session: Session, records: Iterable[SentRecord]) -> None:
    """Remember the Message-IDs of messages handed over (or about to be); idempotent."""
    now = utcnow()
    rows = []
    for record in records:
        message_id = normalize_message_id(record.message_id)
        recipient = normalize_address(record.recipient)
        if message_id and recipient:
            rows.append(
                {
                    "message_id": message_id,
                    "recipient": recipient,
                    "kind": record.kind,
                    "sent_at": now,
                    "provider_message_id": normalize_provider_id(record.provider_message_id),
                    "campaign_send_id": record.campaign_send_id,
                }
            )
    if rows:
        insert = dialect_insert(session, SentMessage)
        session.execute(insert.on_conflict_do_nothing(index_elements=["message_id"]), rows)


def normalize_provider_id(raw: str | None) -> str | None:
    """A provider's message id as stored and looked up: trimmed, without angle brackets.

    Mailgun answers ``<id@domain>`` and reports ``id@domain``: both are the same id here.
    """
    if not raw:
        return None
    cleaned = raw.strip().strip("<>").strip()
    return cleaned[:998] or None


def record_provider_id(session: Session, *, message_id: str, provider_message_id: str) -> None:
    """Remember the provider's id of a message recorded as sent before it was handed over."""
    normalized = normalize_message_id(message_id)
    provider_id = normalize_provider_id(provider_message_id)
    if normalized and provider_id:
        session.execute(
            update(SentMessage)
            .where(SentMessage.message_id == normalized)
            .values(provider_message_id=provider_id)
        )


def apply_bounce(
    session: Session, *, bounce: Bounce, report_key: str, policy: BouncePolicy
) -> BounceResult:
    """Suppress or count the failures a verified report names; say why the rest is not believed."""
    result = BounceResult()
    sent, refusal = _sent_message(session, bounce)
    if sent is None:
        result.unverified.append(refusal or "not verified")
        return result
    for recipient in bounce.recipients:
        if sent.recipient not in (recipient.address, recipient.original_address):
            result.unverified.append(
                f"names {recipient.address}, but <{sent.message_id}> was sent to {sent.recipient}"
            )
            continue
        _record_failure(session, sent, recipient, report_key, policy, result)
    return result


def _sent_message(session: Session, bounce: Bounce) -> tuple[SentMessage | None, str | None]:
    if not bounce.is_report:
        return None, "not an RFC 3464 delivery-status report"
    if bounce.original_message_id is None:
        return None, "the report quotes no original Message-ID"
    sent = session.scalars(
        select(SentMessage).where(SentMessage.message_id == bounce.original_message_id)
    ).first()
    if sent is None:
        return None, f"<{bounce.original_message_id}> is not a message this platform sent"
    return sent, None


def _record_failure(
    session: Session,
    sent: SentMessage,
    recipient: BouncedRecipient,
    report_key: str,
    policy: BouncePolicy,
    result: BounceResult,
) -> None:
    failure = Failure(
        report_key=report_key,
        status=recipient.status,
        permanent=not (recipient.status or "").startswith("4"),
        diagnostic=recipient.diagnostic,
    )
    if record_failure(session, sent=sent, failure=failure, policy=policy):
        result.suppressed.append(sent.recipient)
    else:
        result.counted.append(sent.recipient)


@dataclass(frozen=True)
class Failure:
    """One reported failure to deliver a message we sent, from a DSN or a provider's event."""

    # Keeps a replayed report from counting twice: the DSN's Message-ID, a provider's event id.
    report_key: str
    status: str | None
    permanent: bool
    diagnostic: str | None
    # The provider whose event reported it; None for a DSN.
    provider: str | None = None


def record_failure(
    session: Session, *, sent: SentMessage, failure: Failure, policy: BouncePolicy
) -> bool:
    """Count a failure of ``sent``; suppress its address when permanent or after repeats.

    True when the address is (now) suppressed for it; the message is marked bounced.
    """
    now = utcnow()
    session.execute(
        dialect_insert(session, MailBounce)
        .values(
            email_normalized=sent.recipient,
            report_key=failure.report_key,
            original_message_id=sent.message_id,
            status=failure.status,
            permanent=failure.permanent,
            diagnostic=failure.diagnostic,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["report_key", "email_normalized"])
    )
    mark_reported(sent, outcome="bounced")
    detail = " ".join(filter(None, (failure.status, failure.diagnostic)))[:1000] or None
    if failure.permanent:
        _suppress_bounced(session, sent, detail, failure.provider)
        return True
    failures = transient_failures(
        session, email_normalized=sent.recipient, since=now - policy.transient_window
    )
    if failures < policy.transient_limit:
        return False
    days = policy.transient_window.days
    note = f"{failures} transient failures within {days} days; last: {detail or 'no status'}"
    _suppress_bounced(session, sent, note[:1000], failure.provider)
    return True


def _suppress_bounced(
    session: Session, sent: SentMessage, detail: str | None, provider: str | None
) -> None:
    suppress(
        session,
        email_normalized=sent.recipient,
        reason=SuppressionReason.BOUNCED,
        detail=detail,
        provider=provider,
    )


# A later report never takes back a graver one: a complaint stays a complaint.
_GRAVITY = {"bounced": 1, "unsubscribed": 2, "complained": 3}


def mark_reported(sent: SentMessage, *, outcome: str) -> None:
    """Note on the sent message what a report said of it (bounced, complained, unsubscribed)."""
    if _GRAVITY.get(sent.report_outcome or "", 0) <= _GRAVITY.get(outcome, 0):
        sent.report_outcome = outcome
    sent.reported_at = utcnow()


def transient_failures(session: Session, *, email_normalized: str, since: dt.datetime) -> int:
    """Verified transient failures of an address since ``since``."""
    query = select(func.count()).where(
        MailBounce.email_normalized == email_normalized,
        MailBounce.permanent.is_(False),
        MailBounce.received_at >= since,
    )
    return session.scalar(query) or 0
