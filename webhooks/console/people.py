"""People (``/console/people``): search as you type (the API's search), and a customer's page:
its contacts (the primary marked), its timeline with filters, deals, orders, cases, campaigns,
marketing consent and suppressions. Writes (edit a contact, make one primary, merge
duplicates, log a call, a meeting or a note) go through the same ``crm_core.editing`` and
``crm_core.merges`` services as the API, with the signed-in user as the actor; a write the
service refuses shows the form again with each error beside its field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from crm_core import merges
from crm_core.activities.models import ActivityType
from crm_core.base.serialize import to_dict
from crm_core.customers.models import Contact, Customer
from crm_core.editing import activities, contacts
from crm_core.editing.etags import PreconditionFailed, etag, require_current
from crm_core.editing.records import RecordConflict, RecordMerged, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.permissions import Permission
from crm_core.readapi.customer_page import CustomerPage, customer_page
from crm_core.readapi.search import parse_query, search
from webhooks.console.access import console_route, current_actor
from webhooks.console.forms import FormErrors
from webhooks.state import crm_state

bp = Blueprint("people", __name__)

RESULTS = 20
REFRESH_SECONDS = 5
CONTACT_FIELDS = ("first_name", "last_name", "full_name", "email", "phone", "job_title", "country")
ACTIVITY_FIELDS = ("type", "summary", "body", "occurred_at", "duration_minutes", "contact_id")
LOGGED_TYPES = ("call", "meeting", "note")
STALE = "Someone changed this record since you opened it; the form shows it as it is now."
_MAX_ID = 2**63 - 1


def _recent_customers(db: Session) -> list[Customer]:
    query = (
        select(Customer)
        .where(Customer.merged_into.is_(None))
        .order_by(Customer.updated_at.desc(), Customer.id.desc())
        .limit(RESULTS)
    )
    return list(db.scalars(query))


@bp.get("")
@console_route(Permission.READ)
def index() -> tuple[str, int]:
    """Search (``?q=``), or the customers changed last (refreshing themselves)."""
    raw = request.args.get("q", "")
    errors, hits, recent = FormErrors(), [], []
    with crm_state().sessions() as db:
        if raw.strip():
            try:
                found = search(db, query=parse_query(raw), cursor=None, limit=RESULTS)
                hits = found.items
            except InvalidInput as exc:
                errors = FormErrors.of(exc, known=("q",))
        else:
            recent = [to_dict(c) for c in _recent_customers(db)]
    page = render_template(
        "console/people/index.html",
        q=raw,
        hits=hits,
        recent=recent,
        errors=errors,
        refresh_seconds=REFRESH_SECONDS,
    )
    return page, 422 if errors else 200


def _types(raw: list[str]) -> list[str]:
    known = {t.value for t in ActivityType}
    return [t for t in raw if t in known]


def _contact_label(contact: dict[str, Any]) -> str:
    name = contact.get("full_name") or " ".join(
        part for part in (contact.get("first_name"), contact.get("last_name")) if part
    )
    return f"{name or 'no name'} <{contact.get('email') or 'no address'}>"


def _render_customer(
    page: CustomerPage,
    *,
    types: list[str] | None = None,
    form: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> str:
    return render_template(
        "console/people/customer.html",
        page=page,
        c=page.customer,
        types=types or [],
        all_types=[t.value for t in ActivityType],
        logged_types=LOGGED_TYPES,
        contact_choices=[(str(p["id"]), _contact_label(p)) for p in page.customer["contacts"]],
        activity_form=form or {},
        activity_errors=errors or FormErrors(),
    )


@bp.get("/customers/<int:customer_id>")
@console_route(Permission.READ)
def customer(customer_id: int) -> str | Response:
    """A customer's page."""
    if customer_id > _MAX_ID:
        abort(404)
    types = _types(request.args.getlist("type"))
    with crm_state().sessions() as db:
        found = db.get(Customer, customer_id)
        if found is not None and found.merged_into is not None:
            return redirect(url_for(".customer", customer_id=found.merged_into), 303)
        try:
            page = customer_page(
                db, customer_id=customer_id, activity_types=types, cursor=request.args.get("after")
            )
        except InvalidInput:
            abort(400, "That link to older activities is not one this page made.")
        if page is None:
            abort(404, f"There is no customer {customer_id}.")
        return _render_customer(page, types=types)


