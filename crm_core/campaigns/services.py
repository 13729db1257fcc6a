"""Campaigns: create, look at, and move through their life (schedule, send, pause, cancel).

State rules, in one place (``TRANSITIONS``): a draft or scheduled campaign can
be scheduled or sent now; a scheduled or sending one can be paused; a paused
one resumes to where it was; anything not yet sent can be cancelled. The
dispatcher alone moves ``scheduled → sending`` and ``sending → sent``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.bounces.models import SentMessage, Suppression, SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.campaigns.instants import to_utc
from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign, SendStatus
from crm_core.campaigns.recurrence import check_cron, next_run
from crm_core.campaigns.segments import parse_segment
from crm_core.campaigns.templates import validate_templates
from crm_core.customers.models import Contact
from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput, PermanentError

MAX_NAME = 255
MAX_CODE = 80

S = CampaignStatus
# What each action may start from.
TRANSITIONS: dict[str, frozenset[str]] = {
    # A failed campaign can be scheduled again, e.g. with a cron that matches.
    "schedule": frozenset({S.DRAFT, S.SCHEDULED, S.FAILED}),
    "send": frozenset({S.DRAFT, S.SCHEDULED, S.FAILED}),
    "pause": frozenset({S.SCHEDULED, S.SENDING}),
    "resume": frozenset({S.PAUSED}),
    "cancel": frozenset({S.DRAFT, S.SCHEDULED, S.SENDING, S.PAUSED, S.FAILED}),
}


class CampaignNotFoundError(PermanentError):
    """No campaign has this id."""


class CampaignStateError(PermanentError):
    """The action is not allowed in the campaign's current status."""

    def __init__(self, *, action: str, status: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[action]))
        super().__init__(f"cannot {action} a campaign that is {status} (only when {allowed})")
        self.action = action
        self.status = status


