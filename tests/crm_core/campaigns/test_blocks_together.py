"""The campaign blocks composed as a sender will: segment, render, sign, build, send."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.suppression import suppress
from crm_core.campaigns.segments import parse_segment, segment_query
from crm_core.campaigns.templates import compile_templates, contact_context, customer_context
from crm_core.campaigns.unsubscribe import (
    UNSUBSCRIBE_PATH,
    make_unsubscribe_token,
    make_unsubscribe_url,
    read_unsubscribe_token,
)
from crm_core.mail_transport.backends import backend_from_url
from crm_core.mail_transport.messages import OutboundMail, build_message
from tests.factories import ContactFactory, CustomerFactory
from tests.smtp_server import SmtpTestServer

KEY = "k" * 32


def test_a_segment_is_rendered_signed_and_delivered(
    session: Session, smtp_server: SmtpTestServer
) -> None:
    acme = CustomerFactory(name="Acme", country="DE")
    wanted = [ContactFactory(customer=acme, first_name=f"P{n}", tags=["spring"]) for n in range(3)]
    ContactFactory(customer=acme, tags=["autumn"])
    gone = ContactFactory(customer=acme, tags=["spring"])
    suppress(session, email_normalized=gone.email_normalized, reason="unsubscribed")
    session.flush()

    segment = parse_segment({"all": [{"field": "tags", "op": "contains", "value": "spring"}]})
    ids = list(session.scalars(segment_query(segment, exclude_suppressed=True)))
    assert ids == sorted(contact.id for contact in wanted)

    templates = compile_templates(
        subject="{{ contact.first_name }}, spring at {{ customer.name }}",
        text="Hi {{ contact.first_name }}. Leave: {{ unsubscribe_url }}",
        html="<p>Hi {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>leave</a>",
    )
    with backend_from_url(smtp_server.url()) as backend:
        for contact in session.scalars(select(m.Contact).where(m.Contact.id.in_(ids))):
            token = make_unsubscribe_token(secret_key=KEY, contact_id=contact.id, campaign_id=9)
            url = make_unsubscribe_url("https://crm.example", token)
            rendered = templates.render(
                contact=contact_context(contact),
                customer=customer_context(contact.customer),
                unsubscribe_url=url,
            )
            mail = OutboundMail(
                sender="Acme <news@acme.example>",
                to=contact.email or "",
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                unsubscribe_url=url,
            )
            backend.send(build_message(mail), idempotency_key=str(contact.id))

    received = smtp_server.handler.received
    assert sorted(mail.rcpt_tos[0] for mail in received) == sorted(c.email for c in wanted)
    assert smtp_server.handler.sessions == 1
    for mail in received:
        message = mail.message
        header_url = message["List-Unsubscribe"].strip("<>")
        assert header_url in message.get_body(("plain",)).get_content()
        token = header_url.split(UNSUBSCRIBE_PATH, 1)[1]
        claim = read_unsubscribe_token(token, secret_key=KEY, max_age=dt.timedelta(days=1))
        contact = session.get(m.Contact, claim.contact_id)
        assert contact is not None
        assert mail.rcpt_tos == [contact.email]
        assert message["Subject"] == f"{contact.first_name}, spring at Acme"
        assert claim.campaign_id == 9
