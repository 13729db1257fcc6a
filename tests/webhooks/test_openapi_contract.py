"""Contract tests generated from the OpenAPI document, against the app on PostgreSQL.

For every operation, Schemathesis generates requests (valid and invalid) and sends them
with a key of the scope the operation needs: no answer is a 5xx, and every answer (status,
media type, headers, body) is one the document describes. The same requests sent with a
key of each other scope are refused with a 403 naming the scope, never a 2xx.

Bounded for CI (the suite runs on two cores): each operation is a test item of its own, and
the operations are split over three test functions (reads, writes, the public routes), so
``pytest -n`` spreads them; the boundary phase sends valid values only (the fuzzing phase
sends invalid ones too), ``max_examples`` is small, no health checks, no deadline.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import Settings
from crm_core.db import make_engine
from crm_core.models import metadata
from crm_core.people import api_keys
from crm_core.people.permissions import Actor, Scope
from tests import factories
from tests.keyring import TEST_KEYRING
from webhooks.app import create_app
from webhooks.openapi.document import build_document

pytestmark = [pytest.mark.postgres]

# The document does not depend on the database: built once, at collection.
DOCUMENT = build_document(
    create_app(
        Settings(database_url="sqlite://", broker_url="memory://", secret_key="contract tests")
    )
)
# The tests send the keys: no generated Authorization header, no OPTIONS (Flask answers it).
# The boundary (coverage) phase sends valid values only; the fuzzing phase sends both kinds.
_CONFIG = {
    "generation": {"with-security-parameters": False},
    "phases": {
        "coverage": {
            "unexpected-methods": [],
            "generate-duplicate-query-parameters": False,
            "generation": {"mode": "positive"},
        }
    },
}
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(_CONFIG))
# Three parts, so that workers share them out.
reads = schema.include(method="GET", path_regex="^/api/|^/events/")
writes = schema.exclude(method="GET").include(path_regex="^/api/")
public = schema.exclude(path_regex="^/api/|^/events/")
# A refusal does not depend on the input: a few generated requests per scope show it.
refusals = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {**_CONFIG, "phases": {"coverage": {"enabled": False}, "examples": {"enabled": False}}}
    ),
).include(path_regex="^/api/|^/events/")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 10
DENIED_EXAMPLES = 3
BOUNDED = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,
    "database": None,
}
OPERATOR = Actor.operator("contract tests")


@schemathesis.serializer("message/rfc822")
def _rfc822(context: Any, value: Any) -> bytes:
    """A raw e-mail, as the ``emails`` kind takes it."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""


def _seed(session: Session) -> dict[str, int]:
    """A record of each kind, so generated ids (small ones come often) find real rows."""
    for factory in factories.ALL_FACTORIES:
        factory._meta.sqlalchemy_session = session
    try:
        customer = factories.CustomerFactory()
        contact = factories.ContactFactory(
            customer=customer,
            is_primary=True,
            marketing_consent="granted",
            marketing_consent_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            marketing_consent_method="form_checkbox",
        )
        case = factories.SupportCaseFactory(customer_id=customer.id, contact_id=contact.id)
        opportunity = factories.OpportunityFactory(customer=customer)
        agreement = factories.AgreementFactory(customer_id=customer.id)
        opportunity.agreements.append(agreement)
        order = factories.OrderFactory(customer_id=customer.id)
        product = factories.ProductFactory()
        session.add(
            m.OrderLine(
                order_id=order.id,
                product_id=product.id,
                line_no=1,
                quantity=2,
                unit_price=Decimal("10.00"),
                line_total=Decimal("20.00"),
            )
        )
        activity = m.Activity(
            type="note",
            summary="Called back",
            customer_id=customer.id,
            contact_id=contact.id,
            opportunity_id=opportunity.id,
            support_case_id=case.id,
            details={"body": "x" * 600},
        )
        session.add(activity)
        session.add(
            m.FollowUpTask(
                rule="case-waiting",
                subject_type="support_case",
                subject_id=case.id,
                customer_id=customer.id,
                support_case_id=case.id,
                title="Answer the case",
                due_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )
        )
        event = factories.InboxEventFactory()
        campaign = factories.MarketingCampaignFactory()
        session.add(m.Suppression(email_normalized="gone@example.com", reason="unsubscribed"))
        session.flush()
        return {
            "customer_id": customer.id,
            "contact_id": contact.id,
            "case_id": case.id,
            "opportunity_id": opportunity.id,
            "agreement_id": agreement.id,
            "order_id": order.id,
            "activity_id": activity.id,
            "event_id": event.id,
            "campaign_id": campaign.id,
        }
    finally:
        for factory in factories.ALL_FACTORIES:
            factory._meta.sqlalchemy_session = None


