"""The steps of an erasure, each a small function over one kind of row that holds a person's
data: it changes those rows in the erasure's transaction and says how many it changed.

``ERASURE_STEPS`` runs them in order (``crm_core.privacy.erasure.erase_person``); the table of
docs/operations/personal-data.md says what each keeps and why.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, delete, or_, select, text, update
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.attachments.services import erase_contact_attachments, forget_activity_attachments
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.bounces.models import (
    AppliedDeliveryReport,
    MailBounce,
    SentMessage,
    Suppression,
    SuppressionReason,
)
from crm_core.bounces.suppression import erased_address_token, suppress
from crm_core.campaigns.models import CampaignSend, SendStatus
from crm_core.campaigns.scheduling import ERASED_ERROR
from crm_core.customers.models import Contact, Customer
from crm_core.followups.models import FollowUpStatus, FollowUpTask, SubjectType
from crm_core.idempotency.models import IdempotencyKey
from crm_core.ingestion.models import BodyRemoval, EventStatus, InboxEvent
from crm_core.ingestion.retention import remove_bodies
from crm_core.notifications.models import DeliveryStatus, NotificationDelivery
from crm_core.people.models import AuditEntry
from crm_core.privacy.matching import ERASED, as_text, holds, mentions, redact
from crm_core.privacy.subjects import Subject
from crm_core.sales.models import Agreement, Opportunity
from crm_core.support.models import SupportCase

# The full-text tables of migration 0020 on SQLite.
FTS_TABLES = ("contacts_fts", "customers_fts", "support_cases_fts")
# What an erased name or text becomes where a value is required.
TOMBSTONE = "(erased)"
ERASED_ANSWER = json.dumps(
    {
        "type": "about:blank",
        "title": "Erased",
        "status": 410,
        "detail": "The answer to this request held personal data that has since been erased.",
    }
)


@dataclass
class Erasure:
    """One erasure under way: its session, its subject, its time and secret."""

    session: Session
    subject: Subject
    now: dt.datetime
    # CRM_SECRET_KEY: erased addresses stay on the suppression list as keyed hashes.
    secret_key: str = field(repr=False)


Step = Callable[[Erasure], int]


def _ids(values: Iterable[int]) -> list[int]:
    return sorted(values)


def erase_events(erasure: Erasure) -> int:
    """Inbox events about them: the body dropped, with the headers and what processing said."""
    ids = _ids(erasure.subject.event_ids)
    if not ids:
        return 0
    session = erasure.session
    remove_bodies(
        session,
        event_ids=ids,
        reason=BodyRemoval.ERASURE,
        now=erasure.now,
        statuses=tuple(EventStatus),
    )
    result = session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(ids))
        .values(headers={}, error=None, errors=None, outcome=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_activities(erasure: Erasure) -> int:
    """Their timeline: each entry keeps its type and time, not its summary or details."""
    ids = _ids(erasure.subject.activity_ids)
    if not ids:
        return 0
    result = erasure.session.execute(
        update(Activity)
        .where(Activity.id.in_(ids))
        .values(summary=TOMBSTONE, details={"erased": True})
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_attachments(erasure: Erasure) -> int:
    """The files of their mail: every attachment of an activity of theirs.

    That is each contact's own activities (``erase_contact_attachments``, merged contacts
    included), and every other activity the subject names: the timeline of a customer that
    is the person (kind ``person``, no other contact), their cases' activities, and the
    activities that mention them or came in with an event about them. A company they work
    for keeps the files on its own timeline that are not theirs. The rows go now; the bytes
    after the commit, through ``released_keys`` and ``release_blobs`` (a blob another
    row still names stays).
    """
    session = erasure.session
    count = sum(
        erase_contact_attachments(session, contact_id=contact_id)
        for contact_id in erasure.subject.contact_ids
    )
    return count + forget_activity_attachments(session, activity_ids=erasure.subject.activity_ids)


def erase_cases(erasure: Erasure) -> int:
    """Their support cases: status and clocks stay, subject and description go."""
    cases = erasure.session.scalars(
        select(SupportCase).where(SupportCase.id.in_(_ids(erasure.subject.case_ids)))
    ).all()
    for case in cases:
        case.subject, case.description = TOMBSTONE, None
    return len(cases)


def erase_deals(erasure: Erasure) -> int:
    """Their deals' names and descriptions; agreements keep their terms but not the person."""
    subject, session = erasure.subject, erasure.session
    count = 0
    deals = session.scalars(
        select(Opportunity).where(Opportunity.id.in_(_ids(subject.opportunity_ids)))
    ).all()
    for deal in deals:
        theirs = deal.customer_id in subject.customer_ids
        if theirs or holds(deal.name, subject.needles):
            deal.name = TOMBSTONE
        if theirs or holds(deal.description or "", subject.needles):
            deal.description = None
        count += 1
    agreements = session.scalars(
        select(Agreement).where(Agreement.customer_id.in_(subject.customer_ids))
    ).all()
    for agreement in agreements:
        agreement.title = redact(agreement.title, subject.redactable)
        agreement.terms = redact(agreement.terms, subject.redactable)
        count += 1
    return count


