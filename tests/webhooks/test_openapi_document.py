"""The OpenAPI document covers every route, is valid, names each route's scope, and the
pages that show it load only what the app serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from webhooks.auth import guarded_endpoints
from webhooks.openapi.document import build_document, is_documented, openapi_path
from webhooks.openapi.registry import documented
from webhooks.openapi.views import SWAGGER_UI_VERSION

VENDORED = Path(__file__).parents[2] / "webhooks" / "openapi" / "static" / "swagger-ui"


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")  # no key: the document is public
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json  # type: ignore[return-value]


def _routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (openapi_path(rule), method.lower())
        for rule in app.url_map.iter_rules()
        if is_documented(rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_of_the_app_is_in_the_document_and_nothing_else(
    app: Flask, document: dict[str, Any]
) -> None:
    routes = _routes(app)
    assert ("/webhooks/{source_name}/{kind}", "post") in routes
    assert ("/api/customers/{customer_id}", "patch") in routes
    assert _operations(document) == routes


def test_a_route_without_a_description_is_missing_from_the_document(app: Flask) -> None:
    app.add_url_rule("/api/undocumented", "undocumented", lambda: "{}")
    assert ("/api/undocumented", "get") in _routes(app) - _operations(build_document(app))
    app.add_url_rule(
        "/api/described",
        "described",
        documented(summary="Described", responses={200: None})(lambda: "{}"),
    )
    assert ("/api/described", "get") in _operations(build_document(app))


def test_each_guarded_operation_requires_its_scope_and_the_others_are_public(
    app: Flask, document: dict[str, Any]
) -> None:
    scopes = guarded_endpoints(app)
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")  # Authorization: Bearer
    for path, item in document["paths"].items():
        for method, operation in item.items():
            endpoint = operation["operationId"]
            if endpoint in scopes:
                assert operation["security"] == [{"apiKey": [scopes[endpoint]]}], endpoint
                assert operation["x-required-scope"] == scopes[endpoint]
                assert {"401", "403"} <= set(operation["responses"]), endpoint
            else:
                assert operation["security"] == [], (path, method)
    assert document["paths"]["/api/audit"]["get"]["x-required-scope"] == "admin"
    assert document["paths"]["/api/campaigns"]["post"]["x-required-scope"] == "send"


def test_every_error_answer_is_a_problem_document(document: dict[str, Any]) -> None:
    """A problem for every client; a web form's refusals may be a page, for a browser."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or path.startswith("/unsubscribe/"):
                    continue  # the unsubscribe pages answer people, in HTML
                pages = path == "/forms/{source_name}" and status != "500"
                expected = ["application/problem+json", *(["text/html"] if pages else [])]
                assert list(response["content"]) == expected, (path, method, status)
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])


def test_schemas_come_from_the_models_the_code_validates_with(document: dict[str, Any]) -> None:
    from crm_core.editing.schemas import CustomerCreate

    create = document["paths"]["/api/customers"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"] == {"$ref": "#/components/schemas/CustomerCreate"}
    shown = document["components"]["schemas"]["CustomerCreate"]
    assert set(shown["properties"]) == set(CustomerCreate.model_fields)
    patch = document["paths"]["/api/contacts/{contact_id}"]["patch"]["requestBody"]["content"]
    assert set(patch) == {"application/json", "application/merge-patch+json"}


def test_versions_retries_and_files_are_described(app: Flask, document: dict[str, Any]) -> None:
    """ETags and If-None-Match on a record's read, If-Match on its writes, Idempotency-Key on
    every POST under /api that honours it, and the export's two file types."""
    from webhooks.idempotency import is_idempotent

    paths = document["paths"]
    shown = paths["/api/customers/{customer_id}"]["get"]
    assert {"200", "301", "304", "404"} <= set(shown["responses"])
    assert "ETag" in shown["responses"]["200"]["headers"]
    assert "If-None-Match" in {p["name"] for p in shown["parameters"]}
    patch = paths["/api/opportunities/{opportunity_id}"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"]}
    assert "412" in patch["responses"]
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()) or not rule.rule.startswith("/api/"):
            continue
        post = paths[openapi_path(rule)]["post"]
        names = {p["name"] for p in post["parameters"]}
        assert is_idempotent(app.view_functions[rule.endpoint]), rule.endpoint
        assert "Idempotency-Key" in names, rule.rule
        assert {"409", "422"} <= set(post["responses"]), rule.rule
    act = paths["/api/campaigns/{campaign_id}/{action}"]["post"]
    assert "If-Match" in {p["name"] for p in act["parameters"]}
    assert "412" in act["responses"]
    assert "ETag" in act["responses"]["200"]["headers"]
    export = paths["/api/contacts/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"text/csv; charset=utf-8", "application/x-ndjson"}


def test_the_docs_page_loads_only_what_the_app_serves(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "http" not in policy
    html = page.get_data(as_text=True)
    assert "<script>" not in html  # no inline script: the policy would refuse it
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(sources) == 3
    for source in sources:
        assert source.startswith("/docs/assets/"), source
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert asset.get_data(), source
    assert 'data-spec="/openapi.json"' in html


def test_swagger_ui_is_vendored_with_its_licence_and_version() -> None:
    assert "Apache License" in (VENDORED / "LICENSE").read_text()
    assert f"swagger-ui-dist {SWAGGER_UI_VERSION}" in (VENDORED / "VERSION").read_text()
    bundle = (VENDORED / "swagger-ui-bundle.js").read_bytes()
    assert len(bundle) > 1_000_000


def test_every_single_record_read_describes_its_etag(document: dict[str, Any]) -> None:
    """A GET of one record (a path ending in its id) answers with an ETag."""
    singles = [
        path
        for path, item in document["paths"].items()
        if "get" in item and path.endswith("_id}") and path.startswith(("/api/", "/events/"))
    ]
    assert "/api/campaigns/{campaign_id}" in singles
    for path in singles:
        assert "ETag" in document["paths"][path]["get"]["responses"]["200"]["headers"], path
