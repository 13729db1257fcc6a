"""A provider's delivery report: applied once, by the rules of a verified DSN, to what we sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.reports import DeliveryReport, ReportOutcome, apply_delivery_reports
from crm_core.bounces.services import BouncePolicy
from crm_core.campaigns.models import CampaignSend, SendStatus
from crm_core.campaigns.scheduling import ClaimedSend
from crm_core.campaigns.sending import PreparedSend, SendOutcome, record_outcomes
from crm_core.campaigns.services import get_campaign_view
from crm_core.db import make_session_factory
from crm_core.mail import CaseTokens
from crm_core.mail_transport.backends import backend_from_url
from crm_core.mail_transport.messages import OutboundMail, build_message
from crm_core.support.pending_mail import deliver_pending, pending_deliveries
from crm_core.support.replies import prepare_reply, record_delivery
from tests.crm_core.support.test_auto_ack import SENDER, receive, request
from tests.factories import ContactFactory, MarketingCampaignFactory, SupportCaseFactory
from tests.provider_mail_apis import mail_url, running_provider_api
from tests.smtp_server import self_signed_certificate, server_tls_context

POLICY = BouncePolicy(transient_limit=2, transient_window=dt.timedelta(days=7))


def campaign_message(
    session: Session, *, campaign_id: int, provider_id: str | None
) -> tuple[m.Contact, str]:
    """One campaign message sent and recorded as the send pipeline records it; its Message-ID."""
    contact = ContactFactory()
    row = CampaignSend(
        campaign_id=campaign_id,
        contact_id=contact.id,
        email=contact.email,
        status=SendStatus.SENDING,
    )
    session.add(row)
    session.flush()
    message = build_message(
        OutboundMail(sender="news@shop.example", to=contact.email, subject="News", text="Hi")
    )
    prepared = PreparedSend(
        ClaimedSend(row.id, contact.id, contact.email), contact.customer_id, message
    )
    outcome = SendOutcome(prepared, SendStatus.SENT, provider_message_id=provider_id)
    record_outcomes(
        session,
        campaign_id=campaign_id,
        outcomes=[outcome],
        max_attempts=3,
        now=dt.datetime.now(dt.UTC),
    )
    session.flush()
    return contact, str(message["Message-ID"]).strip("<>")


def report(recipient: str, **fields: object) -> DeliveryReport:
    values: dict[str, object] = {
        "provider": "mailgun",
        "report_id": "evt-1",
        "recipient": recipient,
        "outcome": ReportOutcome.BOUNCED,
        "permanent": True,
        "reason": "550 5.1.1 no such user",
    }
    values.update(fields)
    return DeliveryReport(**values)  # type: ignore[arg-type]


def suppression(session: Session, email: str) -> m.Suppression | None:
    query = select(m.Suppression).where(m.Suppression.email_normalized == email)
    return session.scalars(query).first()


def reported(session: Session) -> list[m.Activity]:
    query = select(m.Activity).where(m.Activity.type == m.ActivityType.DELIVERY_REPORTED)
    return list(session.scalars(query.order_by(m.Activity.id)))


def test_a_permanent_bounce_suppresses_marks_the_send_and_is_on_the_contact(
    session: Session,
) -> None:
    campaign = MarketingCampaignFactory()
    contact, _ = campaign_message(
        session, campaign_id=campaign.id, provider_id="<20261203.1@mg.shop.example>"
    )
    # Mailgun answers the send with <id>, and reports it without the brackets.
    touched = apply_delivery_reports(
        session,
        [report(contact.email.upper(), provider_message_id="20261203.1@mg.shop.example")],
        policy=POLICY,
    )
    row = suppression(session, contact.email_normalized)
    assert row is not None
    assert (row.reason, row.provider, row.detail) == (
        "bounced",
        "mailgun",
        "550 5.1.1 no such user",
    )
    [activity] = reported(session)
    assert (activity.contact_id, activity.customer_id, activity.campaign_id) == (
        contact.id,
        contact.customer_id,
        campaign.id,
    )
    assert activity.details["result"] == f"suppressed {contact.email_normalized} (bounced)"
    assert ("activity", activity.id) in touched
    assert ("contact", contact.id) in touched
    sent = session.scalars(select(m.SentMessage)).one()
    assert sent.report_outcome == "bounced"
    sent_activity = session.scalars(
        select(m.Activity).where(m.Activity.type == m.ActivityType.CAMPAIGN_SENT)
    ).one()
    assert sent_activity.details["delivery_report"] == "bounced"
    stats = get_campaign_view(session, campaign_id=campaign.id).stats
    assert (stats["reported_bounced"], stats["bounced"], stats["reported_complained"]) == (1, 1, 0)


def test_the_same_report_twice_is_applied_once(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    contact, _ = campaign_message(session, campaign_id=campaign.id, provider_id="pm-1")
    bounce = report(contact.email, provider="postmark", provider_message_id="pm-1", permanent=False)
    first = apply_delivery_reports(session, [bounce], policy=POLICY)
    again = apply_delivery_reports(session, [bounce, bounce], policy=POLICY)
    assert first
    assert again == []
    assert len(reported(session)) == 1
    assert session.scalar(select(func.count()).select_from(m.MailBounce)) == 1
    assert session.scalar(select(func.count()).select_from(m.AppliedDeliveryReport)) == 1
    # One transient failure of two allowed: counted, not suppressed.
    assert suppression(session, contact.email_normalized) is None


def test_transient_bounces_suppress_after_the_policys_repeats(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    contact, _ = campaign_message(session, campaign_id=campaign.id, provider_id="sg-abc")
    soft = [
        report(contact.email, provider="sendgrid", report_id=f"sg-evt-{n}", permanent=False,
               provider_message_id="sg-abc", reason="421 try later")
        for n in (1, 2)
    ]  # fmt: skip
    apply_delivery_reports(session, soft[:1], policy=POLICY)
    assert suppression(session, contact.email_normalized) is None
    apply_delivery_reports(session, soft[1:], policy=POLICY)
    row = suppression(session, contact.email_normalized)
    assert row is not None
    assert (row.reason, row.provider) == ("bounced", "sendgrid")
    assert row.detail is not None
    assert row.detail.startswith("2 transient failures within 7 days")
    results = [a.details["result"] for a in reported(session)]
    assert results == [
        f"transient failure counted for {contact.email_normalized}",
        f"suppressed {contact.email_normalized} (bounced)",
    ]


def test_a_complaint_and_an_unsubscribe_suppress_at_once_with_reason_and_provider(
    session: Session,
) -> None:
    campaign = MarketingCampaignFactory()
    angry, _ = campaign_message(session, campaign_id=campaign.id, provider_id="sg-1")
    leaving, _ = campaign_message(session, campaign_id=campaign.id, provider_id="sg-2")
    apply_delivery_reports(
        session,
        [
            # SendGrid's events name the send's X-Message-Id with a ``.filter…`` tail.
            report(angry.email, provider="sendgrid", report_id="a", reason=None,
                   outcome=ReportOutcome.COMPLAINED, provider_message_id="sg-1.filter0001.1.0"),
            report(leaving.email, provider="sendgrid", report_id="b", reason=None,
                   outcome=ReportOutcome.UNSUBSCRIBED, provider_message_id="sg-2"),
        ],
        policy=POLICY,
    )  # fmt: skip
    complained = suppression(session, angry.email_normalized)
    unsubscribed = suppression(session, leaving.email_normalized)
    assert complained is not None
    assert unsubscribed is not None
    assert (complained.reason, complained.provider, complained.campaign_id) == (
        "complained", "sendgrid", campaign.id,
    )  # fmt: skip
    assert (unsubscribed.reason, unsubscribed.provider) == ("unsubscribed", "sendgrid")
    stats = get_campaign_view(session, campaign_id=campaign.id).stats
    assert (stats["complained"], stats["unsubscribed"], stats["reported_complained"]) == (1, 1, 1)
    assert stats["reported_bounced"] == 0


def test_a_later_bounce_does_not_take_back_a_complaint(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    contact, _ = campaign_message(session, campaign_id=campaign.id, provider_id="pm-7")
    apply_delivery_reports(
        session,
        [
            report(contact.email, provider="postmark", report_id="1", provider_message_id="pm-7",
                   outcome=ReportOutcome.COMPLAINED),
            report(contact.email, provider="postmark", report_id="2", provider_message_id="pm-7"),
        ],
        policy=POLICY,
    )  # fmt: skip
    assert session.scalars(select(m.SentMessage.report_outcome)).one() == "complained"


def test_a_case_reply_is_found_by_its_provider_id_or_its_message_id(session: Session) -> None:
    contact = ContactFactory()
    case = SupportCaseFactory(customer_id=contact.customer_id, contact_id=contact.id)
    tokens = CaseTokens.from_secret("s" * 32)
    replies = []
    for n in range(2):
        activity, _ = prepare_reply(
            session, case_id=case.id, body=f"Reply {n}", html=None, sender="help@shop.example",
            case_tokens=tokens,
        )  # fmt: skip
        record_delivery(
            session, activity_id=activity.id, delivery="sent", provider_id=f"<pm-{n}>", error=None
        )
        replies.append(activity)
    session.flush()
    apply_delivery_reports(
        session,
        [
            report(contact.email, provider="postmark", report_id="x", provider_message_id="pm-0"),
            report(contact.email, provider="mailgun", report_id="y", permanent=False,
                   message_id=f"<{replies[1].message_id}>"),
        ],
        policy=POLICY,
    )  # fmt: skip
    first, second = reported(session)
    assert (first.support_case_id, second.support_case_id) == (case.id, case.id)
    assert first.details["sent_activity_id"] == replies[0].id
    assert second.details["sent_activity_id"] == replies[1].id
    assert second.details["kind"] == "case_reply"
    session.refresh(replies[0])
    assert replies[0].details["delivery_report"] == "bounced"


def test_a_report_of_a_message_we_did_not_send_changes_nothing(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    contact, message_id = campaign_message(session, campaign_id=campaign.id, provider_id="mg-1")
    stranger = ContactFactory()
    touched = apply_delivery_reports(
        session,
        [
            report(contact.email, report_id="1", provider_message_id="mg-unknown"),
            # Someone else's address, quoting our message: not believed.
            report(stranger.email, report_id="2", message_id=f"<{message_id}>"),
            report(contact.email, report_id="3"),
        ],
        policy=POLICY,
    )
    assert touched == []
    assert session.scalar(select(func.count()).select_from(m.Suppression)) == 0
    assert reported(session) == []
    query = select(m.AppliedDeliveryReport.report_id, m.AppliedDeliveryReport.result)
    results = {report_id: result for report_id, result in session.execute(query)}
    assert results == {
        "1": "mg-unknown is not a message this platform sent",
        "2": f"names {stranger.email_normalized}, but <{message_id}> was sent to"
        f" {contact.email_normalized}",
        "3": "names no message: neither the provider's message id nor a Message-ID",
    }


def test_an_acknowledgement_sent_through_postmark_is_found_by_its_message_id(
    committed_db: Engine, tmp_path: Path
) -> None:
    sessions = make_session_factory(committed_db)
    with sessions.begin() as session:
        receive(session, request(1))
    with sessions() as session:
        [pending] = pending_deliveries(session)
    cert, key = self_signed_certificate(tmp_path)
    with running_provider_api("postmark", tls=server_tls_context(cert, key)) as fake:
        backend = backend_from_url(mail_url(fake, cert))
        assert deliver_pending(sessions, backend, activity_id=pending, sender=SENDER) == "sent"
    [postmark_id] = fake.ids
    with sessions.begin() as session:
        complaint = report(
            "ann@client.example", provider="postmark", report_id="42",
            outcome=ReportOutcome.COMPLAINED, provider_message_id=postmark_id,
        )  # fmt: skip
        apply_delivery_reports(session, [complaint], policy=POLICY)
    with sessions() as session:
        ack = session.get_one(m.Activity, pending)
        [noted] = reported(session)
        row = suppression(session, "ann@client.example")
        assert (ack.details["delivery_report"], ack.details["provider_id"]) == (
            "complained", postmark_id,
        )  # fmt: skip
        assert (noted.support_case_id, noted.details["kind"]) == (ack.support_case_id, "auto_ack")
        assert row is not None
        assert (row.reason, row.provider) == ("complained", "postmark")
