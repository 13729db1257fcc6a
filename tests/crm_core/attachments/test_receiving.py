"""An e-mail's attachments are recorded against its activity and their bytes kept, once."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.blobs.filesystem import FileBlobStore
from crm_core.config import InvalidSettingError, Settings
from crm_core.ingestion.policy import IngestPolicy
from crm_core.mail import MailLimits, parse_json, parse_rfc822
from crm_core.payloads.schemas import EmailPayload
from crm_core.readapi import queries
from crm_core.support.inbound_mail import MailOutcome, receive_email
from tests.crm_core.attachments.mail import PDF, PNG, message_with
from tests.crm_core.support.test_inbound_mail import CONTEXT


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def receive(
    session: Session, raw: bytes, store: FileBlobStore, limits: MailLimits | None = None
) -> MailOutcome:
    context = dataclasses.replace(CONTEXT, blobs=store)
    parsed = parse_rfc822(raw, limits=limits or MailLimits())
    return receive_email(session, parsed=parsed, context=context)


def rows(session: Session) -> list[m.StoredAttachment]:
    return list(session.scalars(select(m.StoredAttachment).order_by(m.StoredAttachment.id)))


def email_activity(session: Session) -> m.Activity:
    query = select(m.Activity).where(m.Activity.type == "email_received")
    return session.scalars(query).one()


def test_each_attachment_is_recorded_and_its_bytes_kept(
    session: Session, store: FileBlobStore
) -> None:
    raw = message_with(("Rechnung März.pdf", "application/pdf", PDF), inline_png=PNG)
    outcome = receive(session, raw, store)
    assert outcome.decision == "new_case"
    activity = email_activity(session)
    found = [(r.filename, r.content_type, r.size, r.inline, r.sha256) for r in rows(session)]
    assert set(found) == {
        ("Rechnung März.pdf", "application/pdf", len(PDF), False, hashlib.sha256(PDF).hexdigest()),
        (None, "image/png", len(PNG), True, hashlib.sha256(PNG).hexdigest()),
    }
    assert {r.activity_id for r in rows(session)} == {activity.id}
    for row in rows(session):
        assert b"".join(store.get(row.sha256)) == (
            PDF if row.content_type == "application/pdf" else PNG
        )
    # The details keep what the message said of them, never their bytes.
    assert {a["sha256"] for a in activity.details["attachments"]} == {
        r.sha256 for r in rows(session)
    }
    assert all("content" not in a for a in activity.details["attachments"])


def test_a_replayed_message_records_nothing_twice(session: Session, store: FileBlobStore) -> None:
    raw = message_with(("a.pdf", "application/pdf", PDF))
    receive(session, raw, store)
    outcome = receive(session, raw, store)
    assert outcome.decision == "duplicate"
    assert len(rows(session)) == 1
    assert list(store.keys()) == [hashlib.sha256(PDF).hexdigest()]


def test_the_same_file_in_two_messages_is_one_blob_and_two_rows(
    session: Session, store: FileBlobStore
) -> None:
    receive(session, message_with(("a.pdf", "application/pdf", PDF)), store)
    receive(
        session, message_with(("copy.pdf", "application/pdf", PDF), sender="bo@other.test"), store
    )
    assert [r.filename for r in rows(session)] == ["a.pdf", "copy.pdf"]
    assert len({r.activity_id for r in rows(session)}) == 2
    assert list(store.keys()) == [hashlib.sha256(PDF).hexdigest()]


def test_the_limits_still_hold_and_skipped_files_are_counted(
    session: Session, store: FileBlobStore
) -> None:
    files = [(f"f{i}.bin", "application/octet-stream", bytes([i]) * 100) for i in range(3)]
    receive(session, message_with(*files), store, MailLimits(max_attachments=2))
    assert [r.filename for r in rows(session)] == ["f0.bin", "f1.bin"]
    assert email_activity(session).details["attachments_skipped"] == 1
    assert len(list(store.keys())) == 2


def test_the_byte_limit_still_holds(session: Session, store: FileBlobStore) -> None:
    files = [
        ("small.bin", "application/octet-stream", b"s" * 100),
        ("big.pdf", "application/pdf", PDF),
    ]
    receive(session, message_with(*files), store, MailLimits(max_attachment_bytes=len(PDF) - 1))
    assert [r.filename for r in rows(session)] == ["small.bin"]
    assert email_activity(session).details["attachments_skipped"] == 1
    assert list(store.keys()) == [hashlib.sha256(b"s" * 100).hexdigest()]


def test_the_reads_list_them_with_their_links(session: Session, store: FileBlobStore) -> None:
    receive(session, message_with(("a.pdf", "application/pdf", PDF)), store)
    activity = email_activity(session)
    [row] = rows(session)
    shown = {
        "id": row.id,
        "filename": "a.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "inline": False,
        "href": f"/api/attachments/{row.id}",
    }
    assert queries.get_activity(session, activity_id=activity.id)["attachments"] == [shown]
    case = queries.get_case(session, case_id=activity.support_case_id)
    listed = {item["id"]: item["attachments"] for item in case["activities"]["items"]}
    assert listed[activity.id] == [shown]
    assert all(files == [] for ident, files in listed.items() if ident != activity.id)


def test_without_a_store_only_the_details_are_kept(session: Session) -> None:
    receive_email(
        session,
        parsed=parse_rfc822(message_with(("a.pdf", "application/pdf", PDF))),
        context=CONTEXT,
    )
    assert rows(session) == []
    assert email_activity(session).details["attachments"][0]["filename"] == "a.pdf"


def test_mail_posted_as_json_keeps_its_attachments_too(
    session: Session, store: FileBlobStore
) -> None:
    payload = EmailPayload.model_validate(
        {
            "from": "Ann <ann@customer.example.com>",
            "to": ["support@acme.test"],
            "subject": "Invoice",
            "message_id": "<json-1@customer.example.com>",
            "text": "Attached.",
            "attachments": [
                {
                    "filename": "a.pdf",
                    "content_type": "application/pdf",
                    "content": base64.b64encode(PDF).decode(),
                }
            ],
        }
    )
    context = dataclasses.replace(CONTEXT, blobs=store)
    receive_email(session, parsed=parse_json(payload), context=context)
    [row] = rows(session)
    assert (row.filename, row.size, row.sha256) == (
        "a.pdf",
        len(PDF),
        hashlib.sha256(PDF).hexdigest(),
    )
    assert b"".join(store.get(row.sha256)) == PDF


def test_an_unusable_blob_url_fails_only_where_a_store_is_needed() -> None:
    policy = IngestPolicy.from_settings(Settings(blob_url="ftp://files.example/x"))
    assert policy.max_json_depth > 0  # the policy itself is made: leads and orders go on
    with pytest.raises(InvalidSettingError, match="CRM_BLOB_URL"):
        _ = policy.blobs