@pytest.fixture(scope="module")
def seeded(postgres_url: str) -> Iterator[dict[str, int]]:
    """The ids of a record of each kind; every table emptied when the module is done."""
    engine = make_engine(postgres_url, keyring=TEST_KEYRING)
    with Session(engine) as session, session.begin():
        ids = _seed(session)
    yield ids
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(scope="module")
def live(
    postgres_url: str, seeded: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Flask:
    """The app on PostgreSQL, with a record of each kind in it."""
    app = create_app(
        Settings(
            database_url=postgres_url,
            broker_url="memory://",
            ratelimit_url="memory://",
            ratelimit_prefix=f"contract-{uuid.uuid4().hex}",
            auth_failures_per_window=0,
            max_json_bytes=64 * 1024,
            max_email_bytes=256 * 1024,
            secret_key="contract tests secret key",
            public_url="https://crm.example.com",
            mail_url=f"file://{tmp_path_factory.mktemp('outbox')}",
            var_dir=tmp_path_factory.mktemp("var"),
        )
    )
    seeded["attachment_id"] = _seed_attachment(app, activity_id=seeded["activity_id"])
    return app


def _seed_attachment(app: Flask, *, activity_id: int) -> int:
    """An attachment of the seeded activity, its bytes in the app's blob store."""
    content = b"%PDF-1.4 contract test"
    state = app.extensions["crm"]
    with state.sessions.begin() as session:
        row = m.StoredAttachment(
            activity_id=activity_id,
            filename="Problem report.pdf",
            content_type="application/pdf",
            size=len(content),
            sha256=state.blobs.put(content),
        )
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture(scope="module")
def keys(live: Flask) -> dict[str, str]:
    """A key of each scope, by scope."""
    made = {}
    with live.extensions["crm"].sessions.begin() as session:
        for scope in Scope:
            _, made[scope.value] = api_keys.create_api_key(
                session, actor=OPERATOR, name=f"contract-{scope.value}", scopes=[scope.value]
            )
    return made


def _scope(case: Any) -> str | None:
    scope: str | None = case.operation.definition.raw.get("x-required-scope")
    return scope


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _answers_as_documented(case: Any, live: Flask, keys: dict[str, str]) -> None:
    scope = _scope(case)
    headers = _bearer(keys[scope]) if scope else None
    case.call_and_validate(app=live, headers=headers, checks=CHECKS)


@reads.parametrize()
@settings(max_examples=MAX_EXAMPLES, **BOUNDED)
def test_reads_match_the_document_and_are_never_5xx(
    case: Any, live: Flask, keys: dict[str, str]
) -> None:
    _answers_as_documented(case, live, keys)


@writes.parametrize()
@settings(max_examples=MAX_EXAMPLES, **BOUNDED)
def test_writes_match_the_document_and_are_never_5xx(
    case: Any, live: Flask, keys: dict[str, str]
) -> None:
    _answers_as_documented(case, live, keys)


@public.parametrize()
@settings(max_examples=MAX_EXAMPLES, **BOUNDED)
def test_public_routes_match_the_document_and_are_never_5xx(
    case: Any, live: Flask, keys: dict[str, str]
) -> None:
    _answers_as_documented(case, live, keys)


@refusals.parametrize()
@settings(max_examples=DENIED_EXAMPLES, **BOUNDED)
def test_a_key_without_the_scope_is_refused_naming_it(
    case: Any, live: Flask, keys: dict[str, str]
) -> None:
    needed = _scope(case)
    assert needed is not None, "every /api/ and /events/ operation needs a scope"
    for scope, key in keys.items():
        if scope == needed:
            continue
        response = case.call(app=live, headers=_bearer(key))
        assert not 200 <= response.status_code < 300, (scope, case.operation.label)
        if response.status_code == 403:
            assert response.json()["scope"] == needed
        else:  # refused before the key is looked at: a path that names nothing
            assert response.status_code in (400, 404, 405, 413), response.status_code
        case.validate_response(response, checks=CHECKS)


READS = [
    "/api/customers",
    "/api/customers/{customer_id}",
    "/api/customers/{customer_id}/timeline",
    "/api/contacts/{contact_id}",
    "/api/contacts/{contact_id}/timeline",
    "/api/contacts",
    "/api/cases",
    "/api/opportunities",
    "/api/opportunities/{opportunity_id}/timeline",
    "/api/orders",
    "/api/products",
    "/api/agreements",
    "/api/agreements/{agreement_id}",
    "/api/cases/{case_id}",
    "/api/activities/{activity_id}",
    "/api/attachments/{attachment_id}",
    "/api/opportunities/{opportunity_id}",
    "/api/orders/{order_id}",
    "/api/followups",
    "/api/suppressions",
    "/events/{event_id}",
    "/api/campaigns",
    "/api/campaigns/{campaign_id}",
    "/api/search",
]


@pytest.mark.parametrize("path", READS)
def test_real_records_are_answered_as_the_document_says(
    live: Flask, keys: dict[str, str], seeded: dict[str, int], path: str
) -> None:
    operation = schema[path]["GET"]
    names = [p.name for p in operation.path_parameters]
    query = {"q": "Problem"} if path == "/api/search" else None
    case = operation.Case(path_parameters={name: seeded[name] for name in names}, query=query)
    response = case.call_and_validate(app=live, headers=_bearer(keys["read"]), checks=CHECKS)
    assert response.status_code == 200, response.text
    if path == "/api/attachments/{attachment_id}":
        assert response.content == b"%PDF-1.4 contract test"
        return
    body = response.json()
    assert body.get("items") or body.get("id") or body.get("event_id"), body
