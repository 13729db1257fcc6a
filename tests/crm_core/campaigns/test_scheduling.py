"""Dispatch on both backends: due claims, materialization, batch claims, crash recovery."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core.bounces.models import SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.campaigns import scheduling, services
from crm_core.campaigns.models import CampaignSend, CampaignStatus, SendStatus
from crm_core.db import utcnow
from crm_core.models import MarketingCampaign
from tests.factories import ContactFactory, MarketingCampaignFactory

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _statuses(session: Session, campaign_id: int) -> dict[int, str]:
    rows = session.execute(
        select(CampaignSend.contact_id, CampaignSend.status).where(
            CampaignSend.campaign_id == campaign_id
        )
    )
    return {contact_id: status for contact_id, status in rows}


def test_only_due_scheduled_campaigns_are_claimed_once(session: Session) -> None:
    due = MarketingCampaignFactory(status=CampaignStatus.SCHEDULED, send_at=NOW)
    MarketingCampaignFactory(status=CampaignStatus.SCHEDULED, send_at=NOW + dt.timedelta(1))
    MarketingCampaignFactory(status=CampaignStatus.PAUSED, send_at=NOW)
    MarketingCampaignFactory(status=CampaignStatus.DRAFT)
    assert scheduling.claim_due_campaigns(session, now=NOW) == [due.id]
    assert scheduling.claim_due_campaigns(session, now=NOW) == []
    session.expire_all()
    campaign = session.get(MarketingCampaign, due.id)
    assert campaign is not None
    assert (campaign.status, campaign.started_at) == ("sending", NOW)


def test_materialize_targets_the_segment_minus_suppressed_and_is_idempotent(
    session: Session,
) -> None:
    wanted = [ContactFactory(tags=["vip"]) for _ in range(3)]
    unsubscribed = ContactFactory(tags=["vip"])
    ContactFactory(tags=["vip"], email=None, email_normalized=None)
    ContactFactory(tags=["other"])
    suppress(
        session,
        email_normalized=unsubscribed.email_normalized,
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    campaign = MarketingCampaignFactory(
        status=CampaignStatus.SENDING,
        segment={"all": [{"field": "tags", "op": "contains", "value": "vip"}]},
    )
    assert scheduling.materialize_recipients(session, campaign=campaign, now=NOW) == 3
    assert scheduling.materialize_recipients(session, campaign=campaign, now=NOW) == 0
    assert _statuses(session, campaign.id) == {c.id: "pending" for c in wanted}


def test_batches_claim_disjoint_rows_of_sending_campaigns_only(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    contacts = [ContactFactory() for _ in range(5)]
    scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    first = scheduling.claim_batch(session, campaign_id=campaign.id, size=3, now=NOW)
    second = scheduling.claim_batch(session, campaign_id=campaign.id, size=3, now=NOW)
    third = scheduling.claim_batch(session, campaign_id=campaign.id, size=3, now=NOW)
    assert len(first) == 3
    assert len(second) == 2
    assert third == []
    assert {row.contact_id for row in first + second} == {c.id for c in contacts}
    assert set(_statuses(session, campaign.id).values()) == {"sending"}

    paused = MarketingCampaignFactory(status=CampaignStatus.PAUSED)
    assert scheduling.claim_batch(session, campaign_id=paused.id, size=3, now=NOW) == []


def test_a_row_suppressed_after_materializing_fails_instead_of_sending(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    kept, left = ContactFactory(), ContactFactory()
    scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    suppress(session, email_normalized=left.email_normalized, reason=SuppressionReason.BOUNCED)
    claimed = scheduling.claim_batch(session, campaign_id=campaign.id, size=10, now=NOW)
    assert [row.contact_id for row in claimed] == [kept.id]
    assert _statuses(session, campaign.id)[left.id] == "failed"


def test_rows_left_sending_become_unknown_and_are_never_claimed_again(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    for _ in range(4):
        ContactFactory()
    scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    crashed = scheduling.claim_batch(session, campaign_id=campaign.id, size=2, now=NOW)
    later = NOW + dt.timedelta(minutes=10)
    fresh = scheduling.claim_batch(session, campaign_id=campaign.id, size=1, now=later)
    recovered = scheduling.recover_stale_sending(
        session, older_than=dt.timedelta(minutes=5), now=later
    )
    assert recovered == 2
    statuses = _statuses(session, campaign.id)
    assert [statuses[row.contact_id] for row in crashed] == ["unknown", "unknown"]
    assert statuses[fresh[0].contact_id] == "sending"
    rest = scheduling.claim_batch(session, campaign_id=campaign.id, size=10, now=later)
    assert len(rest) == 1
    assert {row.id for row in rest}.isdisjoint({row.id for row in crashed})


def test_complete_only_when_nothing_is_pending_or_sending(session: Session) -> None:
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    ContactFactory()
    scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    assert scheduling.has_pending(session, campaign_id=campaign.id)
    assert not scheduling.complete_if_done(session, campaign_id=campaign.id, now=NOW)
    [_row] = scheduling.claim_batch(session, campaign_id=campaign.id, size=10, now=NOW)
    assert not scheduling.has_pending(session, campaign_id=campaign.id)
    assert not scheduling.complete_if_done(session, campaign_id=campaign.id, now=NOW)
    scheduling.recover_stale_sending(session, older_than=dt.timedelta(0), now=utcnow())
    assert scheduling.complete_if_done(session, campaign_id=campaign.id, now=NOW)
    session.expire_all()
    assert session.get(MarketingCampaign, campaign.id).status == "sent"  # type: ignore[union-attr]


def test_stalled_campaigns_are_found(session: Session) -> None:
    campaign = MarketingCampaignFactory(
        status=CampaignStatus.SENDING, segment={}, started_at=NOW - dt.timedelta(hours=1)
    )
    ContactFactory()
    scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    idle = dt.timedelta(minutes=5)
    assert campaign.id in scheduling.stalled_campaigns(session, idle_for=idle, now=NOW)
    scheduling.claim_batch(session, campaign_id=campaign.id, size=0, now=NOW)
    assert campaign.id in scheduling.stalled_campaigns(session, idle_for=idle, now=NOW)
    assert SendStatus.PENDING in set(_statuses(session, campaign.id).values())


def test_finished_campaigns_complete_even_when_their_last_batch_died(session: Session) -> None:
    crashed = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    ContactFactory()
    scheduling.materialize_recipients(session, campaign=crashed, now=NOW)
    busy = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    scheduling.materialize_recipients(session, campaign=busy, now=NOW)
    empty = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={"any": []})
    scheduling.claim_batch(session, campaign_id=crashed.id, size=10, now=NOW)
    scheduling.recover_stale_sending(session, older_than=dt.timedelta(0), now=utcnow())
    assert scheduling.complete_finished_campaigns(session, now=NOW) == sorted(
        [crashed.id, empty.id]
    )
    assert scheduling.complete_finished_campaigns(session, now=NOW) == []
    assert scheduling.has_pending(session, campaign_id=busy.id)


def _run_to_the_end(session: Session, campaign_id: int, now: dt.datetime) -> list[int]:
    """Claim (if due), materialize, 'send' every row and complete; the contacts of the run."""
    for claimed in scheduling.claim_due_campaigns(session, now=now):
        campaign = session.get(MarketingCampaign, claimed)
        assert campaign is not None
        session.refresh(campaign)
        scheduling.materialize_recipients(session, campaign=campaign, now=now)
    rows = scheduling.claim_batch(session, campaign_id=campaign_id, size=1000, now=now)
    session.execute(
        update(CampaignSend)
        .where(CampaignSend.id.in_([r.id for r in rows]))
        .values(status=SendStatus.SENT)
    )
    scheduling.complete_finished_campaigns(session, now=now)
    session.expire_all()
    return sorted(r.contact_id for r in rows)


def test_a_recurring_campaign_sends_once_per_run_and_schedules_the_next(
    session: Session,
) -> None:
    contacts = sorted(ContactFactory().id for _ in range(3))
    campaign = MarketingCampaignFactory(status=CampaignStatus.DRAFT, segment={})
    services.schedule(session, campaign_id=campaign.id, send_at=None, cron="0 9 * * *", now=NOW)
    first_due = dt.datetime(2026, 6, 2, 9, tzinfo=dt.UTC)
    assert (campaign.status, campaign.send_at) == ("scheduled", first_due)
    assert scheduling.claim_due_campaigns(session, now=NOW) == []  # not yet

    assert _run_to_the_end(session, campaign.id, first_due) == contacts
    campaign = session.get(MarketingCampaign, campaign.id)
    assert campaign is not None
    # The run is over: the next one is scheduled, in the same transaction.
    assert (campaign.status, campaign.current_run) == ("scheduled", 2)
    assert campaign.send_at == first_due + dt.timedelta(days=1)
    # Completing again, as a second dispatcher would, changes nothing.
    assert scheduling.complete_finished_campaigns(session, now=first_due) == []

    second_due = first_due + dt.timedelta(days=1)
    assert _run_to_the_end(session, campaign.id, second_due) == contacts
    runs = session.execute(
        select(CampaignSend.run, CampaignSend.contact_id).where(
            CampaignSend.campaign_id == campaign.id
        )
    ).all()
    assert sorted(runs) == [(1, c) for c in contacts] + [(2, c) for c in contacts]


def test_a_dispatcher_back_after_missed_runs_starts_one_catch_up_run(session: Session) -> None:
    ContactFactory()
    campaign = MarketingCampaignFactory(status=CampaignStatus.DRAFT, segment={})
    services.schedule(session, campaign_id=campaign.id, send_at=NOW, cron="0 * * * *")
    # Down for five hours: one run now, then the next full hour, not five runs.
    back = NOW + dt.timedelta(hours=5, minutes=10)
    assert len(_run_to_the_end(session, campaign.id, back)) == 1
    campaign = session.get(MarketingCampaign, campaign.id)
    assert campaign is not None
    assert campaign.send_at == NOW + dt.timedelta(hours=6)
    assert campaign.current_run == 2
    assert scheduling.claim_due_campaigns(session, now=back) == []


def test_a_one_off_campaign_ends_sent(session: Session) -> None:
    ContactFactory()
    campaign = MarketingCampaignFactory(status=CampaignStatus.SCHEDULED, send_at=NOW, segment={})
    _run_to_the_end(session, campaign.id, NOW)
    campaign = session.get(MarketingCampaign, campaign.id)
    assert campaign is not None
    assert (campaign.status, campaign.current_run) == ("sent", 1)


def test_a_stored_cron_with_no_next_run_fails_its_campaign_and_no_other(session: Session) -> None:
    # Stored before crons were checked: "0 0 30 2 *" is well formed but never matches.
    ContactFactory()
    never = MarketingCampaignFactory(
        status=CampaignStatus.SCHEDULED, send_at=NOW, segment={}, schedule_cron="0 0 30 2 *"
    )
    daily = MarketingCampaignFactory(
        status=CampaignStatus.SCHEDULED, send_at=NOW, segment={}, schedule_cron="0 9 * * *"
    )
    _run_to_the_end(session, never.id, NOW)
    _run_to_the_end(session, daily.id, NOW)
    never_row = session.get(MarketingCampaign, never.id)
    daily_row = session.get(MarketingCampaign, daily.id)
    assert never_row is not None
    assert daily_row is not None
    assert never_row.status == "failed"
    assert never_row.failure_reason is not None
    assert "cron '0 0 30 2 *' has no next run" in never_row.failure_reason
    assert (daily_row.status, daily_row.current_run) == ("scheduled", 2)
    # Scheduled again with a cron that matches, its next run reaches everyone again.
    services.schedule(session, campaign_id=never.id, send_at=NOW, cron="0 9 * * *")
    assert len(_run_to_the_end(session, never.id, NOW)) == 1


def test_start_claims_and_materializes_one_campaign_and_fail_keeps_a_paused_one(
    session: Session,
) -> None:
    contact = ContactFactory()
    due = MarketingCampaignFactory(status=CampaignStatus.SCHEDULED, send_at=NOW, segment={})
    later = MarketingCampaignFactory(
        status=CampaignStatus.SCHEDULED, send_at=NOW + dt.timedelta(1), segment={}
    )
    assert scheduling.due_campaigns(session, now=NOW) == [due.id]
    assert scheduling.start_campaign(session, campaign_id=due.id, now=NOW) is True
    assert scheduling.start_campaign(session, campaign_id=due.id, now=NOW) is False
    assert scheduling.start_campaign(session, campaign_id=later.id, now=NOW) is False
    assert _statuses(session, due.id) == {contact.id: "pending"}

    paused = MarketingCampaignFactory(status=CampaignStatus.PAUSED)
    assert scheduling.fail_campaign(session, campaign_id=paused.id, reason="x", now=NOW) is False
    assert scheduling.fail_campaign(session, campaign_id=later.id, reason="why", now=NOW) is True
    session.expire_all()
    assert (paused.status, later.status, later.failure_reason) == ("paused", "failed", "why")


def test_requiring_consent_materializes_only_contacts_who_granted_it(session: Session) -> None:
    granted = ContactFactory(marketing_consent="granted", marketing_consent_at=NOW)
    denied = ContactFactory(marketing_consent="denied", marketing_consent_at=NOW)
    unknown = ContactFactory(marketing_consent="unknown")
    never = ContactFactory()
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    assert (
        scheduling.materialize_recipients(session, campaign=campaign, now=NOW, require_consent=True)
        == 1
    )
    assert _statuses(session, campaign.id) == {granted.id: "pending"}
    # Without the requirement every contact of the segment is a recipient.
    other = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    assert scheduling.materialize_recipients(session, campaign=other, now=NOW) == 4
    assert set(_statuses(session, other.id)) == {granted.id, denied.id, unknown.id, never.id}


def test_starting_a_campaign_passes_the_consent_requirement_on(session: Session) -> None:
    granted = ContactFactory(marketing_consent="granted")
    ContactFactory()
    campaign = MarketingCampaignFactory(status=CampaignStatus.SCHEDULED, send_at=NOW, segment={})
    assert scheduling.start_campaign(
        session, campaign_id=campaign.id, now=NOW, require_consent=True
    )
    assert _statuses(session, campaign.id) == {granted.id: "pending"}
