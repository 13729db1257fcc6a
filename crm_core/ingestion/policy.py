"""What processing an event needs of the settings, read once by whoever runs it.

The task (the composition root) builds an ``IngestPolicy`` with ``from_settings`` and passes it
down; nothing under ``ingestion`` reads the settings itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from crm_core.blobs import BlobStore
from crm_core.blobs.configured import blob_store_from_settings
from crm_core.bounces.services import BouncePolicy
from crm_core.config import Settings
from crm_core.leads.normalize import free_mail_domains
from crm_core.mail import CaseTokens, MailLimits
from crm_core.support.auto_ack import AutoAckSettings
from crm_core.support.sla import SlaPolicy


@dataclass(frozen=True)
class IngestPolicy:
    """The limits, defaults and rules the kinds' parse and handle steps apply."""

    max_json_depth: int
    # The phone region of a lead that states no country.
    default_region: str | None
    # Addresses at these domains name a person, never a company.
    free_domains: frozenset[str]
    # Hours to a first response and to a resolution, by case priority.
    sla: SlaPolicy
    support_addresses: frozenset[str]
    mail_limits: MailLimits
    auto_ack: AutoAckSettings
    bounces: BouncePolicy
    # Read when an e-mail first needs it: a missing CRM_SECRET_KEY fails that event alone,
    # never the other kinds.
    secret_key: Callable[[], str] = field(repr=False, compare=False)
    # Where attachments' bytes are kept (CRM_BLOB_URL), made when an e-mail first needs it,
    # so an unusable URL fails e-mail events alone; None keeps only the attachments' digests.
    blob_store: Callable[[], BlobStore] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def blobs(self) -> BlobStore | None:
        """The attachments' blob store, or None when none was given."""
        return self.blob_store() if self.blob_store is not None else None

    @cached_property
    def case_tokens(self) -> CaseTokens:
        """Signs and checks the case tokens of subjects (keyed by ``CRM_SECRET_KEY``)."""
        return CaseTokens.from_secret(self.secret_key())

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestPolicy:
        """The policy as configured."""
        return cls(
            max_json_depth=settings.max_json_depth,
            default_region=settings.default_region,
            free_domains=free_mail_domains(settings.extra_freemail_domain_list()),
            sla=SlaPolicy.from_settings(settings),
            support_addresses=settings.support_addresses,
            mail_limits=MailLimits.from_settings(settings),
            auto_ack=AutoAckSettings.from_settings(settings),
            bounces=BouncePolicy.from_settings(settings),
            secret_key=settings.resolved_secret_key,
            blob_store=functools.partial(blob_store_from_settings, settings),
        )
