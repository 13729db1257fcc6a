"""Merging two contacts, or two customers, that are one and the same.

Everything that points at the merged record moves to the survivor: activities, cases,
orders, deals, agreements, follow-up tasks, campaign sends and memberships, senders' ids
and the events' links. The merged row stays as a tombstone (``merged_into``) that the API
answers with a redirect, and whose address, phone and domain still lead a later lead or
e-mail to the survivor. The survivor's empty fields are filled from the merged record; no
value of the survivor is overwritten, but for marketing consent: the newer statement of the
two stands, by the rule every sender's statement follows (``apply_consent``). Suppressions are
kept by address, so they follow it.

Two contacts merge only within one customer (a case's or an order's contact belongs to its
customer): merge the customers first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from crm_core.activities.models import Activity, Direction
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.campaigns.models import CampaignMember, CampaignSend
from crm_core.customers.consent import ConsentStatement, apply_consent
from crm_core.customers.models import ConsentStatus, Contact, Customer, LifecycleStage
from crm_core.customers.services import set_primary_contact
from crm_core.db import Versioned
from crm_core.editing import contacts as contact_edits
from crm_core.editing import customers as customer_edits
from crm_core.editing import records
from crm_core.editing.etags import require_current
from crm_core.editing.records import RecordConflict, RecordMerged, RecordNotFound
from crm_core.editing.schemas import MergeInto, parse
from crm_core.errors import FieldError, InvalidInput
from crm_core.followups.models import FollowUpTask, SubjectType
from crm_core.ingestion.models import EventEntity
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.sales.models import Agreement, Opportunity, Order
from crm_core.support.models import SupportCase

# Fields a merge fills on the survivor when it has none; identity columns are handled apart.
CONTACT_FILLED = (
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "phone_raw",
    "phone_valid",
    "job_title",
    "country",
    "notes",
)
CUSTOMER_FILLED = (
    "email",
    "phone",
    "website",
    "industry",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "owner",
)
_STAGE_RANK: dict[str, int] = {
    LifecycleStage.LEAD: 0,
    LifecycleStage.PROSPECT: 1,
    LifecycleStage.CUSTOMER: 2,
}


def _pair(session: Session, model: type[Any], what: str, source_id: int, into_id: int) -> tuple:
    """Both rows, locked in id order (two opposite merges cannot deadlock), checked.

    Locked before ``If-Match`` is checked, for the same reason."""
    if source_id == into_id:
        raise InvalidInput([FieldError(("into",), f"a {what} cannot be merged into itself")])
    rows = {}
    for ident in sorted((source_id, into_id)):
        rows[ident] = session.get(model, ident, with_for_update=True)
    source, into = rows[source_id], rows[into_id]
    if source is None:
        raise RecordNotFound(what, source_id)
    if source.merged_into is not None:
        raise RecordMerged(what, source_id, source.merged_into)
    if into is None:
        raise InvalidInput([FieldError(("into",), f"no {what} {into_id}")])
    if into.merged_into is not None:
        raise RecordConflict(
            f"{what} {into_id} was itself merged into {into.merged_into}: merge into that one",
            field="into",
        )
    return source, into


def _fill(into: Any, source: Any, fields: tuple[str, ...]) -> None:
    for name in fields:
        if getattr(into, name) is None and getattr(source, name) is not None:
            setattr(into, name, getattr(source, name))
    into.tags = records.clean_tags([*(into.tags or []), *(source.tags or [])])
    into.attributes = {**(source.attributes or {}), **(into.attributes or {})}


def _take_consent(into: Contact, source: Contact) -> dict[str, dict[str, Any]]:
    """The merged contact's consent goes to the survivor when it is the newer statement (the
    same rule as a sender's statement, ``apply_consent``); the survivor's changes, as audited."""
    if source.marketing_consent is None:
        return {}
    statement = ConsentStatement(
        ConsentStatus(source.marketing_consent),
        source.marketing_consent_at,
        source.marketing_consent_method,
    )
    changes = apply_consent(into, statement, source_id=source.marketing_consent_source_id)
    return {k: {"before": v["from"], "after": v["to"]} for k, v in changes.items()}


def _repoint(session: Session, column: Any, old: int, new: int, *extra: Any) -> int:
    """Point ``column`` from ``old`` to ``new`` in one UPDATE; the number of rows moved."""
    model = column.class_
    values: dict[str, Any] = {column.key: new}
    if issubclass(model, Versioned):  # a bulk UPDATE bypasses the ORM's counter
        values["version"] = model.version + 1
    statement = update(model).where(column == old, *extra).values(values)
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _repoint_keyed(
    session: Session,
    model: type[Any],
    column: Any,
    old: int,
    new: int,
    key: tuple[Any, ...],
    *extra: Any,
) -> int:
    """Like ``_repoint`` for a table where ``key`` + ``column`` is unique: a row the survivor
    already has an equal of is dropped (it said the same thing twice)."""
    twin = aliased(model)
    same = and_(*(getattr(twin, c.key) == c for c in key), getattr(twin, column.key) == new)
    session.execute(
        delete(model)
        .where(column == old, exists().where(same), *extra)
        .execution_options(synchronize_session=False)
    )
    return _repoint(session, column, old, new, *extra)


def _repoint_entity(session: Session, entity_type: str, old: int, new: int) -> dict[str, int]:
    """Senders' ids and events' links that name ``old`` now name ``new``."""
    refs = _repoint(
        session, ExternalRef.entity_id, old, new, ExternalRef.entity_type == entity_type
    )
    links = _repoint_keyed(
        session,
        EventEntity,
        EventEntity.entity_id,
        old,
        new,
        (EventEntity.event_id, EventEntity.entity_type),
        EventEntity.entity_type == entity_type,
    )
    return {"external_refs": refs, "event_links": links}


def _merge_activity(session: Session, actor: Actor, summary: str, **links: Any) -> Activity:
    details = links.pop("details")
    activity = Activity(
        type="note",
        direction=Direction.INTERNAL,
        summary=summary,
        details={"author": actor.label, "merge": details},
        **links,
    )
    session.add(activity)
    return activity


def _contact_rows(session: Session, old: int, new: int) -> dict[str, int]:
    c = {
        "activities": _repoint(session, Activity.contact_id, old, new),
        "cases": _repoint(session, SupportCase.contact_id, old, new),
        "orders": _repoint(session, Order.contact_id, old, new),
        "opportunities": _repoint(session, Opportunity.contact_id, old, new),
    }
    # A reminder fires once per rule and subject: the survivor's own one wins.
    contact_tasks = FollowUpTask.subject_type == SubjectType.CONTACT
    task = aliased(FollowUpTask)
    session.execute(
        delete(FollowUpTask)
        .where(
            contact_tasks,
            FollowUpTask.subject_id == old,
            exists().where(
                task.rule == FollowUpTask.rule,
                task.subject_type == SubjectType.CONTACT,
                task.subject_id == new,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    _repoint(session, FollowUpTask.subject_id, old, new, contact_tasks)
    c["followups"] = _repoint(session, FollowUpTask.contact_id, old, new)
    # A send row is one message to one address in one run: where both contacts were sent the
    # same run, the merged contact's row stays with its tombstone (it was a separate message).
    twin = aliased(CampaignSend)
    c["campaign_sends"] = _repoint(
        session,
        CampaignSend.contact_id,
        old,
        new,
        ~exists().where(
            twin.contact_id == new,
            twin.campaign_id == CampaignSend.campaign_id,
            twin.run == CampaignSend.run,
        ),
    )
    return c | _repoint_entity(session, EntityType.CONTACT, old, new)


def merge_contacts(
    session: Session,
    *,
    actor: Actor,
    contact_id: int,
    document: Any,
    if_match: Sequence[str] | None = None,
) -> tuple[Contact, dict[str, int]]:
    """Merge contact ``contact_id`` into ``document["into"]`` (same customer); the survivor
    and how many rows of each kind moved. ``if_match`` is checked against the merged one."""
    actor.require(Permission.WRITE)
    into_id = parse(MergeInto, document).into
    source, into = _pair(session, Contact, "contact", contact_id, into_id)
    require_current(session, "contact", contact_id, if_match)
    if source.customer_id != into.customer_id:
        raise InvalidInput(
            [
                FieldError(
                    ("into",),
                    f"contact {into_id} belongs to customer {into.customer_id}, contact"
                    f" {contact_id} to customer {source.customer_id}: merge the customers first",
                )
            ]
        )
    before = records.snapshot(into, contact_edits.AUDITED)
    moved = _contact_rows(session, source.id, into.id)
    _fill(into, source, CONTACT_FILLED)
    consent = _take_consent(into, source)
    if into.email_normalized is None and source.email_normalized is not None:
        address, normalized = source.email, source.email_normalized
        source.email_normalized = None  # the unique address moves: released first
        session.flush()
        into.email, into.email_normalized = address, normalized
    if source.last_activity_at and (
        into.last_activity_at is None or into.last_activity_at < source.last_activity_at
    ):
        into.last_activity_at = source.last_activity_at
    source.merged_into = into.id
    if source.is_primary:
        source.is_primary = False
        session.flush()
        set_primary_contact(session, contact=into)
    session.flush()
    _merge_activity(
        session,
        actor,
        f"Contact #{source.id} merged into contact #{into.id}",
        customer_id=into.customer_id,
        contact_id=into.id,
        details={"entity": "contact", "merged": source.id, "into": into.id, "moved": moved},
    )
    _record(session, actor, "contact", source.id, into.id, moved)
    changes = audit.changes_between(before, records.snapshot(into, contact_edits.AUDITED))
    changes |= consent
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="contact",
            entity_id=into.id,
            action="update",
            changes=changes,
        )
    return into, moved


def _record(
    session: Session, actor: Actor, entity: str, merged: int, into: int, moved: dict[str, int]
) -> None:
    audit.record(
        session,
        actor=actor,
        entity=entity,
        entity_id=merged,
        action="merge",
        changes={"merged_into": {"before": None, "after": into}, "moved": moved},
    )


def _customer_rows(session: Session, old: int, new: int) -> dict[str, int]:
    # The survivor keeps its primary contact; the merged customer's contacts join as others.
    has_primary = session.scalar(
        select(Contact.id).where(Contact.customer_id == new, Contact.is_primary).limit(1)
    )
    if has_primary is not None:
        session.execute(
            update(Contact)
            .where(Contact.customer_id == old, Contact.is_primary)
            .values(is_primary=False, version=Contact.version + 1)
            .execution_options(synchronize_session="fetch")
        )
    moved = {
        "contacts": _repoint(session, Contact.customer_id, old, new),
        "activities": _repoint(session, Activity.customer_id, old, new),
        "cases": _repoint(session, SupportCase.customer_id, old, new),
        "orders": _repoint(session, Order.customer_id, old, new),
        "opportunities": _repoint(session, Opportunity.customer_id, old, new),
        "agreements": _repoint(session, Agreement.customer_id, old, new),
        "followups": _repoint(session, FollowUpTask.customer_id, old, new),
        "campaign_members": _repoint_keyed(
            session,
            CampaignMember,
            CampaignMember.customer_id,
            old,
            new,
            (CampaignMember.campaign_id,),
        ),
    }
    return moved | _repoint_entity(session, EntityType.CUSTOMER, old, new)


def merge_customers(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    document: Any,
    if_match: Sequence[str] | None = None,
) -> tuple[Customer, dict[str, int]]:
    """Merge customer ``customer_id`` into ``document["into"]``: its contacts and everything
    else move over; the survivor and how many rows of each kind moved. ``if_match`` is checked
    against the merged one."""
    actor.require(Permission.WRITE)
    into_id = parse(MergeInto, document).into
    source, into = _pair(session, Customer, "customer", customer_id, into_id)
    require_current(session, "customer", customer_id, if_match)
    before = records.snapshot(into, customer_edits.AUDITED)
    session.flush()
    moved = _customer_rows(session, source.id, into.id)
    session.expire_all()  # bulk moves: read the rows again from here
    source, into = session.get_one(Customer, customer_id), session.get_one(Customer, into_id)
    _fill(into, source, CUSTOMER_FILLED)
    if into.domain is None and source.domain is not None:
        domain, source.domain = source.domain, None  # unique: released first
        session.flush()
        into.domain = domain
    stages = (source.lifecycle_stage, into.lifecycle_stage)
    if all(s in _STAGE_RANK for s in stages) and _STAGE_RANK[stages[0]] > _STAGE_RANK[stages[1]]:
        into.lifecycle_stage = source.lifecycle_stage
    source.merged_into = into.id
    session.flush()
    _merge_activity(
        session,
        actor,
        f"Customer #{source.id} ({source.name}) merged into customer #{into.id}",
        customer_id=into.id,
        details={"entity": "customer", "merged": source.id, "into": into.id, "moved": moved},
    )
    _record(session, actor, "customer", source.id, into.id, moved)
    changes = audit.changes_between(before, records.snapshot(into, customer_edits.AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="customer",
            entity_id=into.id,
            action="update",
            changes=changes,
        )
    return into, moved
