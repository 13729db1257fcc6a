"""A MIME bomb posted as message/rfc822 is a 422 naming the body, counted before any parse."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from crm_core.ingestion.models import InboxEvent
from tests.crm_core.mail.test_structure import empty_parts
from tests.webhooks.conftest import Sender


def test_a_message_of_30000_empty_parts_is_422(app: Flask, sender: Sender) -> None:
    bomb = empty_parts(30_000)  # 210 KB, under the test app's 256 KB body limit
    response = sender.post("emails", bomb, content_type="message/rfc822")
    assert response.status_code == 422
    assert response.json["type"] == "/problems/invalid-payload"
    [error] = response.json["errors"]
    assert error["field"] == "body"
    assert "more than 500 MIME parts" in error["message"]
    with app.extensions["crm"].sessions() as session:
        event = session.scalars(select(InboxEvent)).one()
        assert (event.status, event.body) == ("invalid", bomb)
