"""What the workers make of each kind of event: the table ``HANDLERS``, kind -> two steps.

Each entry parses the stored body into the kind's typed payload (``parse``,
``InvalidInput`` listing each problem), then turns that payload into CRM
entities (``handle(session, event, payload, policy)``, handing each domain its own
command, ``ingestion.commands``). Every step gets the ``IngestPolicy`` the task built
from the settings. The body is parsed once, at the start of processing. For a
source whose provider is not ``standard`` the
provider's mapping (``crm_core.providers.mapping``, by the event's topic) takes
the place of ``parse``: it restates the provider's document in our terms, the
kind's ``build`` checks it as it checks a standard one, and the same payload goes
to the same ``handle``; errors name the provider's own fields. The e-mail providers'
posts are not JSON documents to map: a kind's ``readers`` turn them straight into its
payload (``emails``: the message they carried, parsed as any raw message is;
``mail_events``: their delivery reports).
Every handler runs inside the task's transaction, is idempotent (a replay
writes nothing new), raises ``PermanentError`` for input it can never process,
and returns what it touched as ``(entity_type, id)``. Tests that need another
handler patch the table (``monkeypatch.setitem``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.base.entities import EntityType
from crm_core.base.touched import Touched
from crm_core.bounces.reports import DeliveryReport, apply_delivery_reports
from crm_core.customers.models import Contact
from crm_core.customers.services import surviving
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.commands import (
    deal_command,
    normalize_lead,
    order_command,
    refund_command,
    ticket_command,
)
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.validation import (
    RFC822_TYPE,
    check_rfc822,
    media_type,
    parse_json_payload,
    payload_from_document,
)
from crm_core.leads.batch import LeadItem, capture_leads
from crm_core.leads.contacts import contact_for_address, retrying_on_conflict
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import NormalizedLead, normalize_email
from crm_core.leads.services import capture_lead
from crm_core.mail import MalformedEmail, ParsedEmail, parse_json, parse_rfc822
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.payloads.schemas import (
    DealPayload,
    EmailPayload,
    LeadPayload,
    OrderPayload,
    Payload,
    RefundDocument,
    RefundPayload,
    Requester,
    TicketPayload,
)
from crm_core.providers.mail_reading import MAIL_READERS, REPORT_READERS
from crm_core.providers.mapped import Mapped
from crm_core.providers.mapping import map_document
from crm_core.sales.deals import record_deal
from crm_core.sales.refunds import record_refund
from crm_core.sales.services import record_order
from crm_core.support.inbound_mail import MailContext, ThreadDecision, receive_email
from crm_core.support.requesters import contact_for_reference, remember_contact_reference
from crm_core.support.services import upsert_case_from_ticket

Entities = list[tuple[str, int]]
P = TypeVar("P")
M = TypeVar("M", bound=Payload)


@dataclass(frozen=True)
class KindHandler(Generic[P]):
    """How the workers process one kind: parse the stored body, then handle the payload."""

    parse: Callable[[InboxEvent, IngestPolicy], P]
    handle: Callable[[Session, InboxEvent, P, IngestPolicy], Entities]
    # Many events of the kind in one transaction, in order (one list of entities each);
    # ``None``: the kind is processed one event at a time.
    handle_many: (
        Callable[[Session, Sequence[tuple[InboxEvent, P]], IngestPolicy], list[Entities]] | None
    ) = None
    # The payload of a JSON document already in our terms (a provider's, mapped);
    # ``None``: no provider sends the kind.
    build: Callable[[dict[str, Any], IngestPolicy], P] | None = None
    # Providers whose stored body is read straight into the payload, not mapped as a JSON
    # document (the e-mail providers: a message, delivery reports): provider -> reader.
    readers: Mapping[str, Callable[[InboxEvent, IngestPolicy], P]] = field(default_factory=dict)

    def run(
        self,
        session: Session,
        event: InboxEvent,
        policy: IngestPolicy,
        provider: str = ProviderName.STANDARD,
        mapping: dict[str, Any] | None = None,
    ) -> Entities:
        """Parse ``event`` (sent by ``provider``, read as its source's ``mapping`` says) and
        handle its payload; what it touched.

        What ``handle`` refuses in a provider's event is named in the provider's terms too.
        """
        if provider == ProviderName.STANDARD:
            return self.handle(session, event, self.parse(event, policy), policy)
        reader = self.readers.get(provider)
        if reader is not None:
            return self.handle(session, event, reader(event, policy), policy)
        mapped, payload = self._map(event, policy, provider, mapping)
        try:
            return self.handle(session, event, payload, policy)
        except InvalidInput as exc:
            raise InvalidInput(mapped.translate(exc.errors)) from None

    def parse_from(
        self,
        event: InboxEvent,
        policy: IngestPolicy,
        provider: str,
        mapping: dict[str, Any] | None = None,
    ) -> P:
        """The payload of ``event``: ``parse`` for a standard source, else the provider's
        mapping for the event's topic (with the source's ``mapping``), checked by ``build``."""
        if provider == ProviderName.STANDARD:
            return self.parse(event, policy)
        reader = self.readers.get(provider)
        if reader is not None:
            return reader(event, policy)
        return self._map(event, policy, provider, mapping)[1]

    def _map(
        self,
        event: InboxEvent,
        policy: IngestPolicy,
        provider: str,
        mapping: dict[str, Any] | None,
    ) -> tuple[Mapped, P]:
        mapped = map_document(
            provider,
            event.topic,
            event.body,
            max_depth=policy.max_json_depth,
            content_type=event.content_type,
            mapping=mapping,
        )
        if self.build is None:
            raise InvalidInput([FieldError(("topic",), f"{event.kind} have no provider form")])
        try:
            return mapped, self.build(mapped.document, policy)
        except InvalidInput as exc:
            raise InvalidInput(mapped.translate(exc.errors)) from None


def resolve_contact(
    session: Session,
    email: str,
    name: str | None,
    *,
    free_domains: frozenset[str],
    field: str = "email",
) -> tuple[Contact, Touched]:
    """The contact of ``email`` (created with its customer when unknown), race-safe."""
    try:
        match = contact_for_address(session, email=email, name=name, free_domains=free_domains)
    except InvalidField as exc:
        raise InvalidInput([FieldError((field,), exc.message)]) from None
    touched = Touched()
    touched.add(EntityType.CUSTOMER, match.customer.id)
    touched.add(EntityType.CONTACT, match.contact.id)
    return match.contact, touched


def find_contact(session: Session, email: str) -> Contact | None:
    """The contact of ``email`` if we know it; nobody is created."""
    try:
        normalized = normalize_email(email)
    except InvalidField:
        return None
    found = session.scalars(select(Contact).where(Contact.email_normalized == normalized)).first()
    return surviving(session, found) if found is not None else None


# --- parse: a stored body becomes the kind's typed payload ---------------------------


def _json(kind: EventKind, schema: type[M]) -> Callable[[InboxEvent, IngestPolicy], M]:
    """The parse step of a kind sent as a JSON document of ``schema``."""

    def parse(event: InboxEvent, policy: IngestPolicy) -> M:
        return parse_json_payload(
            kind, schema, event.body, event.content_type, max_depth=policy.max_json_depth
        )

    return parse


def _document(schema: type[M]) -> Callable[[dict[str, Any], IngestPolicy], M]:
    """The build step of a kind whose payload is a JSON document of ``schema``."""

    def build(document: dict[str, Any], policy: IngestPolicy) -> M:
        return payload_from_document(schema, document)

    return build


parse_order: Callable[[InboxEvent, IngestPolicy], OrderPayload] = _json(
    EventKind.ORDERS, OrderPayload
)
parse_deal: Callable[[InboxEvent, IngestPolicy], DealPayload] = _json(EventKind.DEALS, DealPayload)
parse_ticket: Callable[[InboxEvent, IngestPolicy], TicketPayload] = _json(
    EventKind.TICKETS, TicketPayload
)


def parse_lead(event: InboxEvent, policy: IngestPolicy) -> NormalizedLead:
    """The normalized lead of a stored ``leads`` event."""
    payload = parse_json_payload(
        EventKind.LEADS,
        LeadPayload,
        event.body,
        event.content_type,
        max_depth=policy.max_json_depth,
    )
    return normalize_lead(payload, default_region=policy.default_region)


def build_lead(document: dict[str, Any], policy: IngestPolicy) -> NormalizedLead:
    """The normalized lead of a document in ``LeadPayload``'s terms."""
    payload = payload_from_document(LeadPayload, document)
    return normalize_lead(payload, default_region=policy.default_region)


