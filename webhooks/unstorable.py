"""A URL holding text no database stores (a NUL, ``%00``) is refused before any view.

A path with one names nothing (404); a query parameter with one is a 400 naming it. Without
this, PostgreSQL would refuse the text in the middle of a query: a 500, or at the intake a 503
telling the sender to retry what can never succeed.
"""

from __future__ import annotations

from flask import Flask, Response, request

from crm_core.base.storable import MESSAGE, is_storable
from webhooks.problems import problem


def init_app(app: Flask) -> None:
    """Check every request's path and query before its view runs."""
    app.before_request(_refuse_unstorable_url)


def _refuse_unstorable_url() -> Response | None:
    if not is_storable(request.path):
        return problem(404, "No such path: it contains a NUL character.", type_="not-found")
    names = sorted(
        {
            name
            for name, value in request.args.items(multi=True)
            if not (is_storable(name) and is_storable(value))
        }
    )
    if not names:
        return None
    return problem(
        400,
        f"Query parameters {', '.join(map(repr, names))} {MESSAGE}.",
        title="Invalid query",
        type_="invalid-query",
        errors=[{"field": name, "message": MESSAGE, "type": "string_unstorable"} for name in names],
    )
