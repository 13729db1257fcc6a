"""The OpenAPI 3.1 document of an app, built from its URL map and each view's ``@documented``.

Schemas come from the pydantic models themselves (``models_json_schema`` with references
into ``#/components/schemas``): request bodies in validation mode, answers in serialization
mode. A guarded route's security requirement names the scope it needs, from
``ROUTE_PERMISSIONS``.

Why not a library: spectree and flask-openapi3 validate the request themselves (their own
422 bodies, not our problem documents, and a second validation beside the services'), and
flask-openapi3 wants views rewritten to its signatures; apispec would still need this walk
and a pydantic plugin. What is left to write is this one small module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from flask import Flask
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from werkzeug.routing import Rule

from webhooks.auth import guarded_endpoints
from webhooks.idempotency import HEADER as IDEMPOTENCY_KEY
from webhooks.idempotency import MAX_KEY_LENGTH, is_idempotent
from webhooks.openapi.registry import HTML, Body, Operation, operation_of
from webhooks.problems import PROBLEM_CONTENT_TYPE, Problem

REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "apiKey"
# Served files, not operations: the only routes the document leaves out, with the console's
# pages (HTML for people in a browser, signed in with a session, not an API).
STATIC_ENDPOINTS = frozenset({"static", "apidocs.static"})
BROWSER_BLUEPRINTS = frozenset({"console", "console_root"})


def is_documented(rule: Rule) -> bool:
    """Whether the OpenAPI document describes ``rule``: not a static file or a console page."""
    return (
        rule.endpoint not in STATIC_ENDPOINTS
        and rule.endpoint.split(".", 1)[0] not in BROWSER_BLUEPRINTS
    )


_ARGUMENT = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>.*?)\))?:)?(?P<name>[^>]+)>"
)


def documented_rules(app: Flask) -> Iterator[tuple[Rule, str]]:
    """Every (rule, method) the document covers: all but static files, HEAD and OPTIONS."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not is_documented(rule):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method.lower()


def openapi_path(rule: Rule) -> str:
    """``/api/customers/<int:customer_id>`` -> ``/api/customers/{customer_id}``."""
    return _ARGUMENT.sub(lambda m: "{" + m["name"] + "}", rule.rule)


def _path_schema(converter: str | None, args: str | None) -> dict[str, Any]:
    if converter == "int":
        return {"type": "integer", "minimum": 0}
    if converter == "any" and args:
        return {"type": "string", "enum": [a.strip().strip("'\"") for a in args.split(",")]}
    if converter == "path":
        return {"type": "string", "minLength": 1}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _path_parameters(rule: Rule, operation: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": m["name"],
            "in": "path",
            "required": True,
            "schema": operation.path.get(m["name"]) or _path_schema(m["converter"], m["args"]),
        }
        for m in _ARGUMENT.finditer(rule.rule)
    ]


class _Schemas:
    """Collects the models an app's routes use; ``ref`` names them before they are built."""

    def __init__(self) -> None:
        self.models: dict[tuple[type, JsonSchemaMode], None] = {}

    def ref(self, model: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        if isinstance(model, dict):
            return model
        if isinstance(model, tuple):
            return {"anyOf": [self.ref(one, mode) for one in model]}
        self.models[(model, mode)] = None
        return {"$ref": f"__{id(model)}__{mode}"}

    def build(self, document: dict[str, Any]) -> None:
        """Resolve the placeholders in ``document`` and fill ``components.schemas``."""
        inputs: list[tuple[str, Any, TypeAdapter[Any]]] = [
            (f"__{id(model)}__{mode}", mode, TypeAdapter(model)) for model, mode in self.models
        ]
        keys, top = TypeAdapter.json_schemas(inputs, ref_template=REF)
        names = {key: schema for (key, _), schema in keys.items()}
        document["components"]["schemas"] = dict(sorted(top.get("$defs", {}).items()))

        def resolve(node: Any) -> Any:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref in names:
                    return names[ref]
                return {key: resolve(value) for key, value in node.items()}
            if isinstance(node, list):
                return [resolve(item) for item in node]
            return node

        document["paths"] = resolve(document["paths"])


def _content(body: Body, schemas: _Schemas, mode: JsonSchemaMode) -> dict[str, Any]:
    schema = schemas.ref(body.schema, mode)
    return {media: {"schema": schema} for media in body.media_types}


def _problem(description: str, schemas: _Schemas, *, page: bool = False) -> dict[str, Any]:
    content = {PROBLEM_CONTENT_TYPE: {"schema": schemas.ref(Problem, "serialization")}}
    if page:
        content[HTML] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def _response(status: int, answer: Any, schemas: _Schemas, *, pages: bool) -> dict[str, Any]:
    if isinstance(answer, str):
        return _problem(answer, schemas, page=pages and status != 500)
    if answer is None:
        return {"description": HTTPStatus(status).phrase}
    body = answer if isinstance(answer, Body) else Body(answer)
    response: dict[str, Any] = {"description": body.description or HTTPStatus(status).phrase}
    if body.schema is not None:
        response["content"] = _content(body, schemas, "serialization")
    if body.headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in body.headers.items()
        }
    return response