def parse_email(event: InboxEvent, policy: IngestPolicy) -> ParsedEmail:
    """The e-mail of an event, from raw RFC 5322 bytes or from the JSON form."""
    limits = policy.mail_limits
    if media_type(event.content_type) == RFC822_TYPE:
        check_rfc822(event.body, limits=limits)
        try:
            return parse_rfc822(event.body, limits=limits)
        except MalformedEmail as exc:
            raise InvalidInput([FieldError((), f"not an e-mail: {exc}")]) from None
    payload = parse_json_payload(
        EventKind.EMAILS,
        EmailPayload,
        event.body,
        event.content_type,
        max_depth=policy.max_json_depth,
    )
    return parse_json(payload, limits=limits)


def provider_email(provider: str) -> Callable[[InboxEvent, IngestPolicy], ParsedEmail]:
    """How the e-mail of an e-mail ``provider``'s stored post is read: the message it carried,
    put back together as RFC 5322 when the provider took it apart, then parsed as any raw
    message is, with the provider's reply-stripped text beside it."""
    read = MAIL_READERS[provider]

    def parse(event: InboxEvent, policy: IngestPolicy) -> ParsedEmail:
        limits = policy.mail_limits
        mail = read(event.body, event.content_type, limits, policy.max_json_depth)
        check_rfc822(mail.raw, limits=limits)
        try:
            parsed = parse_rfc822(mail.raw, limits=limits)
        except MalformedEmail as exc:
            raise InvalidInput([FieldError((), f"not an e-mail: {exc}")]) from None
        return replace(parsed, reply_text=mail.reply_text) if mail.reply_text else parsed

    return parse


