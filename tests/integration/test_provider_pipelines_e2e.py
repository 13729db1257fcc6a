"""Each provider's webhooks end to end: signed as the provider signs them, through gunicorn, the
real Redis and one real worker (for the whole module) into PostgreSQL.

For WooCommerce, Stripe, Zendesk, Freshdesk and Typeform: a correctly signed event is
processed; a wrongly signed one is refused (401) and stored nowhere; a redelivery of the same
event is answered again and processed once; an older update that arrives after a newer one
rolls nothing back; a topic the platform does not handle is stored as ``ignored`` with a 2xx.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import migrate as schema
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.provider_requests import (
    freshdesk_headers,
    provider_fixture,
    stripe_headers,
    typeform_headers,
    woocommerce_headers,
    zendesk_headers,
)
from tests.services import (
    REDIS_URL,
    postgres_reason,
    redis_reason,
    scratch_postgres_database,
    unavailable,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

Document = dict[str, Any]
SECRETS = {
    "woocommerce": "ck-webhook-secret: q7!R2s",
    "stripe": "whsec_2b7e151628aed2a6abf7158809cf4f3c",
    "zendesk": "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ",
    "typeform": "a long random typeform secret",
}


def load(path: str) -> Document:
    document: Document = json.loads(provider_fixture(path))
    return document


@dataclass(frozen=True)
class Platform:
    base: str
    sessions: sessionmaker[Session]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One web app and one worker on a scratch PostgreSQL database, for the whole module."""
    for what, reason in (("PostgreSQL", postgres_reason()), ("Redis", redis_reason())):
        if reason:
            unavailable(what, reason)
    var = tmp_path_factory.mktemp("providers-e2e")
    with scratch_postgres_database("crm_providers_all_e2e") as url:
        schema.upgrade(url)
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=REDIS_URL,
            CRM_BROKER_KEY_PREFIX=f"e2e-{uuid.uuid4().hex}:",
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="e2e-secret",
            CRM_VAR_DIR=str(var),
        )
        engine = make_engine(url, keyring=TEST_KEYRING)
        try:
            with (
                web_app(env) as base,
                celery_worker(env, queues="ingest", log_path=var / "worker.log"),
            ):
                yield Platform(base, make_session_factory(engine))
        finally:
            engine.dispose()


# --- each provider: how it signs, and what it sends ---------------------------------------


def woocommerce(secret: str, topic: str, body: bytes) -> dict[str, str]:
    # WooCommerce keeps one delivery id for a retried delivery: the same body, the same id.
    delivery = hashlib.sha256(body).hexdigest()[:16]
    return woocommerce_headers(secret, body, topic=topic, delivery_id=delivery)


def by_body(sign: Callable[[str, bytes], dict[str, str]]) -> Callable[..., dict[str, str]]:
    """A provider whose topic is in the body."""
    return lambda secret, topic, body: sign(secret, body)


def freshdesk(secret: str, topic: str, body: bytes) -> dict[str, str]:
    return freshdesk_headers(secret)


def woo_order(status: str, modified: str) -> Document:
    document = load("woocommerce/order_created.json")
    return {**document, "status": status, "date_modified_gmt": modified}


def freshdesk_ticket(status: str, updated: str) -> Document:
    document = copy.deepcopy(load("freshdesk/ticket_created.json"))
    document["freshdesk_webhook"].update(ticket_status=status, ticket_updated_at=updated)
    return document


def typeform_response(event_id: str, submitted: str) -> Document:
    document = copy.deepcopy(load("typeform/form_response.json"))
    document["event_id"] = event_id
    document["form_response"].update(token=event_id.lower(), submitted_at=submitted)
    return document


def one(session: Session, model: Any, source_id: int) -> Any:
    return session.scalars(select(model).where(model.source_id == source_id)).one()


def stale_updates(session: Session, source_id: int) -> int:
    events = select(InboxEvent.id).where(InboxEvent.source_id == source_id)
    query = select(func.count(m.Activity.id)).where(
        m.Activity.type == m.ActivityType.STALE_UPDATE, m.Activity.event_id.in_(events)
    )
    return session.scalar(query) or 0


