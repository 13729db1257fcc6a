"""GET /api/suppressions: why an address gets no campaign mail, behind the API key."""

from __future__ import annotations

from flask import Flask

from crm_core.bounces.models import SentKind, SuppressionReason
from crm_core.bounces.services import BouncePolicy, SentRecord, apply_bounce, record_sent
from crm_core.bounces.suppression import suppress
from crm_core.mail import Bounce, BouncedRecipient
from tests.webhooks.conftest import Sender
from tests.webhooks.test_api import get

__all__ = ["get"]


def _bounced(app: Flask) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        record_sent(
            session, [SentRecord("<c.1@acme.test>", "Gone@Client.example", SentKind.CAMPAIGN)]
        )
        bounce = Bounce(
            recipients=(
                BouncedRecipient("gone@client.example", status="5.1.1", diagnostic="gone"),
            ),
            original_message_id="c.1@acme.test",
            is_report=True,
        )
        apply_bounce(session, bounce=bounce, report_key="dsn.1@mx", policy=BouncePolicy())
        suppress(
            session, email_normalized="left@client.example", reason=SuppressionReason.UNSUBSCRIBED
        )


def test_suppressions_need_an_api_key(sender: Sender) -> None:
    assert sender.client.get("/api/suppressions").status_code == 401


def test_an_address_shows_why_it_is_suppressed(app: Flask, get) -> None:
    _bounced(app)
    [item] = get("/api/suppressions", email=" GONE@client.example").json["items"]
    assert (item["email"], item["reason"], item["detail"]) == (
        "gone@client.example",
        "bounced",
        "5.1.1 gone",
    )
    [failure] = item["bounces"]
    assert (failure["original_message_id"], failure["permanent"]) == ("c.1@acme.test", True)
    assert get("/api/suppressions", email="nobody@client.example").json == {
        "items": [],
        "next": None,
    }
    page = get("/api/suppressions", limit="1").json
    rest = get("/api/suppressions", cursor=page["next"]).json
    assert [i["email"] for i in page["items"] + rest["items"]] == [
        "gone@client.example",
        "left@client.example",
    ]
    assert get("/api/suppressions", cursor="W10").status_code == 400
