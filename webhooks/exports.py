"""``GET /api/contacts/export``: every contact as CSV or NDJSON, streamed.

The body is produced while it is sent: a generator reads the contacts a page at a
time (``crm_core.contact_files.exporting``), each page in a short transaction of its
own, so memory stays flat whatever the number of contacts and a slow client holds
no transaction open.
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, request
from pydantic import BaseModel, Field

from crm_core.contact_files.exporting import FORMATS, export_contacts
from crm_core.db import utcnow
from webhooks.auth import require_api_key
from webhooks.openapi.registry import Body, documented
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("exports", __name__, url_prefix="/api")


class ExportQuery(BaseModel):
    format: Literal["csv", "ndjson"] = Field(
        default="csv", description="CSV (a header line, then a contact a line) or NDJSON."
    )


_FILE = {
    "Content-Disposition": '``attachment; filename="contacts-<time>.<format>"``',
    "X-Content-Type-Options": "``nosniff``",
}


@bp.get("/contacts/export")
@documented(
    summary="Every contact as a file, streamed: CSV or NDJSON",
    query=ExportQuery,
    responses={
        200: Body(
            {"type": "string"},
            media_types=tuple(FORMATS.values()),
            description="The contacts by id, written while they are sent.",
            headers=_FILE,
        ),
        400: "The format is not csv or ndjson.",
    },
    tags=("contacts",),
)
@require_api_key
def export_contacts_file() -> Response:
    """Every contact, by id: ``?format=csv`` (the default) or ``ndjson``, as an attachment."""
    format_ = request.args.get("format", "csv")
    if format_ not in FORMATS:
        return problem(
            400,
            f"format must be one of {', '.join(sorted(FORMATS))}",
            title="Invalid query",
            type_="invalid-query",
            errors=[{"field": "format", "message": "must be csv or ndjson", "type": "enum"}],
        )
    filename = f"contacts-{utcnow():%Y%m%d-%H%M%S}.{format_}"
    return Response(
        export_contacts(crm_state().sessions, format=format_),
        content_type=FORMATS[format_],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