def build_email(document: dict[str, Any], policy: IngestPolicy) -> ParsedEmail:
    """The e-mail of a document in ``EmailPayload``'s terms."""
    payload = payload_from_document(EmailPayload, document)
    return parse_json(payload, limits=policy.mail_limits)


# --- handle: the payload becomes CRM entities ----------------------------------------


def stamped_lead(event: InboxEvent, lead: NormalizedLead) -> NormalizedLead:
    """``lead`` with a consent stated without a time dated by its event's arrival."""
    if lead.consent is None or lead.consent.stated_at is not None:
        return lead
    return replace(lead, consent=lead.consent.stamped(event.received_at))


def handle_lead(
    session: Session, event: InboxEvent, lead: NormalizedLead, policy: IngestPolicy
) -> Entities:
    """A lead: match or create the contact and customer, attribute, record."""
    result = capture_lead(
        session,
        source_id=event.source_id,
        event_id=event.id,
        lead=stamped_lead(event, lead),
        free_domains=policy.free_domains,
    )
    return result.entities


def handle_leads(
    session: Session, leads: Sequence[tuple[InboxEvent, NormalizedLead]], policy: IngestPolicy
) -> list[Entities]:
    """Many leads as one batch (``leads.batch``): a few statements for all of them."""
    items = [
        LeadItem(event.id, event.source_id, stamped_lead(event, lead)) for event, lead in leads
    ]
    results = capture_leads(session, items, free_domains=policy.free_domains)
    return [result.entities for result in results]


def build_order(document: dict[str, Any], policy: IngestPolicy) -> OrderPayload | RefundPayload:
    """The payload of a provider's order document: an order, or a refund on one
    (``{"refund": {...}}``)."""
    if "refund" in document:
        return payload_from_document(RefundDocument, document).refund
    return payload_from_document(OrderPayload, document)


def handle_order(
    session: Session, event: InboxEvent, order: OrderPayload | RefundPayload, policy: IngestPolicy
) -> Entities:
    """An order: the buyer's contact, products by SKU, the order and its lines; or a refund
    on an order the source sent before."""
    if isinstance(order, RefundPayload):
        try:
            refund = record_refund(
                session, source_id=event.source_id, event_id=event.id, refund=refund_command(order)
            )
        except InvalidInput as exc:  # named as the refund's fields in its document
            raise InvalidInput(
                FieldError(("refund", *error.loc), error.msg, error.type) for error in exc.errors
            ) from None
        return refund.items()
    buyer, touched = resolve_contact(session, order.email, None, free_domains=policy.free_domains)
    touched.extend(
        record_order(
            session,
            source_id=event.source_id,
            event_id=event.id,
            buyer=buyer,
            order=order_command(order),
        )
    )
    return touched.items()


def handle_deal(
    session: Session, event: InboxEvent, deal: DealPayload, policy: IngestPolicy
) -> Entities:
    """A deal update: the buyer's contact, the opportunity, its stage, its agreement."""
    buyer, touched = resolve_contact(session, deal.email, None, free_domains=policy.free_domains)
    touched.extend(
        record_deal(
            session,
            source_id=event.source_id,
            event_id=event.id,
            buyer=buyer,
            deal=deal_command(deal),
        )
    )
    return touched.items()


