"""Campaign services: creation checks, state rules, stats, unsubscribes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType
from crm_core.bounces.models import Suppression, SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.campaigns import services
from crm_core.campaigns.models import CampaignMember, CampaignSend, CampaignStatus, SendStatus
from crm_core.errors import InvalidInput
from tests.factories import ContactFactory, MarketingCampaignFactory


def _create(session: Session, **overrides: object) -> int:
    values: dict[str, object] = {
        "name": "Spring",
        "code": "spring-2026",
        "subject": "Hi {{ contact.first_name }}",
        "text": "Hello",
    }
    values.update(overrides)
    return services.create_campaign(session, **values).id  # type: ignore[arg-type]


def test_create_makes_a_draft_or_a_scheduled_campaign(session: Session) -> None:
    draft = _create(session)
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    scheduled = _create(session, code="later", send_at=later)
    assert services.get_campaign_view(session, campaign_id=draft).status == "draft"
    view = services.get_campaign_view(session, campaign_id=scheduled)
    assert (view.status, view.send_at) == ("scheduled", later)


def test_create_names_every_bad_field(session: Session) -> None:
    _create(session)
    with pytest.raises(InvalidInput) as caught:
        _create(
            session,
            name="",
            subject="{{ broken",
            segment={"all": [{"field": "nope", "op": "eq", "value": 1}]},
            send_at=dt.datetime(2030, 1, 1),  # naive
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {"name", "code", "subject", "segment.all.0.field", "send_at"}


@pytest.mark.parametrize(
    ("action", "start", "expected"),
    [
        ("pause", CampaignStatus.SCHEDULED, CampaignStatus.PAUSED),
        ("pause", CampaignStatus.SENDING, CampaignStatus.PAUSED),
        ("cancel", CampaignStatus.PAUSED, CampaignStatus.CANCELLED),
        ("cancel", CampaignStatus.CANCELLED, CampaignStatus.CANCELLED),
    ],
)
def test_allowed_transitions(
    session: Session, action: str, start: CampaignStatus, expected: CampaignStatus
) -> None:
    campaign = MarketingCampaignFactory(status=start)
    getattr(services, action)(session, campaign_id=campaign.id)
    assert campaign.status == expected


@pytest.mark.parametrize(
    ("action", "start"),
    [
        ("pause", CampaignStatus.DRAFT),
        ("resume", CampaignStatus.SENDING),
        ("cancel", CampaignStatus.SENT),
        ("send_now", CampaignStatus.PAUSED),
        ("send_now", CampaignStatus.CANCELLED),
    ],
)
def test_illegal_transitions_raise(session: Session, action: str, start: CampaignStatus) -> None:
    campaign = MarketingCampaignFactory(status=start)
    with pytest.raises(services.CampaignStateError):
        getattr(services, action)(session, campaign_id=campaign.id)
    assert campaign.status == start


def test_resume_goes_back_to_where_it_was(session: Session) -> None:
    fresh = MarketingCampaignFactory(status=CampaignStatus.PAUSED)
    started = MarketingCampaignFactory(
        status=CampaignStatus.PAUSED, started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    assert services.resume(session, campaign_id=fresh.id).status == "scheduled"
    assert services.resume(session, campaign_id=started.id).status == "sending"


def test_send_now_is_a_no_op_once_sending(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.DRAFT)
    assert services.send_now(session, campaign_id=campaign.id) is True
    assert campaign.status == "scheduled"
    assert campaign.send_at is not None
    campaign.status = CampaignStatus.SENDING
    assert services.send_now(session, campaign_id=campaign.id) is False
    assert campaign.status == "sending"


def test_schedule_checks_its_input(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    with pytest.raises(InvalidInput, match="cron"):
        services.schedule(
            session,
            campaign_id=campaign.id,
            send_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            cron="every day",
        )
    for bad in ("61 * * * *", "* * * *", "0 0 * * * *", "", 42):
        with pytest.raises(InvalidInput, match="cron"):
            services.schedule(session, campaign_id=campaign.id, send_at=None, cron=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="send_at"):
        services.schedule(session, campaign_id=campaign.id, send_at=None)
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    services.schedule(session, campaign_id=campaign.id, send_at=when, cron="0  9 * * 1")
    assert (campaign.status, campaign.send_at, campaign.schedule_cron) == (
        "scheduled",
        when,
        "0 9 * * 1",
    )
    # Without send_at the first run is the expression's next match.
    now = dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)  # a Tuesday
    services.schedule(session, campaign_id=campaign.id, send_at=None, cron="30 8 * * *", now=now)
    assert campaign.send_at == dt.datetime(2030, 1, 2, 8, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *"])
def test_a_cron_that_never_matches_is_refused(session: Session, cron: str) -> None:
    # Well formed, so croniter accepted it; the dispatcher then failed to schedule it.
    campaign = MarketingCampaignFactory()
    with pytest.raises(InvalidInput) as caught:
        services.schedule(session, campaign_id=campaign.id, send_at=None, cron=cron)
    assert [(e.field, e.msg) for e in caught.value.errors] == [
        ("cron", "never matches within 5 years")
    ]
    assert campaign.status == "draft"


@pytest.mark.parametrize(
    "send_at",
    [
        dt.datetime.fromisoformat("0001-01-01T00:00:00+01:00"),
        dt.datetime.fromisoformat("9999-12-31T23:00:00-01:00"),
        dt.datetime(1800, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_a_send_at_out_of_range_is_refused_naming_it(
    session: Session, send_at: dt.datetime
) -> None:
    campaign = MarketingCampaignFactory()
    for attempt in (
        lambda: services.schedule(session, campaign_id=campaign.id, send_at=send_at),
        lambda: services.create_campaign(
            session, name="N", code="far", subject="S", text="T", send_at=send_at
        ),
    ):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert [e.field for e in caught.value.errors] == ["send_at"]
        assert "between 1900-01-01" in caught.value.errors[0].msg


def test_a_failed_campaign_shows_why_and_can_be_scheduled_again(session: Session) -> None:
    campaign = MarketingCampaignFactory(
        status=CampaignStatus.FAILED, failure_reason="OverflowError: date value out of range"
    )
    view = services.get_campaign_view(session, campaign_id=campaign.id)
    assert (view.status, view.failure_reason) == ("failed", campaign.failure_reason)
    assert view.as_dict()["failure_reason"] == campaign.failure_reason
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    services.schedule(session, campaign_id=campaign.id, send_at=when)
    assert (campaign.status, campaign.failure_reason) == ("scheduled", None)


def test_unknown_campaign(session: Session) -> None:
    with pytest.raises(services.CampaignNotFoundError):
        services.get_campaign_view(session, campaign_id=987654)
    with pytest.raises(services.CampaignNotFoundError):
        services.pause(session, campaign_id=987654)


def test_stats_count_sends_and_suppressions(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING)
    statuses = [SendStatus.SENT] * 3 + [SendStatus.FAILED, SendStatus.UNKNOWN, SendStatus.PENDING]
    contacts = [ContactFactory() for _ in statuses]
    for contact, status in zip(contacts, statuses, strict=True):
        session.add(
            CampaignSend(
                campaign_id=campaign.id, contact_id=contact.id, email=contact.email, status=status
            )
        )
    suppress(
        session,
        email_normalized=contacts[0].email_normalized,
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    suppress(
        session, email_normalized=contacts[1].email_normalized, reason=SuppressionReason.BOUNCED
    )
    suppress(
        session, email_normalized=contacts[3].email_normalized, reason=SuppressionReason.MANUAL
    )
    session.flush()
    stats = services.get_campaign_view(session, campaign_id=campaign.id).stats
    assert stats == {
        "targeted": 6,
        "pending": 1,
        "sending": 0,
        "sent": 3,
        "failed": 1,
        "unknown": 1,
        "suppressed": 3,
        "unsubscribed": 1,
        "bounced": 1,
        "complained": 0,
        "reported_bounced": 0,
        "reported_complained": 0,
    }


def test_stats_read_only_the_suppressions_made_since_the_campaign_started(
    session: Session,
) -> None:
    """No send row is made for an address already on the list, so the stats join only the
    suppressions made since the campaign started (with an hour's slack), not every send."""
    started = dt.datetime(2031, 5, 1, 9, 0, tzinfo=dt.UTC)
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, started_at=started)
    contacts = [ContactFactory() for _ in range(3)]
    for contact in contacts:
        session.add(
            CampaignSend(
                campaign_id=campaign.id,
                contact_id=contact.id,
                email=contact.email,
                status=SendStatus.SENT,
            )
        )
    made = {
        0: started - dt.timedelta(days=30),  # before: cannot have been materialized
        1: started - dt.timedelta(minutes=30),  # within the slack: counted
        2: started + dt.timedelta(hours=2),  # after it started: counted
    }
    for index, reason in enumerate(
        (SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED, SuppressionReason.UNSUBSCRIBED)
    ):
        suppress(session, email_normalized=contacts[index].email_normalized, reason=reason)
        session.flush()
        session.execute(
            update(Suppression)
            .where(Suppression.email_normalized == contacts[index].email_normalized)
            .values(created_at=made[index])
        )
    stats = services.campaign_stats(session, campaign_id=campaign.id)
    assert (stats["suppressed"], stats["bounced"], stats["complained"], stats["unsubscribed"]) == (
        2,
        0,
        1,
        1,
    )