@dataclass(frozen=True)
class CampaignView:
    """What the API and the CLI show of a campaign."""

    id: int
    name: str
    code: str
    status: str
    subject: str | None
    segment: dict[str, Any]
    send_at: dt.datetime | None
    schedule_cron: str | None
    # Runs started so far (a campaign without ``schedule_cron`` has one).
    current_run: int
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    stats: dict[str, int]
    # Why it is ``failed`` (None otherwise).
    failure_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601."""
        doc = dict(self.__dict__)
        for key in ("send_at", "started_at", "completed_at"):
            doc[key] = doc[key].isoformat() if doc[key] else None
        return doc


def create_campaign(
    session: Session,
    *,
    name: str,
    code: str,
    subject: str,
    text: str,
    html: str | None = None,
    segment: dict[str, Any] | None = None,
    send_at: dt.datetime | None = None,
) -> MarketingCampaign:
    """A new campaign, a draft (or scheduled when ``send_at`` is given); InvalidInput if bad.

    A lead's UTM code creates a campaign before anyone writes it (an empty
    draft, see ``campaign_for_code``): creating a campaign with that code fills
    the draft in, keeping its id and the leads it is credited with.
    """
    existing = _campaign_with_code(session, code)
    # An empty draft is what a lead's UTM code made: it is written, not refused.
    empty_draft = existing and existing.status == S.DRAFT and not _has_content(existing)
    adopted = existing if empty_draft else None
    errors = _check_names(name=name, code=code, code_taken=bool(existing and not adopted))
    errors.extend(_check_templates(subject=subject, text=text, html=html))
    try:
        parse_segment(segment or {})
    except InvalidInput as exc:
        errors.extend(exc.errors)
    errors.extend(_check_send_at(send_at))
    if errors:
        raise InvalidInput(errors)
    campaign = adopted or MarketingCampaign(code=code.strip())
    campaign.name = name.strip()
    campaign.subject = subject
    campaign.text_template = text
    campaign.html_template = html
    campaign.segment = segment or {}
    campaign.send_at = to_utc(send_at) if send_at else None
    campaign.status = S.SCHEDULED if send_at else S.DRAFT
    session.add(campaign)
    session.flush()
    return campaign


def _campaign_with_code(session: Session, code: Any) -> MarketingCampaign | None:
    if not isinstance(code, str):
        return None
    query = select(MarketingCampaign).where(MarketingCampaign.code == code.strip())
    return session.scalars(query).one_or_none()


CONTENT_FIELDS = ("subject", "text")


def _missing_content(campaign: MarketingCampaign) -> tuple[str, ...]:
    """Which of subject and text the campaign lacks (a lead's UTM code makes one with neither)."""
    values = {"subject": campaign.subject, "text": campaign.text_template}
    return tuple(field for field in CONTENT_FIELDS if not (values[field] or "").strip())


def _has_content(campaign: MarketingCampaign) -> bool:
    return len(_missing_content(campaign)) < len(CONTENT_FIELDS)


def _check_sendable(campaign: MarketingCampaign) -> None:
    """A campaign goes out only with a subject and a text."""
    missing = [
        FieldError(loc=(field,), msg=f"the campaign has no {field} yet; create it with one")
        for field in _missing_content(campaign)
    ]
    if missing:
        raise InvalidInput(missing)


def _check_names(*, name: Any, code: Any, code_taken: bool) -> list[FieldError]:
    """``name`` and ``code`` well formed, and ``code`` not another campaign's."""
    errors: list[FieldError] = []
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        errors.append(FieldError(loc=("name",), msg=f"must be 1-{MAX_NAME} characters"))
    if not isinstance(code, str) or not 1 <= len(code.strip()) <= MAX_CODE:
        errors.append(FieldError(loc=("code",), msg=f"must be 1-{MAX_CODE} characters"))
    elif code_taken:
        errors.append(FieldError(loc=("code",), msg=f"a campaign with code {code!r} exists"))
    return errors


def _check_templates(*, subject: Any, text: Any, html: Any) -> list[FieldError]:
    errors = [
        FieldError(loc=(field,), msg="is required and must be a non-blank string")
        for field, value in (("subject", subject), ("text", text))
        if not isinstance(value, str) or not value.strip()
    ]
    if html is not None and not isinstance(html, str):
        errors.append(FieldError(loc=("html",), msg="must be a string"))
    if errors:
        return errors
    try:
        validate_templates(subject=subject, text=text, html=html)
    except InvalidInput as exc:
        return exc.errors
    return []


def _check_send_at(send_at: Any) -> list[FieldError]:
    if send_at is None:
        return []
    if not isinstance(send_at, dt.datetime) or send_at.tzinfo is None:
        return [FieldError(loc=("send_at",), msg="must be a date-time with a time zone")]
    try:
        to_utc(send_at)
    except ValueError as exc:
        return [FieldError(loc=("send_at",), msg=str(exc))]
    return []


def get_campaign(session: Session, *, campaign_id: int) -> MarketingCampaign:
    """The campaign, locked for update; CampaignNotFoundError when there is none."""
    campaign = session.scalar(
        select(MarketingCampaign).where(MarketingCampaign.id == campaign_id).with_for_update()
    )
    if campaign is None:
        raise CampaignNotFoundError(f"no campaign {campaign_id}")
    return campaign


def list_campaigns(session: Session) -> list[MarketingCampaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(MarketingCampaign).order_by(MarketingCampaign.id.desc())))


# A send row is made only for an address not on the suppression list, so a recipient can only
# have been suppressed after its campaign started: the stats read the suppressions made since
# then (an hour earlier, for clocks and transactions that commit late), not every send.
SUPPRESSED_SLACK = dt.timedelta(hours=1)


