"""End to end: an e-mail posted as RFC 822 through the webhook, processed, and its
attachment downloaded byte for byte; kept in a folder or in a bucket on a real S3 server."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from flask import Flask
from sqlalchemy import Engine, select

from crm_core import models as m
from crm_core.config import Settings
from crm_core.ingestion import processing, services, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.crm_core.attachments.mail import PDF, PNG, message_with
from tests.s3_server import (  # noqa: F401 (the fixtures s3_server, s3_credentials)
    S3Server,
    s3_credentials_fixture,
    s3_server_fixture,
)
from tests.signed import signed_headers
from webhooks.app import create_app
from webhooks.attachments import content_disposition

OPERATOR = Actor.operator("tests")
NAME = 'Überweisung "März" 100%.pdf'


@pytest.fixture(params=["folder", "s3"])
def blob_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """``(CRM_BLOB_URL, CRM_BLOB_S3_ENDPOINT_URL)`` of each kind of store."""
    if request.param == "folder":
        return f"file://{tmp_path / 'blobs'}", ""
    request.getfixturevalue("s3_credentials")
    server: S3Server = request.getfixturevalue("s3_server")
    return f"s3://{server.new_bucket()}/crm", server.endpoint_url


@pytest.fixture
def app(
    database_url: str, committed_db: Engine, tmp_path: Path, blob_url: tuple[str, str]
) -> Flask:
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        secret_key="attachments test secret key",
        var_dir=tmp_path,
        blob_url=blob_url[0],
        blob_s3_endpoint_url=blob_url[1],
        support_addresses=frozenset({"support@acme.test"}),
    )
    return create_app(settings)


def key_with(app: Flask, *scopes: str) -> dict[str, str]:
    with app.extensions["crm"].sessions.begin() as session:
        _, key = api_keys.create_api_key(session, actor=OPERATOR, name="k", scopes=scopes)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def deliver(app: Flask) -> Callable[[bytes], int]:
    """Post ``raw`` as message/rfc822 to the webhook and process its event; the event id."""
    state = app.extensions["crm"]
    with state.sessions.begin() as session:
        _, secret = services.create_source(session, name=f"mail-{uuid.uuid4().hex[:8]}")
        source = session.scalars(select(m.Source).order_by(m.Source.id.desc())).first().name
    client = app.test_client()

    def deliver(raw: bytes) -> int:
        headers = signed_headers(secret, raw, content_type="message/rfc822")
        response = client.post(f"/webhooks/{source}/emails", data=raw, headers=headers)
        assert response.status_code == 202, response.json
        event_id = int(response.json["event_id"])
        with state.sessions.begin() as session:
            assert processing.claim_event(session, event_id=event_id)
            policy = IngestPolicy.from_settings(state.settings)
            single_event.run_event(session, event_id=event_id, policy=policy)
        return event_id

    return deliver


def test_an_attachment_downloads_byte_identical_with_its_headers(
    app: Flask, deliver: Callable[[bytes], int]
) -> None:
    deliver(message_with((NAME, "application/pdf", PDF), inline_png=PNG))
    client = app.test_client()
    reader = key_with(app, "read")
    with app.extensions["crm"].sessions() as session:
        case_id = session.scalars(select(m.SupportCase.id)).one()
        activity_id = session.scalars(
            select(m.Activity.id).where(m.Activity.type == "email_received")
        ).one()
    shown = client.get(f"/api/activities/{activity_id}", headers=reader).json["attachments"]
    listed = client.get(f"/api/cases/{case_id}", headers=reader).json["activities"]["items"]
    assert [a for item in listed for a in item["attachments"]] == shown
    pdf = next(a for a in shown if a["content_type"] == "application/pdf")
    assert (pdf["filename"], pdf["size"], pdf["inline"]) == (NAME, len(PDF), False)

    response = client.get(pdf["href"], headers=reader, buffered=False)
    assert response.status_code == 200
    assert response.is_streamed  # sent from the store as it is read, not built in memory
    assert response.get_data() == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(PDF))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.split("filename*=UTF-8''")[1] == (
        "%C3%9Cberweisung%20%22M%C3%A4rz%22%20100%25.pdf"
    )
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == NAME
    held = {**reader, "If-None-Match": response.headers["ETag"]}
    again = client.get(pdf["href"], headers=held)
    assert (again.status_code, again.get_data()) == (304, b"")
    assert again.headers["ETag"] == response.headers["ETag"]
    other = client.get(pdf["href"], headers={**reader, "If-None-Match": '"other"'})
    assert (other.status_code, other.get_data()) == (200, PDF)

    png = next(a for a in shown if a["content_type"] == "image/png")
    image = client.get(png["href"], headers=reader)
    assert (image.data, image.headers["Content-Type"]) == (PNG, "image/png")
    assert image.headers["Content-Disposition"] == f'attachment; filename="attachment-{png["id"]}"'


def test_a_replayed_delivery_adds_no_attachment(
    app: Flask, deliver: Callable[[bytes], int]
) -> None:
    raw = message_with(("a.pdf", "application/pdf", PDF))
    deliver(raw)
    event_id = deliver(raw.replace(b"Subject:", b"X-Resent: 1\nSubject:"))  # same Message-ID
    with app.extensions["crm"].sessions() as session:
        assert session.get(m.InboxEvent, event_id).outcome["decision"] == "duplicate"
        assert len(session.scalars(select(m.StoredAttachment)).all()) == 1


def test_deleting_the_customer_deletes_the_download(
    app: Flask, deliver: Callable[[bytes], int]
) -> None:
    deliver(message_with(("a.pdf", "application/pdf", PDF)))
    client = app.test_client()
    headers = key_with(app, "read", "write")
    with app.extensions["crm"].sessions() as session:
        attachment_id = session.scalars(select(m.StoredAttachment.id)).one()
        customer_id = session.scalars(select(m.Customer.id)).one()
    assert client.get(f"/api/attachments/{attachment_id}", headers=headers).status_code == 200
    assert client.delete(f"/api/customers/{customer_id}", headers=headers).status_code == 204
    gone = client.get(f"/api/attachments/{attachment_id}", headers=headers)
    assert gone.status_code == 404
    blobs = app.extensions["crm"].blobs
    assert not blobs.exists(hashlib.sha256(PDF).hexdigest())
    assert list(blobs.keys()) == []


def test_an_unknown_id_is_a_404_problem(app: Flask) -> None:
    reader = key_with(app, "read")
    for ident in ("424242", str(2**63), str(2**70)):
        response = app.test_client().get(f"/api/attachments/{ident}", headers=reader)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"
        assert response.json["status"] == 404


def test_a_key_without_read_is_refused_with_a_403(
    app: Flask, deliver: Callable[[bytes], int]
) -> None:
    deliver(message_with(("a.pdf", "application/pdf", PDF)))
    with app.extensions["crm"].sessions() as session:
        attachment_id = session.scalars(select(m.StoredAttachment.id)).one()
    response = app.test_client().get(
        f"/api/attachments/{attachment_id}", headers=key_with(app, "write")
    )
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert response.json["scope"] == "read"
    assert PDF not in response.data
    anonymous = app.test_client().get(f"/api/attachments/{attachment_id}")
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("filename", "header"),
    [
        ("report.pdf", 'attachment; filename="report.pdf"'),
        (None, 'attachment; filename="attachment-7"'),
        ('a"b\\c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"),
        ("日本.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        (
            "a\r\nSet-Cookie: x",
            "attachment; filename=\"a__Set-Cookie: x\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x",
        ),
    ],
)
def test_content_disposition_is_safe_for_any_name(filename: str | None, header: str) -> None:
    assert content_disposition(filename, fallback="attachment-7") == header