def leads_of(session: Session, source_id: int) -> tuple[int, int]:
    """The contacts the source's leads made, and their lead_captured Activities."""
    events = select(InboxEvent.id).where(InboxEvent.source_id == source_id)
    activities = session.scalars(
        select(m.Activity).where(
            m.Activity.type == "lead_captured", m.Activity.event_id.in_(events)
        )
    ).all()
    return len({a.contact_id for a in activities}), len(activities)


@dataclass(frozen=True)
class Provider:
    name: str
    sign: Callable[[str, str, bytes], dict[str, str]]
    handled: tuple[str, Document]
    # What the handled event made, counted for the source: one row, however often it came.
    made: Callable[[Session, int], Any]
    newer: tuple[str, Document]
    older: tuple[str, Document]
    # Whether the end state is the newer update's, after the older one came last.
    newest_stands: Callable[[Session, int], bool]
    unhandled: tuple[str, Document] | None


PROVIDERS = [
    Provider(
        "woocommerce",
        woocommerce,
        ("order.created", load("woocommerce/order_created.json")),
        lambda s, source: one(s, m.Order, source).total == Decimal("46.55"),
        ("order.updated", woo_order("completed", "2026-11-30T17:20:00")),
        ("order.created", woo_order("processing", "2026-11-30T15:02:13")),
        lambda s, source: (
            one(s, m.Order, source).status == "fulfilled" and stale_updates(s, source) == 1
        ),
        ("product.created", {"id": 88, "name": "Sencha", "type": "simple"}),
    ),
    Provider(
        "stripe",
        by_body(stripe_headers),
        ("checkout.session.completed", load("stripe/checkout_session_completed.json")),
        lambda s, source: one(s, m.Order, source).status == "paid",
        # The refund comes first: it waits (retried) until its order is there.
        ("charge.refunded", load("stripe/charge_refunded.json")),
        ("checkout.session.completed", load("stripe/checkout_session_completed.json")),
        lambda s, source: (
            (one(s, m.Order, source).status, one(s, m.Order, source).refunded_total)
            == ("partially_refunded", Decimal("14.58"))
        ),
        ("payment_intent.created", load("stripe/payment_intent_created.json")),
    ),
    Provider(
        "zendesk",
        by_body(zendesk_headers),
        ("zen:event-type:ticket.created", load("zendesk/ticket_created.json")),
        lambda s, source: one(s, m.SupportCase, source).status == "new",
        ("zen:event-type:ticket.status_changed", load("zendesk/ticket_status_changed.json")),
        ("zen:event-type:ticket.priority_changed", load("zendesk/ticket_priority_changed.json")),
        lambda s, source: (
            one(s, m.SupportCase, source).status == "resolved" and stale_updates(s, source) == 1
        ),
        ("zen:event-type:ticket.tags_changed", load("zendesk/ticket_tags_changed.json")),
    ),
    Provider(
        "freshdesk",
        freshdesk,
        ("automation", load("freshdesk/ticket_created.json")),
        lambda s, source: one(s, m.SupportCase, source).status == "open",
        ("automation", freshdesk_ticket("Resolved", "2026-12-01T10:00:00+00:00")),
        ("automation", freshdesk_ticket("Open", "2026-11-30T14:58:21+00:00")),
        lambda s, source: (
            one(s, m.SupportCase, source).status == "resolved" and stale_updates(s, source) == 1
        ),
        None,  # every automation rule's webhook is a ticket
    ),
    Provider(
        "typeform",
        by_body(typeform_headers),
        ("form_response", load("typeform/form_response.json")),
        lambda s, source: leads_of(s, source) == (1, 1),
        # Leads are interactions, not states: both count, on one contact.
        ("form_response", typeform_response("01JDXT0000SECOND0SUBMISSION", "2026-12-01T09:00:00Z")),
        ("form_response", typeform_response("01JDXS0000FIRST00SUBMISSION", "2026-11-30T18:09:45Z")),
        lambda s, source: leads_of(s, source) == (1, 2),
        (
            "form_response_partial",
            {**load("typeform/form_response.json"), "event_type": "form_response_partial"},
        ),
    ),
]
IDS = [provider.name for provider in PROVIDERS]


# --- posting and waiting -------------------------------------------------------------------


