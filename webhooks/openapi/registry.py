"""``@documented``: what a route takes and answers, declared next to the route.

A view says its summary, its request body, its query parameters and its responses with the
pydantic models the code validates and answers with::

    @bp.get("/customers/<int:customer_id>")
    @documented(responses={200: CustomerDoc, 404: "No such customer."}, tags=("customers",))
    @require_api_key
    def show_customer(customer_id: int) -> Response: ...

A response given as a string is a problem document (``application/problem+json``) with
that description; a route that answers browsers (``pages=True``) may answer each refusal
as an HTML page instead. A ``Body`` whose schema is ``None`` has headers and no content
(a redirect). What every route of a kind can answer (401, 403 and 429 with an API key,
404 for a path's ids, 413 with a body, 500) is added by the builder, so a route lists only
its own answers. The builder (``webhooks.openapi.document``) walks the app's URL map;
a route without a description fails the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

JSON = "application/json"
HTML = "text/html"
_ATTRIBUTE = "_crm_openapi"


@dataclass(frozen=True)
class Body:
    """A request or response body: a pydantic model (or dataclass), or a raw JSON schema;
    ``None`` for an answer without content."""

    schema: Any
    media_types: tuple[str, ...] = (JSON,)
    description: str = ""
    # Response headers the answer carries, by name -> description.
    headers: Mapping[str, str] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True)
class Header:
    """A request header the route reads."""

    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """The description of one route (all its methods)."""

    summary: str
    responses: Mapping[int, Any]
    request: Body | None = None
    query: type | None = None
    headers: tuple[Header, ...] = ()
    tags: tuple[str, ...] = ()
    # Each path parameter's schema, where the URL converter says too little.
    path: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Refusals (4xx, 503) may be an HTML page, for a browser that prefers one.
    pages: bool = False


def documented(
    *,
    summary: str,
    responses: Mapping[int, Any],
    request: Any = None,
    query: type | None = None,
    headers: tuple[Header, ...] = (),
    tags: tuple[str, ...] = (),
    path: Mapping[str, dict[str, Any]] | None = None,
    pages: bool = False,
) -> Callable[[F], F]:
    """Attach the route's description to its view (see the module's docstring)."""
    body = request if request is None or isinstance(request, Body) else Body(request)
    operation = Operation(
        summary=summary,
        responses=responses,
        request=body,
        query=query,
        headers=headers,
        tags=tags,
        path=path or {},
        pages=pages,
    )

    def attach(view: F) -> F:
        setattr(view, _ATTRIBUTE, operation)
        return view

    return attach


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """The description attached to ``view``, if any."""
    found: Operation | None = getattr(view, _ATTRIBUTE, None)
    return found