def campaign_stats(session: Session, *, campaign_id: int) -> dict[str, int]:
    """Counts of the campaign's sends by status, and of its recipients now suppressed.

    The counts by status read ``(campaign_id, status)`` alone. ``suppressed`` counts
    recipients on the list for any reason; ``unsubscribed``, ``bounced`` and ``complained``
    those on it for that reason: the suppressions made since the campaign started, joined
    to their contact and its send. ``reported_bounced`` and ``reported_complained`` count
    this campaign's messages a delivery report (a provider's event or a verified DSN) said
    bounced (permanently or not) or drew a spam complaint.
    """
    keys = ("targeted", *(status.value for status in SendStatus), "suppressed", *_REASON_STATS)
    stats = dict.fromkeys(keys, 0)
    by_status = session.execute(
        select(CampaignSend.status, func.count())
        .where(CampaignSend.campaign_id == campaign_id)
        .group_by(CampaignSend.status)
    )
    for status, count in by_status:
        stats["targeted"] += count
        stats[status] += count
    if not stats["targeted"]:
        return stats | {f"reported_{outcome}": 0 for outcome in _REPORTED}
    suppressed = (
        select(Suppression.reason, func.count())
        .join(Contact, Contact.email_normalized == Suppression.email_normalized)
        .join(CampaignSend, CampaignSend.contact_id == Contact.id)
        .where(CampaignSend.campaign_id == campaign_id)
        .group_by(Suppression.reason)
    )
    campaign = session.get(MarketingCampaign, campaign_id)  # loaded already by a view's caller
    started_at = campaign.started_at if campaign is not None else None
    if started_at is not None:
        suppressed = suppressed.where(Suppression.created_at >= started_at - SUPPRESSED_SLACK)
    for reason, count in session.execute(suppressed):
        stats["suppressed"] += count
        if reason in _REASON_STATS:
            stats[reason] += count
    stats.update(_reported(session, campaign_id=campaign_id))
    return stats


_REASON_STATS = (
    SuppressionReason.UNSUBSCRIBED.value,
    SuppressionReason.BOUNCED.value,
    SuppressionReason.COMPLAINED.value,
)
_REPORTED = ("bounced", "complained")


def _reported(session: Session, *, campaign_id: int) -> dict[str, int]:
    """The campaign's messages a delivery report marked, by what it said."""
    rows = session.execute(
        select(SentMessage.report_outcome, func.count())
        .join(CampaignSend, CampaignSend.id == SentMessage.campaign_send_id)
        .where(
            CampaignSend.campaign_id == campaign_id,
            SentMessage.report_outcome.is_not(None),  # the partial index of reported messages
            SentMessage.report_outcome.in_(_REPORTED),
        )
        .group_by(SentMessage.report_outcome)
    ).all()
    counts = {f"reported_{outcome}": 0 for outcome in _REPORTED}
    for outcome, count in rows:
        counts[f"reported_{outcome}"] = count
    return counts


def get_campaign_view(session: Session, *, campaign_id: int) -> CampaignView:
    """The campaign with its status and stats; CampaignNotFoundError when there is none."""
    campaign = session.get(MarketingCampaign, campaign_id)
    if campaign is None:
        raise CampaignNotFoundError(f"no campaign {campaign_id}")
    return CampaignView(
        id=campaign.id,
        name=campaign.name,
        code=campaign.code,
        status=campaign.status,
        subject=campaign.subject,
        segment=campaign.segment,
        send_at=campaign.send_at,
        schedule_cron=campaign.schedule_cron,
        current_run=campaign.current_run,
        started_at=campaign.started_at,
        completed_at=campaign.completed_at,
        stats=campaign_stats(session, campaign_id=campaign_id),
        failure_reason=campaign.failure_reason,
    )


def _transition(session: Session, *, campaign_id: int, action: str) -> MarketingCampaign:
    campaign = get_campaign(session, campaign_id=campaign_id)
    if campaign.status not in TRANSITIONS[action]:
        raise CampaignStateError(action=action, status=campaign.status)
    return campaign


