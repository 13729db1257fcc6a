"""``GET /api/attachments/<id>``: an e-mail attachment's bytes, streamed from the blob store.

The record is read in a short session that is closed before the first byte is sent, so
a slow download holds no transaction. The file is always offered as a download
(``Content-Disposition: attachment``, its name encoded by RFC 6266 and RFC 8187), never
rendered: ``nosniff`` and a sandboxing ``Content-Security-Policy`` keep a browser from
running an HTML or SVG attachment in our origin.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from crm_core.attachments.services import get_attachment, release_blobs, released_keys
from crm_core.blobs import BlobNotFound
from webhooks.auth import require_api_key
from webhooks.openapi.registry import Body, Header, documented
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("attachments", __name__, url_prefix="/api")
log = logging.getLogger(__name__)
_MAX_ID = 2**63 - 1
# ``type/subtype`` of RFC 9110 tokens; anything else is served as opaque bytes.
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}$")
OPAQUE = "application/octet-stream"
# RFC 8187 attr-char, besides what ``quote`` never escapes.
_ATTR_CHARS = "!#$&+^`|"
_FILE_HEADERS = {
    "Content-Disposition": (
        "``attachment; filename=\"<ASCII name>\"; filename*=UTF-8''<name, percent-encoded>``"
    ),
    "Content-Length": "The file's size in bytes.",
    "ETag": "The SHA-256 of the content, quoted.",
    "X-Content-Type-Options": "``nosniff``",
}


def content_disposition(filename: str | None, *, fallback: str) -> str:
    """``attachment`` with the file's name: a plain ASCII ``filename`` for old clients and
    the exact name as ``filename*`` (UTF-8, percent-encoded) for the rest."""
    name = filename or fallback
    ascii_name = (
        "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name).strip() or fallback
    )
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"
    return header


def served_type(content_type: str) -> str:
    """The content type to answer with: the recorded one when it is well-formed."""
    value = (content_type or "").strip().lower()
    return value if _MEDIA_TYPE.match(value) else OPAQUE


@bp.get("/attachments/<int:attachment_id>")
@documented(
    summary="Download an e-mail attachment",
    responses={
        200: Body(
            {"type": "string", "format": "binary"},
            media_types=("*/*",),
            description=(
                "The attachment's bytes exactly as received, with its recorded content type"
                " (``application/octet-stream`` when that was malformed), as a download."
            ),
            headers=_FILE_HEADERS,
        ),
        304: Body(
            None,
            description="Not modified: the ETag you hold is the content's.",
            headers={"ETag": _FILE_HEADERS["ETag"]},
        ),
        404: "No such attachment.",
    },
    headers=(
        Header("If-None-Match", "ETags you hold: a 304 without the content when one is its."),
    ),
    tags=("activities",),
)
@require_api_key
def download_attachment(attachment_id: int) -> Response:
    """One attachment's bytes, streamed; the activity reads list each with its ``href``."""
    if attachment_id > _MAX_ID:
        return problem(404, f"No attachment {attachment_id}.", type_="not-found")
    state = crm_state()
    with state.sessions() as session:
        row = get_attachment(session, attachment_id=attachment_id)
        found = None if row is None else (row.filename, row.content_type, row.size, row.sha256)
    if found is None:
        return problem(404, f"No attachment {attachment_id}.", type_="not-found")
    filename, content_type, size, key = found
    if f'"{key}"' in [t.strip() for t in (request.headers.get("If-None-Match") or "").split(",")]:
        return Response(status=304, headers={"ETag": f'"{key}"'})  # the blob is not even read
    try:
        chunks = state.blobs.get(key)
    except BlobNotFound:
        where = state.blobs.describe()
        log.error("attachment %s: blob %s is missing from %s", attachment_id, key, where)
        return problem(
            404, f"The content of attachment {attachment_id} is missing.", type_="not-found"
        )
    return Response(
        chunks,
        content_type=served_type(content_type),
        headers={
            "Content-Disposition": content_disposition(
                filename, fallback=f"attachment-{attachment_id}"
            ),
            "Content-Length": str(size),
            "ETag": f'"{key}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-cache",
        },
        direct_passthrough=True,
    )


def release_attachments(session: Session) -> None:
    """After a write committed: delete the blobs of the attachments it deleted that no
    other row names. A failure here loses nothing (the rows are gone, the bytes stay
    until ``crm attachments sweep``), so it is logged, not answered."""
    keys = released_keys(session)
    if not keys:
        return
    state = crm_state()
    try:
        release_blobs(state.sessions, state.blobs, keys)
    except Exception:
        log.exception(
            "releasing %d attachment blobs failed; `crm attachments sweep` will", len(keys)
        )