def new_source(platform: Platform, provider: str) -> tuple[int, str, str]:
    """A source of ``provider`` of its own for one test: its id, name and secret."""
    name = f"{provider}-{uuid.uuid4().hex[:8]}"
    with platform.sessions.begin() as session:
        source, secret = services.create_source(
            session, name=name, provider=provider, secret=SECRETS.get(provider)
        )
        return source.id, name, secret


def post(
    platform: Platform, name: str, headers: dict[str, str], document: Document
) -> requests.Response:
    body = json.dumps(document).encode()
    return requests.post(f"{platform.base}/webhooks/{name}", data=body, headers=headers, timeout=30)


def send(
    platform: Platform,
    provider: Provider,
    source: tuple[int, str, str],
    event: tuple[str, Document],
) -> requests.Response:
    _, name, secret = source
    topic, document = event
    body = json.dumps(document).encode()
    return post(platform, name, provider.sign(secret, topic, body), document)


def settled(platform: Platform, source_id: int, count: int) -> list[InboxEvent]:
    """The source's events once there are ``count`` and none is waiting for the worker."""

    def done() -> list[InboxEvent] | None:
        with platform.sessions() as session:
            events = list(
                session.scalars(
                    select(InboxEvent)
                    .where(InboxEvent.source_id == source_id)
                    .order_by(InboxEvent.id)
                )
            )
        waiting = {EventStatus.RECEIVED, EventStatus.PROCESSING}
        return events if len(events) == count and not {e.status for e in events} & waiting else None

    return wait_until(done, timeout=90, what=f"{count} events of source {source_id} settled")


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_signed_event_is_processed_once_however_often_it_is_delivered(
    platform: Platform, provider: Provider
) -> None:
    source = new_source(platform, provider.name)
    first = send(platform, provider, source, provider.handled)
    assert first.status_code == 202, first.text
    again = send(platform, provider, source, provider.handled)
    assert again.status_code == 200, again.text
    assert again.json()["event_id"] == first.json()["event_id"]
    [event] = settled(platform, source[0], 1)
    assert (event.status, event.attempts) == (EventStatus.PROCESSED, 1), event.error
    with platform.sessions() as session:
        assert provider.made(session, source[0])


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_wrongly_signed_event_is_refused_and_not_stored(
    platform: Platform, provider: Provider
) -> None:
    source_id, name, _ = new_source(platform, provider.name)
    wrong = "freshdesk-intruder:not-the-password" if provider.name == "freshdesk" else "not it"
    response = send(platform, provider, (source_id, name, wrong), provider.handled)
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    with platform.sessions() as session:
        stored = select(func.count(InboxEvent.id)).where(InboxEvent.source_id == source_id)
        assert session.scalar(stored) == 0


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_an_older_update_after_a_newer_one_rolls_nothing_back(
    platform: Platform, provider: Provider
) -> None:
    source = new_source(platform, provider.name)
    assert send(platform, provider, source, provider.newer).status_code == 202
    if provider.name == "stripe":  # the refund was tried once and waits for its order

        def tried() -> bool:
            with platform.sessions() as session:
                event = session.scalars(
                    select(InboxEvent).where(InboxEvent.source_id == source[0])
                ).one()
                return event.attempts >= 1 and event.status == EventStatus.RECEIVED

        wait_until(tried, timeout=60, what="the refund tried before its order")
    else:
        settled(platform, source[0], 1)
    assert send(platform, provider, source, provider.older).status_code == 202
    events = settled(platform, source[0], 2)
    assert [e.status for e in events] == [EventStatus.PROCESSED] * 2, [e.error for e in events]
    with platform.sessions() as session:
        assert provider.newest_stands(session, source[0])


@pytest.mark.parametrize(
    "provider",
    [p for p in PROVIDERS if p.unhandled],
    ids=[p.name for p in PROVIDERS if p.unhandled],
)
def test_a_topic_the_platform_does_not_handle_is_ignored(
    platform: Platform, provider: Provider
) -> None:
    assert provider.unhandled is not None
    source = new_source(platform, provider.name)
    response = send(platform, provider, source, provider.unhandled)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ignored"
    with platform.sessions() as session:
        event = session.scalars(select(InboxEvent).where(InboxEvent.source_id == source[0])).one()
        assert (event.status, event.topic) == (EventStatus.IGNORED, provider.unhandled[0])
