"""An erased address stays on the suppression list as a keyed hash, and campaigns refuse it
until the person (a new contact) opts in again."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from crm_core.bounces.models import SuppressionReason
from crm_core.bounces.suppression import erased_address_token, erased_among, suppress
from crm_core.campaigns import scheduling
from crm_core.campaigns.models import CampaignSend, CampaignStatus
from tests.factories import ContactFactory, MarketingCampaignFactory

SECRET = "erasure test secret"
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def test_the_token_is_keyed_and_ignores_case() -> None:
    token = erased_address_token(secret_key=SECRET, email_normalized="Ada@Example.com ")
    assert token == erased_address_token(secret_key=SECRET, email_normalized="ada@example.com")
    assert token.startswith("erased:")
    assert "ada" not in token
    assert token != erased_address_token(secret_key="another", email_normalized="ada@example.com")


def test_a_campaign_batch_refuses_an_erased_address_until_consent_is_given_again(
    session: Session,
) -> None:
    token = erased_address_token(secret_key=SECRET, email_normalized="back@example.com")
    suppress(session, email_normalized=token, reason=SuppressionReason.ERASED)
    session.flush()
    assert set(erased_among(session, secret_key=SECRET, addresses=["back@example.com"])) == {
        "back@example.com"
    }
    returned = ContactFactory(email="back@example.com", email_normalized="back@example.com")
    other = ContactFactory(email="other@example.com", email_normalized="other@example.com")
    campaign = MarketingCampaignFactory(status=CampaignStatus.SENDING, segment={})
    session.flush()
    for contact in (returned, other):
        session.add(
            CampaignSend(campaign_id=campaign.id, contact_id=contact.id, email=contact.email)
        )
    session.flush()
    claimed = scheduling.claim_batch(
        session, campaign_id=campaign.id, size=10, now=NOW, secret_key=SECRET
    )
    assert [c.email for c in claimed] == ["other@example.com"]
    refused = session.query(CampaignSend).filter_by(contact_id=returned.id).one()
    assert (refused.status, refused.error) == ("failed", scheduling.ERASED_ERROR)

    # Opted in again after the erasure: a new person who may be mailed.
    returned.marketing_consent = "granted"
    returned.marketing_consent_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    session.add(
        CampaignSend(campaign_id=campaign.id, contact_id=returned.id, email=returned.email, run=2)
    )
    session.flush()
    again = scheduling.claim_batch(
        session, campaign_id=campaign.id, size=10, now=NOW, secret_key=SECRET
    )
    assert [c.email for c in again] == ["back@example.com"]