def test_unsubscribe_suppresses_once_with_one_activity(session: Session) -> None:
    campaign = MarketingCampaignFactory()
    contact = ContactFactory()
    first = services.record_unsubscribe(session, contact_id=contact.id, campaign_id=campaign.id)
    again = services.record_unsubscribe(session, contact_id=contact.id, campaign_id=campaign.id)
    assert (first, again) == (True, False)
    count = session.scalar(
        select(func.count())
        .select_from(Activity)
        .where(Activity.contact_id == contact.id, Activity.type == ActivityType.UNSUBSCRIBED)
    )
    assert count == 1


def test_unsubscribe_of_a_deleted_contact_is_quiet(session: Session) -> None:
    assert services.record_unsubscribe(session, contact_id=987654, campaign_id=None) is False


def test_a_campaign_a_lead_created_cannot_be_sent_until_it_is_written(session: Session) -> None:
    from crm_core.leads.attribution import campaigns_for_codes, record_responses

    draft = campaigns_for_codes(session, codes=["spring-ads"])["spring-ads"]
    customer_id = ContactFactory().customer_id
    record_responses(session, pairs=[(draft.id, customer_id)])
    for attempt in (
        lambda: services.send_now(session, campaign_id=draft.id),
        lambda: services.schedule(
            session, campaign_id=draft.id, send_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        ),
    ):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert {error.field for error in caught.value.errors} == {"subject", "text"}
    assert services.get_campaign_view(session, campaign_id=draft.id).status == "draft"

    # Creating the campaign with that code writes the draft: same id, same credited leads.
    written = _create(session, name="Spring ads", code="spring-ads")
    assert written == draft.id
    assert services.send_now(session, campaign_id=written)
    view = services.get_campaign_view(session, campaign_id=written)
    assert (view.name, view.subject, view.status) == (
        "Spring ads",
        "Hi {{ contact.first_name }}",
        "scheduled",
    )
    members = session.scalars(select(func.count()).select_from(CampaignMember)).one()
    assert members == 1


def test_a_written_campaign_keeps_its_code(session: Session) -> None:
    _create(session, code="taken")
    with pytest.raises(InvalidInput) as caught:
        _create(session, code="taken")
    assert [error.field for error in caught.value.errors] == ["code"]


@pytest.mark.parametrize("field", ["subject", "text"])
def test_a_blank_subject_or_text_is_refused(session: Session, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(session, **{field: "  "})
    assert [error.field for error in caught.value.errors] == [field]
