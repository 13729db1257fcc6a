"""What processing an event needs of the settings, read once by whoever runs it.

The task (the composition root) builds an ``IngestPolicy`` with ``from_settings`` and passes it
down; nothing under ``ingestion`` reads the settings itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_core.bounces.services import BouncePolicy
from crm_core.config import Settings
from crm_core.leads.normalize import free_mail_domains
from crm_core.mail import CaseTokens, MailLimits
from crm_core.support.auto_ack import AutoAckSettings


@dataclass(frozen=True)
class IngestPolicy:
    """The limits, defaults and rules the kinds' parse and handle steps apply."""

    max_json_depth: int
    # The phone region of a lead that states no country.
    default_region: str | None
    # Addresses at these domains name a person, never a company.
    free_domains: frozenset[str]
    # Hours to a first response, by case priority.
    sla_hours: dict[str, float] = field(hash=False)
    support_addresses: frozenset[str]
    mail_limits: MailLimits
    auto_ack: AutoAckSettings
    case_tokens: CaseTokens
    bounces: BouncePolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestPolicy:
        """The policy as configured."""
        return cls(
            max_json_depth=settings.max_json_depth,
            default_region=settings.default_region,
            free_domains=free_mail_domains(settings.extra_freemail_domain_list()),
            sla_hours=dict(settings.sla_first_response_hours),
            support_addresses=settings.support_addresses,
            mail_limits=MailLimits.from_settings(settings),
            auto_ack=AutoAckSettings.from_settings(settings),
            case_tokens=CaseTokens.from_secret(settings.resolved_secret_key()),
            bounces=BouncePolicy.from_settings(settings),
        )
