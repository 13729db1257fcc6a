"""The JSON documents the write API accepts, validated with pydantic.

Create documents list every field a client may set; unknown fields are refused (a typo must
not be silently dropped). Updates are JSON merge patches (RFC 7396): a field that is absent is
left alone, ``null`` clears it, and ``attributes`` is merged key by key.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from crm_core.activities.models import Direction
from crm_core.base.storable import unstorable_fields
from crm_core.customers.models import CustomerKind, LifecycleStage
from crm_core.errors import FieldError, InvalidInput
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import normalize_country, normalize_email
from crm_core.sales.models import OpportunityStage
from crm_core.support.models import CasePriority, CaseStatus

M = TypeVar("M", bound=BaseModel)

Name80 = Annotated[str, Field(min_length=1, max_length=80)]
Text255 = Annotated[str, Field(min_length=1, max_length=255)]
Tag = Annotated[str, Field(min_length=1, max_length=60)]
Tags = Annotated[list[Tag], Field(max_length=50)]
AttributeKey = Annotated[str, Field(min_length=1, max_length=80)]
Attributes = Annotated[dict[AttributeKey, Any], Field(max_length=100)]


def _valid_email(value: str) -> str:
    """Checked here so a document's bad address is listed with its other errors."""
    try:
        normalize_email(value)
    except InvalidField as exc:
        raise ValueError(exc.message) from None
    return value


def _country_code(value: str) -> str:
    code = normalize_country(value)
    if code is None:
        raise ValueError("not a country code or name we know")
    return code


Email = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_valid_email)]
# An ISO 3166 alpha-2 code, from a code or a country's name ("de", "DEU", "Germany").
Country = Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_country_code)]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ConsentUpdate(_Document):
    """A person's e-mail marketing consent as they stated it to whoever records it:
    ``granted``, or ``denied`` (withdrawn). ``at`` is when they said so (default: now; a
    time without a zone is UTC), ``method`` how (``phone_call``, ``signed_form``…). As for a
    sender's statement, the latest by time wins: one older than the consent on record is
    refused."""

    status: Literal["granted", "denied"]
    at: Annotated[dt.datetime, AfterValidator(_as_utc)] | None = None
    method: Annotated[str, Field(min_length=1, max_length=80)] | None = None


class ContactFields(_Document):
    """A contact as a client writes it."""

    first_name: Name80 | None = None
    last_name: Name80 | None = None
    full_name: Text255 | None = None
    email: Email | None = None
    phone: Annotated[str, Field(max_length=80)] | None = None
    job_title: Text255 | None = None
    country: Country | None = None
    notes: Annotated[str, Field(max_length=20_000)] | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None
    # Stated again, never cleared: null is refused.
    marketing_consent: ConsentUpdate | None = None


class ContactCreate(ContactFields):
    """A new contact; ``primary`` makes it its customer's primary contact."""

    primary: StrictBool = False


class CustomerFields(_Document):
    """A customer as a client writes it."""

    name: Text255 | None = None
    kind: CustomerKind | None = None
    lifecycle_stage: LifecycleStage | None = None
    email: Email | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    website: Text255 | None = None
    industry: Name80 | None = None
    address_line1: Text255 | None = None
    address_line2: Text255 | None = None
    city: Name80 | None = None
    region: Name80 | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    country: Country | None = None
    owner: Text255 | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None


class CustomerCreate(CustomerFields):
    """A new customer with its primary contact (a customer never has none)."""

    name: Text255
    primary_contact: ContactFields


class CasePatch(_Document):
    """A change to a support case: its status, priority, assignee (a user's address) or tags
    (the whole list; null clears it)."""

    status: CaseStatus | None = None
    priority: CasePriority | None = None
    assignee: Email | None = None
    tags: Tags | None = None


EntityId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ActivityCreate(_Document):
    """A call, a meeting or a note logged on one or more entities (at least one)."""

    type: Literal["call", "meeting", "note"]
    summary: Annotated[str, Field(min_length=1, max_length=1000)]
    body: Annotated[str, Field(max_length=20_000)] | None = None
    direction: Direction = Direction.INTERNAL
    # When it happened (default: now); a time without a zone is UTC.
    occurred_at: Annotated[dt.datetime, AfterValidator(_as_utc)] | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    customer_id: EntityId | None = None
    contact_id: EntityId | None = None
    opportunity_id: EntityId | None = None
    order_id: EntityId | None = None
    support_case_id: EntityId | None = None


Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.upper)]
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2),
    AfterValidator(lambda amount: amount.quantize(Decimal("0.01"))),  # as the column keeps it
]


class OpportunityFields(_Document):
    """A deal as a client writes it; ``stage`` moves it (``won`` signs its agreement)."""

    name: Text255 | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None
    stage: OpportunityStage | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    expected_close_date: dt.date | None = None
    owner: Text255 | None = None
    contact_id: EntityId | None = None


class OpportunityCreate(OpportunityFields):
    """A new deal of a customer."""

    customer_id: EntityId
    name: Text255


class AgreementTermination(_Document):
    """The day an agreement ends."""

    terminated_on: dt.date


class MergeInto(_Document):
    """Which record of the same kind survives a merge."""

    into: EntityId


# Fields a patch may not clear with null: they have no "empty".
REQUIRED_ON_CUSTOMER = frozenset({"name", "kind", "lifecycle_stage"})
REQUIRED_ON_CASE = frozenset({"status", "priority"})
REQUIRED_ON_OPPORTUNITY = frozenset({"name", "stage"})


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(tuple(error["loc"]), error["msg"].removeprefix("Value error, "), error["type"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def parse(model: type[M], document: Any) -> M:
    """``document`` as ``model``; ``InvalidInput`` naming each bad field otherwise."""
    if not isinstance(document, dict):
        raise InvalidInput([FieldError((), "the body must be a JSON object")])
    unstorable = unstorable_fields(document)
    if unstorable:
        raise InvalidInput(unstorable)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(_field_errors(exc)) from None


def parse_patch(
    model: type[M], document: Any, *, not_null: frozenset[str] = frozenset()
) -> tuple[M, set[str]]:
    """A merge patch: the validated fields and the names the client sent (nulls included)."""
    patch = parse(model, document)
    nulls = sorted(
        name for name in patch.model_fields_set if name in not_null and document[name] is None
    )
    if nulls:
        raise InvalidInput([FieldError((name,), "cannot be null") for name in nulls])
    return patch, set(patch.model_fields_set)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` applied to ``target`` (a new value; neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
