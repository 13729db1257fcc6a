"""Any website's plain HTML form, posted by the visitor's browser to ``/forms/<source>``.

A browser signs nothing, so a form source is protected otherwise, at the web
layer: the origins allowed to post, a honeypot, and rate limits per client
address and per source (``webhooks.forms``). Here the request is classified: a
filled honeypot (``_gotcha``) is a ``honeypot`` topic, stored ``ignored``; any
other post is a ``submission`` of a lead, which the web layer checks at once
(``lead_document``), so a form without an e-mail or phone is told so (and stored
``invalid``). The delivery id is the body's digest: the same form posted twice (a double
click) is one delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from crm_core.errors import FieldError
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import Delivery, Provider, ProviderRequest, body_digest_id
from crm_core.providers.form_body import FORM_TYPES, read_form
from crm_core.providers.form_mapping import HONEYPOT_FIELD, SUBMISSION, submission
from crm_core.providers.mapped import Mapped

HONEYPOT = "honeypot"
MAX_CONTENT_TYPE = 255


class Form(Provider):
    name = ProviderName.FORM
    label = "Web form"
    takes_secret = False
    signed = False
    topics = {SUBMISSION: EventKind.LEADS}
    home_kind = EventKind.LEADS
    media_types = FORM_TYPES
    # Where the form was posted from: evidence for the consent it may carry.
    kept_headers = ("Origin", "Referer")

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        """Nothing to verify: the web layer checks the origin and the rates instead."""

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        # Read as the worker will: with the Content-Type the inbox keeps (its first 255 characters).
        content_type = (request.header("Content-Type") or request.media_type)[:MAX_CONTENT_TYPE]
        fields = read_form(request.body, content_type)
        webhook_id = body_digest_id(request.body)
        if isinstance(fields, FieldError):
            return self.delivery(
                request, webhook_id=webhook_id, topic=SUBMISSION, id_field="", errors=[fields]
            )
        if fields.get(HONEYPOT_FIELD, "").strip():
            return self.delivery(request, webhook_id=webhook_id, topic=HONEYPOT, id_field="")
        return self.delivery(request, webhook_id=webhook_id, topic=SUBMISSION, id_field="")

    def lead_document(self, request: ProviderRequest) -> Mapped | None:
        """A submission's lead as the worker will map it, for the web layer to check at once;
        ``None`` when the body cannot be read as a form (``classify`` says why)."""
        content_type = (request.header("Content-Type") or request.media_type)[:MAX_CONTENT_TYPE]
        fields = read_form(request.body, content_type)
        return None if isinstance(fields, FieldError) else submission(fields)

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        return f"{base_url.rstrip('/')}/forms/{source}"

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In your page's HTML, post the form to the URL below; name its inputs like a"
            " lead's fields (email, first_name, last_name, phone, company, message, utm_*):",
            f'  <form action="{endpoint}" method="post">',
            '    <input type="email" name="email" required>',
            '    <input type="text" name="first_name">',
            '    <label><input type="checkbox" name="consent" value="yes">'
            " Send me news by e-mail</label>",
            '    <input type="text" name="_gotcha" tabindex="-1" autocomplete="off"'
            ' style="display:none">',
            '    <button type="submit">Send</button>',
            "  </form>",
            "Keep the hidden _gotcha field empty: robots fill it, and their posts create nothing.",
            endpoint,
        ]


def origin_of(value: str | None) -> str | None:
    """``scheme://host[:port]`` of an ``Origin`` or ``Referer`` value, lower-case; ``None``
    when it names no web origin (absent, ``null``, not a URL)."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{suffix}"
