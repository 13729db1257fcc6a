"""The worker's side of the e-mail providers: a stored post read as a message or as reports.

``inbound_mail`` turns an e-mail provider's stored inbound post into the RFC
5322 message it carried (``emails``), which then takes the path of any other
raw message; ``delivery_reports`` turns a stored event post into
``DeliveryReport`` values (``mail_events``). Each is one table, provider ->
reader, so a provider without an entry is simply not an e-mail provider.
"""

from __future__ import annotations

from collections.abc import Callable

from crm_core.bounces.reports import DeliveryReport
from crm_core.errors import FieldError, InvalidInput
from crm_core.mail import MailLimits
from crm_core.payloads.kinds import ProviderName
from crm_core.providers import mailgun_mapping, postmark_mapping, sendgrid_mapping
from crm_core.providers.mail_message import InboundMail

# (stored body, its content type, the mail limits, the JSON depth limit) -> the message
MailReader = Callable[[bytes, str, MailLimits, int], InboundMail]
# (stored body, the JSON depth limit) -> its reports
ReportReader = Callable[[bytes, int], list[DeliveryReport]]

MAIL_READERS: dict[str, MailReader] = {
    ProviderName.MAILGUN.value: lambda body, ctype, limits, depth: mailgun_mapping.inbound_mail(
        body, ctype, limits=limits
    ),
    ProviderName.SENDGRID.value: lambda body, ctype, limits, depth: sendgrid_mapping.inbound_mail(
        body, ctype, limits=limits
    ),
    ProviderName.POSTMARK.value: lambda body, ctype, limits, depth: postmark_mapping.inbound_mail(
        body, ctype, limits=limits, max_depth=depth
    ),
}
REPORT_READERS: dict[str, ReportReader] = {
    ProviderName.MAILGUN.value: lambda body, depth: mailgun_mapping.delivery_reports(
        body, max_depth=depth
    ),
    ProviderName.SENDGRID.value: lambda body, depth: sendgrid_mapping.delivery_reports(
        body, max_depth=depth
    ),
    ProviderName.POSTMARK.value: lambda body, depth: postmark_mapping.delivery_reports(
        body, max_depth=depth
    ),
}


def delivery_reports(provider: str, body: bytes, *, max_depth: int) -> list[DeliveryReport]:
    """The reports of a stored event post of ``provider``; ``InvalidInput`` when the provider
    sends none."""
    reader = REPORT_READERS.get(provider)
    if reader is None:
        message = f"{provider} sends no delivery events"
        raise InvalidInput([FieldError(("provider",), message, "no_delivery_events")])
    return reader(body, max_depth)