def schedule(
    session: Session,
    *,
    campaign_id: int,
    send_at: dt.datetime | None,
    cron: str | None = None,
    now: dt.datetime | None = None,
) -> MarketingCampaign:
    """Send the campaign at ``send_at``, or on every match of ``cron`` (UTC).

    With ``cron`` the campaign recurs: the first run is at ``send_at`` when
    given, else at the expression's next match; each later run is scheduled
    when the one before it finishes. Without it the campaign is sent once.
    """
    now = now or utcnow()
    errors = _check_send_at(send_at)
    expression = None
    if cron is not None:
        try:
            expression = check_cron(cron, now=now)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    elif not send_at:
        errors.extend(_required("send_at"))
    if errors:
        raise InvalidInput(errors)
    campaign = _transition(session, campaign_id=campaign_id, action="schedule")
    _check_sendable(campaign)
    campaign.status = S.SCHEDULED
    campaign.failure_reason = None
    if send_at is None:
        assert expression is not None
        send_at = next_run(expression, after=now)
    campaign.send_at = to_utc(send_at)
    campaign.schedule_cron = expression
    session.flush()
    return campaign


def _required(field: str) -> list[FieldError]:
    return [FieldError(loc=(field,), msg="is required")]


def send_now(session: Session, *, campaign_id: int, now: dt.datetime | None = None) -> bool:
    """Make the campaign due now; False (a no-op) when it is already sending or sent.

    The dispatcher picks it up; the caller may enqueue a dispatch after commit.
    """
    campaign = get_campaign(session, campaign_id=campaign_id)
    if campaign.status in (S.SENDING, S.SENT):
        return False
    if campaign.status not in TRANSITIONS["send"]:
        raise CampaignStateError(action="send", status=campaign.status)
    _check_sendable(campaign)
    campaign.status = S.SCHEDULED
    campaign.failure_reason = None
    campaign.send_at = now or utcnow()
    session.flush()
    return True


def pause(session: Session, *, campaign_id: int) -> MarketingCampaign:
    """Stop claiming new batches; messages already handed over are not recalled."""
    campaign = _transition(session, campaign_id=campaign_id, action="pause")
    campaign.status = S.PAUSED
    session.flush()
    return campaign


def resume(session: Session, *, campaign_id: int) -> MarketingCampaign:
    """Back to sending when it had started, else back to scheduled."""
    campaign = _transition(session, campaign_id=campaign_id, action="resume")
    campaign.status = S.SENDING if campaign.started_at is not None else S.SCHEDULED
    session.flush()
    return campaign


def cancel(session: Session, *, campaign_id: int) -> MarketingCampaign:
    """Stop for good; pending sends are never sent. Cancelling twice is a no-op."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    if campaign.status == S.CANCELLED:
        return campaign
    if campaign.status not in TRANSITIONS["cancel"]:
        raise CampaignStateError(action="cancel", status=campaign.status)
    campaign.status = S.CANCELLED
    campaign.completed_at = utcnow()
    session.flush()
    return campaign


def record_unsubscribe(session: Session, *, contact_id: int, campaign_id: int | None) -> bool:
    """Suppress the contact's address; True (and one ``unsubscribed`` Activity) the first time.

    A contact deleted since the message was sent, or without an address, is a
    quiet no-op: the page still tells the person they are unsubscribed.
    """
    contact = session.get(Contact, contact_id)
    if contact is None or not contact.email_normalized:
        return False
    if campaign_id is not None and session.get(MarketingCampaign, campaign_id) is None:
        campaign_id = None
    added = suppress(
        session,
        email_normalized=contact.email_normalized,
        reason=SuppressionReason.UNSUBSCRIBED,
        campaign_id=campaign_id,
    )
    if added:
        session.add(
            Activity(
                type=ActivityType.UNSUBSCRIBED,
                direction=Direction.INBOUND,
                summary="Unsubscribed from campaign mail",
                details={"campaign_id": campaign_id},
                customer_id=contact.customer_id,
                contact_id=contact.id,
                campaign_id=campaign_id,
            )
        )
        session.flush()
    return added
