"""Our own format: Standard Webhooks signatures, the kind named by the URL.

Its requests go to ``/webhooks/<source>/<kind>`` and are verified by
``crm_core.base.signing``; this object gives the standard source the same
place in the provider table as the others (setup steps, generated secrets).
"""

from __future__ import annotations

from crm_core.base.signing import generate_secret
from crm_core.payloads.kinds import PROVIDER_ONLY_KINDS, EventKind, ProviderName
from crm_core.providers.base import Provider


class Standard(Provider):
    name = ProviderName.STANDARD
    label = "Standard Webhooks"
    takes_secret = False
    topics = {kind.value: kind for kind in EventKind if kind not in PROVIDER_ONLY_KINDS}
    home_kind = EventKind.LEADS

    def new_credentials(self) -> str:
        return generate_secret()

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        return f"{base_url.rstrip('/')}/webhooks/{source}/<kind>"

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "Post each event to the URL below with <kind> one of: " + ", ".join(self.topics),
            "Sign every request with Standard Webhooks (webhook-id, webhook-timestamp,"
            " webhook-signature) using this source's whsec_ secret.",
            endpoint,
        ]