@bp.get("/contacts/<int:contact_id>")
@console_route(Permission.READ)
def contact(contact_id: int) -> Response:
    """A contact is shown on its customer's page (its survivor's, once merged)."""
    with crm_state().sessions() as db:
        found = db.get(Contact, contact_id) if contact_id <= _MAX_ID else None
        while found is not None and found.merged_into is not None:
            found = db.get(Contact, found.merged_into)
        if found is None:
            abort(404, f"There is no contact {contact_id}.")
        target = url_for(".customer", customer_id=found.customer_id, _anchor=f"contact-{found.id}")
    return redirect(target, 303)


def _contact_form(db: Session, contact_id: int) -> tuple[Contact, dict[str, str]]:
    found = db.get(Contact, contact_id) if contact_id <= _MAX_ID else None
    if found is None or found.merged_into is not None:
        abort(404, f"There is no contact {contact_id}.")
    values = {name: getattr(found, name) or "" for name in CONTACT_FIELDS}
    values["etag"] = etag(db, "contact", contact_id) or ""
    return found, values


def _render_contact_form(
    contact_id: int, form: dict[str, str], errors: FormErrors, status: int = 200
) -> tuple[str, int]:
    with crm_state().sessions() as db:
        found, _ = _contact_form(db, contact_id)
        customer_id = found.customer_id
    page = render_template(
        "console/people/contact_form.html",
        contact_id=contact_id,
        customer_id=customer_id,
        form=form,
        errors=errors,
    )
    return page, status


@bp.get("/contacts/<int:contact_id>/edit")
@console_route(Permission.WRITE)
def edit_contact(contact_id: int) -> tuple[str, int]:
    """The form to change a contact."""
    with crm_state().sessions() as db:
        _, values = _contact_form(db, contact_id)
    return _render_contact_form(contact_id, values, FormErrors())


def _write(work: Callable[[Session], Any]) -> Any:
    """Run a write in one transaction, as the API's writes do."""
    with crm_state().sessions.begin() as db:
        return work(db)


@bp.post("/contacts/<int:contact_id>/edit")
@console_route(Permission.WRITE)
def update_contact(contact_id: int) -> Response | tuple[str, int]:
    """Change a contact; an empty field clears it."""
    form = {name: request.form.get(name, "").strip() for name in (*CONTACT_FIELDS, "etag")}
    document = {name: form[name] or None for name in CONTACT_FIELDS}

    def work(db: Session) -> Contact:
        require_current(db, "contact", contact_id, [form["etag"]] if form["etag"] else None)
        return contacts.update_contact(
            db,
            actor=current_actor(),
            contact_id=contact_id,
            document=document,
            default_region=crm_state().settings.default_region,
        )

    try:
        changed = _write(work)
    except (InvalidInput, RecordConflict) as exc:
        return _render_contact_form(contact_id, form, FormErrors.of(exc, known=CONTACT_FIELDS), 422)
    except PreconditionFailed:
        with crm_state().sessions() as db:
            _, current = _contact_form(db, contact_id)
        errors = FormErrors(general=[STALE])
        return _render_contact_form(contact_id, current, errors, 409)
    except (RecordNotFound, RecordMerged):
        abort(404, f"There is no contact {contact_id}.")
    flash("Contact saved.", "notice")
    return redirect(url_for(".contact", contact_id=changed.id), 303)


@bp.post("/contacts/<int:contact_id>/primary")
@console_route(Permission.WRITE)
def make_primary(contact_id: int) -> Response:
    """Make a contact its customer's primary contact."""
    try:
        _write(lambda db: contacts.make_primary(db, actor=current_actor(), contact_id=contact_id))
    except (RecordNotFound, RecordMerged):
        abort(404, f"There is no contact {contact_id}.")
    flash("Primary contact changed.", "notice")
    return redirect(url_for(".contact", contact_id=contact_id), 303)


def _merge_choices(db: Session, model: Any, record: Any) -> list[tuple[int, str]]:
    """The records ``record`` could be merged into: the other live contacts of its customer."""
    if model is not Contact:
        return []
    query = (
        select(Contact)
        .where(
            Contact.customer_id == record.customer_id,
            Contact.id != record.id,
            Contact.merged_into.is_(None),
        )
        .order_by(Contact.is_primary.desc(), Contact.id)
    )
    return [
        (c.id, f"#{c.id} {c.full_name or ''} <{c.email or 'no address'}>")
        for c in db.scalars(query)
    ]


