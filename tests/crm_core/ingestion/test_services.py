"""Sources, secrets, API keys and the inbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.db import utcnow
from crm_core.errors import FieldError
from crm_core.ingestion import inbox, services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.factories import SourceFactory


def test_a_source_is_created_with_one_active_secret(session: Session) -> None:
    source, secret = services.create_source(session, name="shop", rate_limit_per_minute=60)
    assert secret.startswith("whsec_")
    assert services.active_secrets(session, source_id=source.id) == [secret]
    with pytest.raises(services.SourceExists):
        services.create_source(session, name="shop")


def test_a_rotated_secret_verifies_until_its_grace_period_ends(session: Session) -> None:
    source, old = services.create_source(session, name="forms")
    now = utcnow()
    new = services.rotate_secret(session, name="forms", grace=dt.timedelta(hours=2), now=now)
    assert services.active_secrets(session, source_id=source.id, now=now) == [new, old]
    later = now + dt.timedelta(hours=2, seconds=1)
    assert services.active_secrets(session, source_id=source.id, now=later) == [new]


def test_rotating_again_never_extends_an_older_secrets_life(session: Session) -> None:
    source, first = services.create_source(session, name="desk")
    now = utcnow()
    services.rotate_secret(session, name="desk", grace=dt.timedelta(hours=1), now=now)
    services.rotate_secret(session, name="desk", grace=dt.timedelta(hours=5), now=now)
    later = now + dt.timedelta(hours=2)
    assert first not in services.active_secrets(session, source_id=source.id, now=later)


def test_disabling_and_unknown_sources(session: Session) -> None:
    SourceFactory(name="crm-a")
    assert not services.set_source_enabled(session, name="crm-a", enabled=False).enabled
    with pytest.raises(services.SourceNotFound):
        services.get_source(session, name="nope")
    assert [s.name for s in services.list_sources(session)] == ["crm-a"]


def _store(session: Session, source_id: int, webhook_id: str, **kw: object) -> inbox.StoredEvent:
    return inbox.store_event(
        session,
        source_id=source_id,
        kind="leads",
        webhook_id=webhook_id,
        content_type="application/json",
        body=b'{"email": "a@example.com"}',
        headers={"webhook-timestamp": "1"},
        **kw,
    )


def test_store_event_is_idempotent_per_source_and_webhook_id(session: Session) -> None:
    shop, forms = SourceFactory(), SourceFactory()
    first = _store(session, shop.id, "msg_1")
    again = _store(session, shop.id, "msg_1")
    elsewhere = _store(session, forms.id, "msg_1")
    assert first.created
    assert not again.created
    assert elsewhere.created
    assert again.id == first.id != elsewhere.id
    assert first.status == EventStatus.RECEIVED
    assert session.get(InboxEvent, first.id).body == b'{"email": "a@example.com"}'
    assert session.scalar(select(func.count()).select_from(InboxEvent)) == 2


def test_an_event_with_errors_is_stored_invalid(session: Session) -> None:
    stored = _store(session, SourceFactory().id, "msg_bad", errors=[FieldError(("email",), "bad")])
    assert stored.status == EventStatus.INVALID
    assert stored.errors == [{"field": "email", "message": "bad", "type": "value_error"}]