def erase_campaign_sends(erasure: Erasure) -> int:
    """Send rows keep their outcome for the campaign's counts; the address goes, and a row
    still pending will never be sent."""
    session, contacts = erasure.session, erasure.subject.contact_ids
    session.execute(
        update(CampaignSend)
        .where(CampaignSend.contact_id.in_(contacts), CampaignSend.status == SendStatus.PENDING)
        .values(status=SendStatus.FAILED, error=ERASED_ERROR)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(CampaignSend)
        .where(CampaignSend.contact_id.in_(contacts))
        .values(email="", error=ERASED_ERROR)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _their_sent_messages(erasure: Erasure) -> ColumnElement[bool]:
    """Mail sent to one of their addresses, or as one of their campaign sends (an address
    they had then and no longer have)."""
    session, subject = erasure.session, erasure.subject
    their_sends = select(CampaignSend.id).where(CampaignSend.contact_id.in_(subject.contact_ids))
    return or_(
        mentions(session, as_text(SentMessage.recipient), subject.addresses),
        SentMessage.campaign_send_id.in_(their_sends),
    )


def erase_delivery_reports(erasure: Erasure) -> int:
    """Providers' reports about them: the row stays, so that the same report delivered again
    is still recognised and ignored (unique per provider and report id), but the address it
    named and what applying it said (which quotes addresses) go. Found by the address, by the
    message it was about, or by an address of theirs in what it said. Before ``sent_mail``,
    which deletes the messages they link to."""
    session, subject = erasure.session, erasure.subject
    messages = select(SentMessage.id).where(_their_sent_messages(erasure))
    about = or_(
        AppliedDeliveryReport.recipient.in_(sorted(subject.addresses)),
        AppliedDeliveryReport.sent_message_id.in_(messages),
        mentions(session, as_text(AppliedDeliveryReport.result), subject.address_needles),
    )
    result = session.execute(
        update(AppliedDeliveryReport)
        .where(about)
        .values(recipient="", result=ERASED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_sent_mail(erasure: Erasure) -> int:
    """The record of mail sent to them and of its bounces (kept only to verify bounces)."""
    session, subject = erasure.session, erasure.subject
    sent = session.execute(
        delete(SentMessage)
        .where(_their_sent_messages(erasure))
        .execution_options(synchronize_session=False)
    )
    bounced = session.execute(
        delete(MailBounce)
        .where(MailBounce.email_normalized.in_(sorted(subject.addresses)))
        .execution_options(synchronize_session=False)
    )
    return int(sent.rowcount) + int(bounced.rowcount)  # type: ignore[attr-defined]


def suppress_erased(erasure: Erasure) -> int:
    """Their addresses leave the list; a keyed hash of each takes their place."""
    session, addresses = erasure.session, sorted(erasure.subject.addresses)
    session.execute(
        delete(Suppression)
        .where(Suppression.email_normalized.in_(addresses))
        .execution_options(synchronize_session=False)
    )
    for address in addresses:
        token = erased_address_token(secret_key=erasure.secret_key, email_normalized=address)
        suppress(session, email_normalized=token, reason=SuppressionReason.ERASED)
    return len(addresses)


def erase_followups(erasure: Erasure) -> int:
    """Follow-ups about them: the title goes, and what was still open is cancelled."""
    subject = erasure.subject
    about = or_(
        FollowUpTask.contact_id.in_(subject.contact_ids),
        FollowUpTask.customer_id.in_(subject.customer_ids),
        FollowUpTask.support_case_id.in_(_ids(subject.case_ids)),
        FollowUpTask.opportunity_id.in_(_ids(subject.opportunity_ids)),
        and_(
            FollowUpTask.subject_type == SubjectType.CONTACT,
            FollowUpTask.subject_id.in_(subject.contact_ids),
        ),
    )
    tasks = erasure.session.scalars(select(FollowUpTask).where(about)).all()
    for task in tasks:
        task.title = TOMBSTONE
        if task.status == FollowUpStatus.OPEN:
            task.status = FollowUpStatus.CANCELLED
    return len(tasks)


def erase_external_refs(erasure: Erasure) -> int:
    """Senders' ids for them (a help desk's requester): a later ticket is a new person."""
    subject = erasure.subject
    refs = or_(
        and_(
            ExternalRef.entity_type == EntityType.CONTACT.value,
            ExternalRef.entity_id.in_(subject.contact_ids),
        ),
        and_(
            ExternalRef.entity_type == EntityType.CUSTOMER.value,
            ExternalRef.entity_id.in_(subject.customer_ids),
        ),
    )
    result = erasure.session.execute(
        delete(ExternalRef).where(refs).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_idempotent_answers(erasure: Erasure) -> int:
    """Stored answers replayed to a client's retry: one that names them becomes a 410."""
    session, needles = erasure.session, erasure.subject.needles
    result = session.execute(
        update(IdempotencyKey)
        .where(
            or_(
                mentions(session, as_text(IdempotencyKey.body), needles),
                mentions(session, as_text(IdempotencyKey.headers), needles),
            )
        )
        .values(
            status=410, headers={"Content-Type": "application/problem+json"}, body=ERASED_ANSWER
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_audit_values(erasure: Erasure) -> int:
    """The audit log keeps who changed what and when; the values that were theirs go."""
    session, subject = erasure.session, erasure.subject
    theirs = {
        EntityType.CONTACT.value: subject.contact_ids,
        EntityType.CUSTOMER.value: subject.customer_ids,
        EntityType.SUPPORT_CASE.value: _ids(subject.case_ids),
        EntityType.OPPORTUNITY.value: _ids(subject.opportunity_ids),
        EntityType.ACTIVITY.value: _ids(subject.activity_ids),
    }
    about = or_(
        *(
            and_(AuditEntry.entity == entity, AuditEntry.entity_id.in_(ids))
            for entity, ids in theirs.items()
        )
    )
    entries = session.scalars(
        select(AuditEntry).where(
            or_(about, mentions(session, as_text(AuditEntry.changes), subject.needles))
        )
    ).all()
    for entry in entries:
        if entry.entity_id in theirs.get(entry.entity, ()):
            entry.changes = {name: _erased_change(change) for name, change in entry.changes.items()}
        else:
            entry.changes = redact(entry.changes, subject.redactable)
    return len(entries)


def _erased_change(change: object) -> object:
    if not isinstance(change, dict):
        return ERASED
    return {side: None if value is None else ERASED for side, value in change.items()}


def erase_notifications(erasure: Erasure) -> int:
    """Notifications owed to subscribers about them: redacted, and no longer posted."""
    session, subject = erasure.session, erasure.subject
    candidates = session.scalars(
        select(NotificationDelivery).where(
            mentions(session, as_text(NotificationDelivery.payload), subject.redactable)
        )
    ).all()
    count = 0
    for delivery in candidates:
        payload = delivery.payload
        if not (holds(json.dumps(payload), subject.needles) or refers_to(payload, subject)):
            continue  # a namesake's
        delivery.payload = redact(payload, subject.redactable)
        if delivery.status == DeliveryStatus.PENDING:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = "not posted: it named a person since erased"
        count += 1
    return count


# A notification's parts (crm_core.notifications.events) name their records so.
_REFERENCES = {
    "contact_id": "contact_ids",
    "customer_id": "customer_ids",
    "support_case_id": "case_ids",
    "opportunity_id": "opportunity_ids",
}
_PARTS = {"contact": "contact_ids", "case": "case_ids", "deal": "opportunity_ids"}


def refers_to(value: object, subject: Subject) -> bool:
    """Whether a JSON value names one of the subject's records by id."""
    if isinstance(value, list):
        return any(refers_to(item, subject) for item in value)
    if not isinstance(value, dict):
        return False
    for key, item in value.items():
        ids = getattr(subject, _REFERENCES.get(key, ""), None)
        if ids is not None and item in ids:
            return True
        part = getattr(subject, _PARTS.get(key, ""), None)
        if part is not None and isinstance(item, dict) and item.get("id") in part:
            return True
        if refers_to(item, subject):
            return True
    return False


def erase_contacts(erasure: Erasure) -> int:
    """The contact and its merged tombstones: every personal field emptied, the rows kept
    (orders and cases point at them), marked erased."""
    contacts = erasure.session.scalars(
        select(Contact).where(Contact.id.in_(erasure.subject.contact_ids))
    ).all()
    for contact in contacts:
        for name in ("first_name", "last_name", "email", "email_normalized", "phone", "phone_raw"):
            setattr(contact, name, None)
        for name in ("phone_valid", "job_title", "country", "notes", "marketing_consent"):
            setattr(contact, name, None)
        contact.marketing_consent_at = None
        contact.marketing_consent_source_id = None
        contact.marketing_consent_method = None
        contact.full_name = TOMBSTONE
        contact.attributes, contact.tags = {}, []
        contact.erased_at = erasure.now
    return len(contacts)


PERSON_FIELDS = (
    "email",
    "phone",
    "website",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
)


def erase_customers(erasure: Erasure) -> int:
    """A customer that is the person: emptied like the contact. A company they work for
    keeps its data, less an address or number that was theirs."""
    session, subject = erasure.session, erasure.subject
    count = 0
    for customer in session.scalars(
        select(Customer).where(Customer.id.in_(subject.customer_ids))
    ).all():
        for name in PERSON_FIELDS:
            setattr(customer, name, None)
        customer.name = customer.name_key = TOMBSTONE
        customer.attributes, customer.tags = {}, []
        customer.erased_at = erasure.now
        count += 1
    companies = select(Contact.customer_id).where(Contact.id.in_(subject.contact_ids))
    for customer in session.scalars(
        select(Customer).where(Customer.id.in_(companies), Customer.id.not_in(subject.customer_ids))
    ).all():
        for name in ("email", "phone"):
            if holds(getattr(customer, name) or "", subject.needles):
                setattr(customer, name, None)
                count += 1
    return count


# PostgreSQL (migration 0021): the words of their names that no row holds any more leave
# ``search_words``; a word another contact, customer or case still holds stays. The names'
# expressions are migration 0020's, so each check uses its full-text index.
_UNHELD_WORDS = text(
    """DELETE FROM search_words WHERE word IN (
    SELECT w FROM unnest(tsvector_to_array(to_tsvector('simple', :names))) AS w
    WHERE NOT EXISTS (
        SELECT 1 FROM contacts WHERE to_tsvector('simple', coalesce(first_name, '') || ' ' ||
            coalesce(last_name, '') || ' ' || coalesce(full_name, ''))
            @@ plainto_tsquery('simple', w))
    AND NOT EXISTS (
        SELECT 1 FROM customers WHERE to_tsvector('simple', name) @@ plainto_tsquery('simple', w))
    AND NOT EXISTS (
        SELECT 1 FROM support_cases
        WHERE to_tsvector('english', subject) @@ plainto_tsquery('english', w)))"""
)


def purge_search_index(erasure: Erasure) -> int:
    """Search keeps words apart from the rows: SQLite's full-text tables keep deleted words
    until merged (merged now), PostgreSQL's ``search_words`` keeps every word it saw (their
    names' words that no row holds any more are deleted). PostgreSQL's indexes themselves
    are rebuilt by VACUUM and never dumped."""
    session = erasure.session
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        return _purge_search_words(erasure)
    if session.get_bind().dialect.name != "sqlite":
        return 0
    present = set(session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
    tables = [table for table in FTS_TABLES if table in present]
    for table in tables:
        # The names are this module's constants, not input.
        session.execute(text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))  # noqa: S608
    return len(tables)


def _purge_search_words(erasure: Erasure) -> int:
    session = erasure.session
    if session.scalar(text("SELECT to_regclass('search_words')")) is None:
        return 0
    names = " ".join(sorted(erasure.subject.names | erasure.subject.name_parts))
    result = session.execute(_UNHELD_WORDS, {"names": names})
    return int(result.rowcount)  # type: ignore[attr-defined]


# In order: rows are found by the subject's needles, so the contact is emptied last.
ERASURE_STEPS: tuple[tuple[str, Step], ...] = (
    ("inbox_events", erase_events),
    ("activities", erase_activities),
    ("attachments", erase_attachments),
    ("support_cases", erase_cases),
    ("deals", erase_deals),
    ("campaign_sends", erase_campaign_sends),
    ("delivery_reports", erase_delivery_reports),
    ("sent_mail", erase_sent_mail),
    ("suppressions", suppress_erased),
    ("follow_ups", erase_followups),
    ("external_refs", erase_external_refs),
    ("idempotency_answers", erase_idempotent_answers),
    ("audit_values", erase_audit_values),
    ("notifications", erase_notifications),
    ("customers", erase_customers),
    ("contacts", erase_contacts),
    ("search_index", purge_search_index),
)