def _render_merge(
    kind: str, record_id: int, form: dict[str, str], errors: FormErrors, status: int = 200
) -> tuple[str, int]:
    model: type[Contact] | type[Customer] = Contact if kind == "contact" else Customer
    with crm_state().sessions() as db:
        record: Contact | Customer | None = None
        if record_id <= _MAX_ID:
            record = db.get(Contact, record_id) if model is Contact else db.get(Customer, record_id)
        if record is None or record.merged_into is not None:
            abort(404, f"There is no {kind} {record_id}.")
        shown = to_dict(record)
        choices = _merge_choices(db, model, record)
    page = render_template(
        "console/people/merge.html",
        kind=kind,
        record=shown,
        choices=choices,
        form=form,
        errors=errors,
    )
    return page, status


@bp.get("/<any(contact, customer):kind>s/<int:record_id>/merge")
@console_route(Permission.WRITE)
def confirm_merge(kind: str, record_id: int) -> tuple[str, int]:
    """Choose the record a duplicate is merged into."""
    return _render_merge(kind, record_id, {}, FormErrors())


@bp.post("/<any(contact, customer):kind>s/<int:record_id>/merge")
@console_route(Permission.WRITE)
def merge(kind: str, record_id: int) -> Response | tuple[str, int]:
    """Merge a duplicate contact or customer into another; its rows move to the survivor."""
    form = {"into": request.form.get("into", "").strip()}
    into = int(form["into"]) if form["into"].isascii() and form["into"].isdigit() else form["into"]
    document = {"into": into}

    def work(db: Session) -> int:
        actor = current_actor()
        if kind == "contact":
            survivor, _ = merges.merge_contacts(
                db, actor=actor, contact_id=record_id, document=document
            )
            return survivor.customer_id
        kept, _ = merges.merge_customers(db, actor=actor, customer_id=record_id, document=document)
        return kept.id

    try:
        customer_id = _write(work)
    except (InvalidInput, RecordConflict) as exc:
        return _render_merge(kind, record_id, form, FormErrors.of(exc, known=("into",)), 422)
    except RecordNotFound as exc:
        if exc.entity_id == record_id:
            abort(404, f"There is no {kind} {record_id}.")
        errors = FormErrors(fields={"into": [f"there is no {kind} {exc.entity_id}"]})
        return _render_merge(kind, record_id, form, errors, 422)
    except RecordMerged as exc:
        errors = FormErrors(fields={"into": [str(exc)]})
        return _render_merge(kind, record_id, form, errors, 422)
    flash(f"{kind.capitalize()} {record_id} merged.", "notice")
    return redirect(url_for(".customer", customer_id=customer_id), 303)


def _activity_document(customer_id: int, form: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": form["type"],
        "summary": form["summary"],
        "body": form["body"] or None,
        "customer_id": customer_id,
    }
    for name in ("occurred_at", "duration_minutes", "contact_id"):
        if form[name]:
            document[name] = form[name]
    return document


@bp.post("/customers/<int:customer_id>/activities")
@console_route(Permission.WRITE)
def log_activity(customer_id: int) -> Response | tuple[str, int]:
    """Log a call, a meeting or a note on the customer (and one of its contacts)."""
    form = {name: request.form.get(name, "").strip() for name in ACTIVITY_FIELDS}
    document = _activity_document(customer_id, form)
    try:
        _write(lambda db: activities.log_activity(db, actor=current_actor(), document=document))
    except (InvalidInput, RecordConflict) as exc:
        errors = FormErrors.of(exc, known=ACTIVITY_FIELDS)
        with crm_state().sessions() as db:
            page = customer_page(db, customer_id=customer_id)
            if page is None:
                abort(404, f"There is no customer {customer_id}.")
            html = _render_customer(page, form=form, errors=errors)
        return html, 422
    except RecordNotFound:
        abort(404, f"There is no customer {customer_id}.")
    flash(f"{form['type'].capitalize()} logged.", "notice")
    return redirect(url_for(".customer", customer_id=customer_id, _anchor="timeline"), 303)
