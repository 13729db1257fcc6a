"""Contract tests generated from the OpenAPI document, against the app on PostgreSQL.

For every operation, Schemathesis generates requests (valid and invalid) and sends them
with a key of the scope the operation needs: no answer is a 5xx, and every answer (status,
media type, headers, body) is one the document describes. The same requests sent with a
key of each other scope are refused with a 403 naming the scope, never a 2xx.

Bounded for CI: ``max_examples`` per operation, no health checks, no deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
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
_CONFIG = {
    "generation": {"with-security-parameters": False},
    "phases": {"coverage": {"unexpected-methods": []}},
}
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(_CONFIG))
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
MAX_EXAMPLES = 25
DENIED_EXAMPLES = 5
BOUNDED = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,
    "database": None,
}
OPERATOR = Actor.operator("contract tests")


def _seed(session: Session) -> None:
    """A record of each kind, so generated ids (small ones come often) find real rows."""
    for factory in factories.ALL_FACTORIES:
        factory._meta.sqlalchemy_session = session
    try:
        customer = factories.CustomerFactory()
        contact = factories.ContactFactory(customer=customer, is_primary=True)
        case = factories.SupportCaseFactory(customer_id=customer.id, contact_id=contact.id)
        opportunity = factories.OpportunityFactory(customer=customer)
        opportunity.agreements.append(factories.AgreementFactory(customer_id=customer.id))
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
        session.add(
            m.Activity(
                type="note",
                summary="Called back",
                customer_id=customer.id,
                support_case_id=case.id,
                details={"body": "x" * 600},
            )
        )
        factories.InboxEventFactory()
        factories.MarketingCampaignFactory()
        session.add(m.Suppression(email_normalized="gone@example.com", reason="unsubscribed"))
        session.flush()
    finally:
        for factory in factories.ALL_FACTORIES:
            factory._meta.sqlalchemy_session = None


@pytest.fixture(scope="module")
def live(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app on PostgreSQL with a record of each kind; emptied when the module is done."""
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
        )
    )
    engine = make_engine(postgres_url, keyring=TEST_KEYRING)
    with Session(engine) as session, session.begin():
        _seed(session)
    yield app
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


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


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **BOUNDED)
def test_answers_match_the_document_and_are_never_5xx(
    case: Any, live: Flask, keys: dict[str, str]
) -> None:
    scope = _scope(case)
    headers = _bearer(keys[scope]) if scope else None
    case.call_and_validate(app=live, headers=headers, checks=CHECKS)


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

