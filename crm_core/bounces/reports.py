"""What an e-mail provider reports about mail we sent through it, in our own terms.

Mailgun, SendGrid and Postmark each post their own event documents (a failed
delivery, a spam complaint, an unsubscribe). Each provider's mapping restates one
of them as a ``DeliveryReport``; the bounce rules then treat every provider alike.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class ReportOutcome(enum.StrEnum):
    """What happened to a message, as far as the provider could tell."""

    # The receiving side refused it: permanent (hard) or transient (soft).
    BOUNCED = "bounced"
    # The recipient marked it as spam.
    COMPLAINED = "complained"
    # The recipient used the provider's unsubscribe link or list-unsubscribe.
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class DeliveryReport:
    """One provider event about one recipient of one message we sent."""

    # ``mailgun``, ``sendgrid`` or ``postmark``.
    provider: str
    # The provider's id of this event (Mailgun ``event-data.id``, SendGrid ``sg_event_id``,
    # Postmark ``ID``): a report seen twice is applied once.
    report_id: str
    # The address the event is about, as the provider gives it.
    recipient: str
    outcome: ReportOutcome
    # For ``BOUNCED``: whether the failure is permanent. Complaints and unsubscribes are.
    permanent: bool
    # The provider's id of the message the event refers to, as its send API returned it.
    provider_message_id: str | None = None
    # The RFC 5322 Message-ID of that message, when the provider passes it on.
    message_id: str | None = None
    # The provider's own words (status code, description), bounded by the mapping.
    reason: str | None = None
    occurred_at: dt.datetime | None = None
