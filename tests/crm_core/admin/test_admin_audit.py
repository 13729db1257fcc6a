"""What admins change (campaigns, sources, mailboxes, subscriptions, the suppression list) is
checked against the actor's permission and leaves one audit entry, never with a secret."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.admin import campaigns, mailboxes, sources, subscriptions, suppressions
from crm_core.bounces.models import SuppressionReason
from crm_core.bounces.suppression import is_suppressed, suppress
from crm_core.people.audit import REDACTED
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied

OPERATOR = Actor.operator("tests")
# An agent's key with every scope: agents run no campaigns and manage nothing.
AGENT_KEY = Actor.for_key(
    key_id=7, name="agent", scopes=["read", "write", "send", "admin"], user_id=3, role="agent"
)
# A viewer's key: reads only, whatever scopes it was given.
READ_KEY = Actor.for_key(key_id=8, name="viewer", scopes=["read"], user_id=4, role="viewer")
LATER = dt.datetime(2031, 1, 1, 9, 0, tzinfo=dt.UTC)


def _entries(session: Session, entity: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
    return list(session.scalars(query))


def _campaign(session: Session, **extra: Any) -> int:
    values: dict[str, Any] = {"name": "Spring", "code": "spring", "subject": "Hi", "text": "T"}
    return campaigns.create_campaign(session, actor=OPERATOR, **(values | extra)).id


def test_each_campaign_step_is_audited_with_its_status_change(session: Session) -> None:
    campaign_id = _campaign(session)
    campaigns.schedule(session, actor=OPERATOR, campaign_id=campaign_id, send_at=LATER)
    campaigns.pause(session, actor=OPERATOR, campaign_id=campaign_id)
    campaigns.resume(session, actor=OPERATOR, campaign_id=campaign_id)
    assert campaigns.send_now(session, actor=OPERATOR, campaign_id=campaign_id)
    campaigns.cancel(session, actor=OPERATOR, campaign_id=campaign_id)
    campaigns.cancel(session, actor=OPERATOR, campaign_id=campaign_id)  # a no-op: no entry
    entries = _entries(session, "campaign")
    assert [e.action for e in entries] == [
        "create",
        "schedule",
        "pause",
        "resume",
        "send",
        "cancel",
    ]
    assert {e.entity_id for e in entries} == {campaign_id}
    assert {e.actor for e in entries} == {"operator:tests"}
    created = entries[0].changes
    assert created["status"] == {"before": None, "after": "draft"}
    assert created["subject"] == {"before": None, "after": "Hi"}
    assert entries[1].changes["status"] == {"before": "draft", "after": "scheduled"}
    assert entries[1].changes["send_at"] == {"before": None, "after": LATER.isoformat()}
    assert entries[2].changes == {"status": {"before": "scheduled", "after": "paused"}}
    assert entries[3].changes == {"status": {"before": "paused", "after": "scheduled"}}
    assert set(entries[4].changes) == {"send_at"}  # due now, still scheduled
    assert entries[5].changes == {"status": {"before": "scheduled", "after": "cancelled"}}


def test_filling_in_a_leads_empty_draft_shows_what_it_held(session: Session) -> None:
    from crm_core.campaigns.models import MarketingCampaign

    draft = MarketingCampaign(code="utm-x", name="utm-x", status="draft", segment={})
    session.add(draft)
    session.flush()
    campaign_id = _campaign(session, code="utm-x", name="From UTM")
    assert campaign_id == draft.id
    [entry] = _entries(session, "campaign")
    assert entry.changes["name"] == {"before": "utm-x", "after": "From UTM"}
    assert "code" not in entry.changes


def test_a_refused_campaign_step_changes_nothing_and_records_nothing(session: Session) -> None:
    campaign_id = _campaign(session)
    with pytest.raises(PermissionDenied):
        campaigns.send_now(session, actor=AGENT_KEY, campaign_id=campaign_id)
    with pytest.raises(PermissionDenied):
        campaigns.create_campaign(
            session, actor=AGENT_KEY, name="N", code="other", subject="S", text="T"
        )
    assert [e.action for e in _entries(session, "campaign")] == ["create"]


def test_sources_are_audited_and_their_secrets_never_are(session: Session) -> None:
    source, secret = sources.create_source(
        session, actor=OPERATOR, name="shop", rate_limit_per_minute=60
    )
    assert secret is not None
    sources.set_source_enabled(session, actor=OPERATOR, name="shop", enabled=False)
    sources.set_source_enabled(session, actor=OPERATOR, name="shop", enabled=False)  # no change
    rotated = sources.rotate_secret(
        session, actor=OPERATOR, name="shop", grace=dt.timedelta(hours=2)
    )
    entries = _entries(session, "source")
    assert [e.action for e in entries] == ["create", "update", "update"]
    assert {e.entity_id for e in entries} == {source.id}
    assert entries[0].changes["name"] == {"before": None, "after": "shop"}
    assert entries[0].changes["rate_limit_per_minute"] == {"before": None, "after": 60}
    assert entries[0].changes["secret"] == {"before": None, "after": REDACTED}
    assert entries[1].changes == {"enabled": {"before": True, "after": False}}
    assert entries[2].changes["secret"] == {"before": REDACTED, "after": REDACTED}
    assert entries[2].changes["grace_seconds"]["after"] == 7200
    logged = str([e.changes for e in entries])
    assert secret not in logged
    assert rotated not in logged
    with pytest.raises(PermissionDenied):
        sources.set_source_enabled(session, actor=AGENT_KEY, name="shop", enabled=True)


def test_mailboxes_are_audited_without_their_password(session: Session) -> None:
    password = "s3cret-imap-pass"
    view = mailboxes.add_mailbox(
        session, actor=OPERATOR, name="support", url=f"imaps://help:{password}@imap.example.com/"
    )
    assert mailboxes.remove_mailbox(session, actor=OPERATOR, name="support")
    assert not mailboxes.remove_mailbox(session, actor=OPERATOR, name="support")
    added, removed = _entries(session, "mailbox")
    assert (added.action, added.entity_id, removed.action) == ("create", view.id, "delete")
    assert added.changes["name"] == {"before": None, "after": "support"}
    assert added.changes["password"] == {"before": None, "after": REDACTED}
    assert removed.changes["url"] == {"before": view.url, "after": None}
    assert password not in str(added.changes) + str(removed.changes)
    with pytest.raises(PermissionDenied):
        mailboxes.remove_mailbox(session, actor=AGENT_KEY, name="support")


def test_subscriptions_are_audited_without_their_secret(session: Session) -> None:
    created = subscriptions.add_subscription(
        session, actor=OPERATOR, url="https://hooks.example/crm", events=["case.opened"]
    )
    assert subscriptions.remove_subscription(session, actor=OPERATOR, subscription_id=created.id)
    assert not subscriptions.remove_subscription(
        session, actor=OPERATOR, subscription_id=created.id
    )
    added, removed = _entries(session, "subscription")
    assert (added.action, removed.action) == ("create", "delete")
    assert added.entity_id == removed.entity_id == created.id
    assert added.changes["events"] == {"before": None, "after": ["case.opened"]}
    assert removed.changes["url"] == {"before": "https://hooks.example/crm", "after": None}
    assert created.secret not in str(added.changes) + str(removed.changes)
    with pytest.raises(PermissionDenied):
        subscriptions.add_subscription(
            session, actor=AGENT_KEY, url="https://hooks.example/x", events=["*"]
        )


def test_taking_an_address_off_the_suppression_list_is_audited_with_the_reason(
    session: Session,
) -> None:
    suppress(session, email_normalized="ann@example.com", reason=SuppressionReason.BOUNCED)
    with pytest.raises(PermissionDenied):
        suppressions.remove_suppression(
            session, actor=AGENT_KEY, email="ann@example.com", reason="fixed"
        )
    removed = suppressions.remove_suppression(
        session, actor=OPERATOR, email=" Ann@Example.com ", reason="mailbox fixed"
    )
    assert removed is not None
    assert not is_suppressed(session, email_normalized="ann@example.com")
    [entry] = _entries(session, "suppression")
    assert (entry.action, entry.actor) == ("delete", "operator:tests")
    assert entry.changes["email"] == {"before": "ann@example.com", "after": None}
    assert entry.changes["reason"] == {"before": "bounced", "after": None}
    assert entry.changes["removal_reason"] == {"before": None, "after": "mailbox fixed"}
    assert (
        suppressions.remove_suppression(
            session, actor=OPERATOR, email="ann@example.com", reason="x"
        )
        is None
    )
    assert len(_entries(session, "suppression")) == 1


def _failed_again(session: Session, event_id: int) -> int:
    from crm_core.ingestion.models import InboxEvent

    session.get_one(InboxEvent, event_id).status = "failed"
    session.flush()
    return event_id


def test_a_replay_is_audited_with_the_state_it_left(session: Session) -> None:
    from crm_core.admin.events import replay_event
    from tests.factories import InboxEventFactory

    event = InboxEventFactory(status="failed", attempts=3, error="boom")
    with pytest.raises(PermissionDenied):
        replay_event(session, actor=READ_KEY, event_id=event.id)
    replay_event(session, actor=OPERATOR, event_id=event.id)
    [entry] = _entries(session, "event")
    assert (entry.action, entry.entity_id, entry.actor) == ("replay", event.id, "operator:tests")
    # An agent works the failures: replaying writes CRM data, so ``write`` is what it takes.
    replay_event(session, actor=AGENT_KEY, event_id=_failed_again(session, event.id))
    assert [e.actor for e in _entries(session, "event")][-1] == "api_key:agent"

    assert entry.changes == {
        "status": {"before": "failed", "after": "received"},
        "attempts": {"before": 3, "after": 0},
        "error": {"before": "boom", "after": None},
    }
