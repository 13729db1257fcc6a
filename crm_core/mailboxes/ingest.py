"""Store a message read from a mailbox as an inbound e-mail event, once.

The event goes through the same pipeline as e-mail posted by webhook
(``handle_email``: parse, thread, dedupe by Message-ID, file). Its
``webhook_id`` is ``imap:<UIDVALIDITY>:<UID>``, which names one message of the
folder for as long as UIDVALIDITY lasts, so a message fetched again after a
crash stores nothing. After a UIDVALIDITY change those names start over and a
message seen before comes back under a new one: then the Message-ID, kept in
the event's ``headers``, decides, or for a message without one the key of its
bytes (``crm_core.mail.keys``).
"""

from __future__ import annotations

import email.policy
from email.parser import BytesHeaderParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.ingestion.inbox import store_event
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.validation import RFC822_TYPE, validate_payload
from crm_core.mail.keys import message_key
from crm_core.mail.message_ids import normalize_message_id
from crm_core.mail.parsed import MailLimits
from crm_core.mailboxes.imap import FetchedMessage
from crm_core.mailboxes.models import Mailbox
from crm_core.payloads.kinds import EventKind

MESSAGE_ID_HEADER = "message-id"
MESSAGE_KEY_HEADER = "message-key"
DEFAULT = MailLimits()


def webhook_id_of(fetched: FetchedMessage) -> str:
    """The inbox key of a fetched message: unique per folder while UIDVALIDITY holds."""
    return f"imap:{fetched.uidvalidity}:{fetched.uid}"


def message_id_of(raw: bytes) -> str | None:
    """The message's Message-ID, normalized (no brackets), or None when it has no usable one."""
    try:
        # compat32 reads a malformed header as the text it is instead of raising.
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        value = headers.get("Message-ID")
    except Exception:  # the header parser is lenient; anything it raises means "no id"
        return None
    return normalize_message_id(str(value)) if value is not None else None


def _stored_before(session: Session, *, source_id: int, header: str, value: str) -> bool:
    # No index backs this: it scans the source's events. It only runs for the
    # messages of one poll after a UIDVALIDITY change, which is rare.
    found = session.scalar(
        select(InboxEvent.id)
        .where(
            InboxEvent.source_id == source_id,
            InboxEvent.headers[header].as_string() == value,
        )
        .limit(1)
    )
    return found is not None


def store_message(
    session: Session, *, mailbox: Mailbox, fetched: FetchedMessage, limits: MailLimits = DEFAULT
) -> int | None:
    """Store ``fetched`` as an ``emails`` inbox event of the mailbox's source; its id.

    None when it was stored before: the same UIDVALIDITY and UID, or, once the
    server renumbered the folder's UIDs, the same Message-ID (without one, the same
    bytes, by their key). A message that fails validation (no From, say, or too
    many MIME parts) is stored as ``invalid``, as by webhook.
    """
    message_id = message_id_of(fetched.raw)
    # Without a Message-ID, the message is known by the key of its bytes.
    identity = (
        (MESSAGE_ID_HEADER, message_id)
        if message_id is not None
        else (MESSAGE_KEY_HEADER, message_key(fetched.raw))
    )
    if fetched.uids_renumbered and _stored_before(
        session, source_id=mailbox.source_id, header=identity[0], value=identity[1]
    ):
        return None
    # Too many MIME parts is refused here, on the bytes, before any parse: ``invalid``.
    outcome = validate_payload(EventKind.EMAILS, fetched.raw, RFC822_TYPE, mail_limits=limits)
    headers: dict[str, object] = {"imap-uid": fetched.uid, "imap-uidvalidity": fetched.uidvalidity}
    headers[identity[0]] = identity[1]
    stored = store_event(
        session,
        source_id=mailbox.source_id,
        kind=EventKind.EMAILS,
        webhook_id=webhook_id_of(fetched),
        content_type=RFC822_TYPE,
        body=fetched.raw,
        headers=headers,
        errors=outcome.errors or None,
    )
    return stored.id if stored.created else None
