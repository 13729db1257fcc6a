"""``GET /api/contacts/export``: every contact as CSV or NDJSON, streamed.

The body is produced while it is sent: a generator reads the contacts a page at a
time (``crm_core.contact_files.exporting``), each page in a short transaction of its
own, so memory stays flat whatever the number of contacts and a slow client holds
no transaction open.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from crm_core.contact_files.exporting import FORMATS, export_contacts
from crm_core.db import utcnow
from webhooks.auth import require_api_key
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("exports", __name__, url_prefix="/api")


@bp.get("/contacts/export")
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