def resolve_requester(
    session: Session, *, source_id: int, requester: Requester, free_domains: frozenset[str]
) -> tuple[Contact, Touched]:
    """The requester's contact: by e-mail when the help desk sends one, else by the help desk's
    own user id (``external_id``), created with its customer the first time."""
    if requester.email:
        contact, touched = resolve_contact(
            session,
            requester.email,
            requester.name,
            free_domains=free_domains,
            field="requester.email",
        )
        if requester.external_id:
            remember_contact_reference(
                session, source_id=source_id, external_id=requester.external_id, contact=contact
            )
        return contact, touched
    assert requester.external_id is not None
    external_id = requester.external_id
    contact = retrying_on_conflict(
        session,
        lambda: contact_for_reference(
            session, source_id=source_id, external_id=external_id, name=requester.name
        ),
    )
    touched = Touched()
    touched.add(EntityType.CUSTOMER, contact.customer_id)
    touched.add(EntityType.CONTACT, contact.id)
    return contact, touched


def handle_ticket(
    session: Session, event: InboxEvent, ticket: TicketPayload, policy: IngestPolicy
) -> Entities:
    """A help-desk ticket: the requester's contact, the case, its status and comments."""
    requester, touched = resolve_requester(
        session,
        source_id=event.source_id,
        requester=ticket.requester,
        free_domains=policy.free_domains,
    )
    touched.extend(
        upsert_case_from_ticket(
            session,
            source_id=event.source_id,
            event_id=event.id,
            requester=requester,
            ticket=ticket_command(ticket),
            sla=policy.sla,
        )
    )
    return touched.items()


def handle_email(
    session: Session, event: InboxEvent, parsed: ParsedEmail, policy: IngestPolicy
) -> Entities:
    """An inbound e-mail: thread, file on a case or a contact, record."""
    context = MailContext(
        source_id=event.source_id,
        event_id=event.id,
        support_addresses=policy.support_addresses,
        sla=policy.sla,
        resolve_contact=lambda s, email, name: resolve_contact(
            s, email, name, free_domains=policy.free_domains, field="from"
        ),
        find_contact=find_contact,
        auto_ack=policy.auto_ack,
        case_tokens=policy.case_tokens,
        bounces=policy.bounces,
        # The store is made only for mail with files: a bad CRM_BLOB_URL spares the rest.
        blobs=policy.blobs if parsed.attachments else None,
    )
    outcome = receive_email(session, parsed=parsed, context=context)
    # A replay finds its own message already filed: the first decision stands.
    if not (outcome.decision == ThreadDecision.DUPLICATE and event.outcome):
        event.outcome = {"decision": outcome.decision.value, "reason": outcome.reason}
    return outcome.touched.items()


def parse_mail_events(event: InboxEvent, policy: IngestPolicy) -> list[DeliveryReport]:
    """Delivery events have no form of our own: only an e-mail provider sends them."""
    message = "mail_events come only from an e-mail provider's source"
    raise InvalidInput([FieldError(("kind",), message, "no_standard_form")])


def provider_reports(provider: str) -> Callable[[InboxEvent, IngestPolicy], list[DeliveryReport]]:
    """How the delivery reports of an e-mail ``provider``'s stored event post are read."""
    read = REPORT_READERS[provider]

    def parse(event: InboxEvent, policy: IngestPolicy) -> list[DeliveryReport]:
        return read(event.body, policy.max_json_depth)

    return parse


def handle_mail_events(
    session: Session, event: InboxEvent, reports: list[DeliveryReport], policy: IngestPolicy
) -> Entities:
    """A provider's delivery events: each report applied once to the message it names and its
    address (``bounces.reports``), as a verified DSN is."""
    event.outcome = {"reports": [_report_summary(report) for report in reports][:100]}
    return apply_delivery_reports(session, reports, policy=policy.bounces, event_id=event.id)


def _report_summary(report: DeliveryReport) -> dict[str, Any]:
    return {
        "id": report.report_id,
        "recipient": report.recipient,
        "outcome": report.outcome.value,
        "permanent": report.permanent,
    }


HANDLERS: dict[str, KindHandler[Any]] = {
    EventKind.LEADS: KindHandler(
        parse=parse_lead, handle=handle_lead, handle_many=handle_leads, build=build_lead
    ),
    EventKind.ORDERS: KindHandler(parse=parse_order, handle=handle_order, build=build_order),
    EventKind.DEALS: KindHandler(
        parse=parse_deal, handle=handle_deal, build=_document(DealPayload)
    ),
    EventKind.TICKETS: KindHandler(
        parse=parse_ticket, handle=handle_ticket, build=_document(TicketPayload)
    ),
    EventKind.EMAILS: KindHandler(
        parse=parse_email,
        handle=handle_email,
        build=build_email,
        readers={provider: provider_email(provider) for provider in MAIL_READERS},
    ),
    EventKind.MAIL_EVENTS: KindHandler(
        parse=parse_mail_events,
        handle=handle_mail_events,
        readers={provider: provider_reports(provider) for provider in REPORT_READERS},
    ),
}