def _common_responses(
    rule: Rule, operation: Operation, scope: str | None, idempotent: bool
) -> dict[int, str]:
    """What any route like this one can answer, besides what it declares."""
    common = {
        500: "The server could not complete the request (logged).",
        503: "A setting the route needs is missing (the problem names it), or a service is down.",
    }
    if rule.arguments:
        common[404] = "No such record, or a path that names none."
    if operation.query is not None:
        common[400] = "A query parameter is not valid (each one named)."
    if operation.request is not None:
        common[413] = "The body is larger than the server takes."
    if scope is not None:
        common[401] = "No valid API key (``Authorization: Bearer <key>``)."
        common[403] = f"The key lacks the ``{scope}`` scope; the problem names it."
        common[429] = "Too many failed attempts from this client; retry later."
    if idempotent:
        common[400] = "The ``Idempotency-Key`` (or a query parameter) is not valid."
        common[409] = "A request with this ``Idempotency-Key`` is still running (``Retry-After``)."
        common[422] = "This ``Idempotency-Key`` was used with another request."
    return common


_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": "A key of your choosing: a retry with it replays the first answer "
    "(``Idempotent-Replayed: true``) and does nothing again. Kept per key and API key.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``defs`` replaced by what it names."""
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inlined({**defs[ref.rsplit("/", 1)[-1]], **rest}, defs)
    return {key: _inlined(value, defs) for key, value in node.items()}


def _query_schema(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema, self-contained: a parameter is absent, never null."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    schema = _inlined(dict(options[0]) if len(options) == 1 else {"anyOf": options}, defs)
    for key in ("title", "description", "default"):
        schema.pop(key, None)
    if prop.get("default") is not None:
        schema["default"] = prop["default"]
    return schema


def _query_parameters(model: type | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    assert issubclass(model, BaseModel)
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _query_schema(prop, defs),
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema["properties"].items()
    ]


def _operation_id(rule: Rule, method: str) -> str:
    methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
    return rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method}"


def _operation(
    rule: Rule,
    method: str,
    operation: Operation,
    scope: str | None,
    schemas: _Schemas,
    *,
    idempotent: bool = False,
) -> dict[str, Any]:
    view_doc: dict[str, Any] = {
        "operationId": _operation_id(rule, method),
        "summary": operation.summary,
        "tags": list(operation.tags),
        "parameters": _path_parameters(rule, operation)
        + _query_parameters(operation.query)
        + [
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": {"type": "string"},
            }
            for h in operation.headers
        ]
        + ([_IDEMPOTENCY_PARAMETER] if idempotent else []),
    }
    if operation.request is not None:
        view_doc["requestBody"] = {
            **(
                {"description": operation.request.description}
                if operation.request.description
                else {}
            ),
            "required": operation.request.required,
            "content": _content(operation.request, schemas, "validation"),
        }
    responses = {
        status: _response(status, text, schemas, pages=operation.pages)
        for status, text in _common_responses(rule, operation, scope, idempotent).items()
    }
    for status, answer in operation.responses.items():
        responses[status] = _response(status, answer, schemas, pages=operation.pages)
    view_doc["responses"] = {str(s): responses[s] for s in sorted(responses)}
    if scope is None:
        view_doc["security"] = []
    else:
        view_doc["security"] = [{SECURITY_SCHEME: [scope]}]
        view_doc["x-required-scope"] = scope
    return view_doc


def build_document(app: Flask, *, title: str = "CRM integration platform") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every described route of ``app``."""
    scopes = guarded_endpoints(app)
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule, method in documented_rules(app):
        view = app.view_functions[rule.endpoint]
        operation = operation_of(view)
        if operation is None:
            continue
        paths.setdefault(openapi_path(rule), {})[method] = _operation(
            rule,
            method,
            operation,
            scopes.get(rule.endpoint),
            schemas,
            idempotent=method == "post" and is_idempotent(view),
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "Webhooks in; the CRM's records, timelines and campaigns out. "
            "Errors are RFC 9457 problem documents.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key, sent as ``Authorization: Bearer <key>``. "
                    "A key has scopes (read, write, send, admin); each operation's "
                    "security requirement lists the one it needs.",
                }
            },
        },
    }
    schemas.build(document)
    return document
