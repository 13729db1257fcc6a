"""ETags of read-only single records: a digest of the answer's own bytes.

A record no API call writes (an Activity, an accepted event) has no version counter to derive
an ETag from; the SHA-256 of its JSON document is a strong one all the same: it changes exactly
when the representation does (an Activity erased, an event processed). ``If-None-Match`` with
it answers 304 without a body.
"""

from __future__ import annotations

import hashlib

from flask import Response, request


def content_tagged(response: Response, prefix: str) -> Response:
    """``response`` with an ETag of its body; a 304 when ``If-None-Match`` holds that ETag."""
    digest = hashlib.sha256(response.get_data()).hexdigest()[:32]
    tag = f'"{prefix}-{digest}"'
    held = [t.strip() for t in (request.headers.get("If-None-Match") or "").split(",")]
    if tag in held or "*" in held:
        response = Response(status=304)
    response.headers["ETag"] = tag
    return response
