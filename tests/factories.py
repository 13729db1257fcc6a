"""factory_boy factories, one per entity; bound to the test's session by ``tests.conftest``."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from crm_core import models as m
from crm_core.customers.services import name_key


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"


class CustomerFactory(_Base):
    class Meta:
        model = m.Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    name_key = factory.LazyAttribute(lambda o: name_key(o.name))
    kind = m.CustomerKind.COMPANY


class ContactFactory(_Base):
    class Meta:
        model = m.Contact

    customer = factory.SubFactory(CustomerFactory)
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = "Example"
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    email_normalized = factory.LazyAttribute(lambda o: o.email.lower())
    is_primary = False


class SourceFactory(_Base):
    class Meta:
        model = m.Source

    name = factory.Sequence(lambda n: f"source-{n}")


class ProductFactory(_Base):
    class Meta:
        model = m.Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    unit_price = Decimal("10.00")
    currency = "EUR"


class OpportunityFactory(_Base):
    class Meta:
        model = m.Opportunity

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Deal {n}")
    amount = Decimal("1000.00")
    currency = "EUR"


class AgreementFactory(_Base):
    class Meta:
        model = m.Agreement

    customer_id = factory.LazyFunction(lambda: CustomerFactory().id)
    number = factory.Sequence(lambda n: f"AG-{n:06d}")
    title = "Master services agreement"
    effective_on = dt.date(2026, 1, 1)


class OrderFactory(_Base):
    class Meta:
        model = m.Order

    customer_id = factory.LazyFunction(lambda: CustomerFactory().id)
    order_number = factory.Sequence(lambda n: f"ORD-{n:06d}")
    currency = "EUR"
    total = Decimal("0.00")
    ordered_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))


class InboxEventFactory(_Base):
    class Meta:
        model = m.InboxEvent

    class Params:
        source = factory.SubFactory(SourceFactory)

    source_id = factory.LazyAttribute(lambda o: o.source.id)
    kind = m.EventKind.LEADS.value
    webhook_id = factory.Sequence(lambda n: f"msg_{n:08d}")
    content_type = "application/json"
    body = b'{"email": "lead@example.com"}'
    status = m.EventStatus.RECEIVED.value
    received_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))


class MarketingCampaignFactory(_Base):
    class Meta:
        model = m.MarketingCampaign

    code = factory.Sequence(lambda n: f"campaign-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    subject = "News for {{ contact.first_name }}"
    text_template = "Hello {{ contact.first_name }}"


class CampaignMemberFactory(_Base):
    class Meta:
        model = m.CampaignMember

    campaign_id = factory.LazyFunction(lambda: MarketingCampaignFactory().id)
    customer_id = factory.LazyFunction(lambda: CustomerFactory().id)
    status = m.MemberStatus.TARGETED


class SupportCaseFactory(_Base):
    class Meta:
        model = m.SupportCase

    customer_id = factory.LazyFunction(lambda: CustomerFactory().id)
    subject = factory.Sequence(lambda n: f"Problem {n}")
    status = m.CaseStatus.OPEN


class MailboxFactory(_Base):
    class Meta:
        model = m.Mailbox

    class Params:
        source = factory.SubFactory(SourceFactory)

    name = factory.Sequence(lambda n: f"mailbox-{n}")
    source_id = factory.LazyAttribute(lambda o: o.source.id)
    host = "imap.example.com"
    port = 993
    security = m.MailboxSecurity.TLS
    username = factory.Sequence(lambda n: f"support{n}@example.com")
    password = "imap-password-do-not-show"
    folder = "INBOX"
    last_uid = 0


# Every factory user signs in with this password (hashed once: argon2 is slow on purpose).
USER_PASSWORD = "factory-password-1"


@functools.cache
def _user_password_hash() -> str:
    from crm_core.people.passwords import hash_password

    return hash_password(USER_PASSWORD)


class UserFactory(_Base):
    class Meta:
        model = m.User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    role = "agent"
    password_hash = factory.LazyFunction(_user_password_hash)


ALL_FACTORIES = (
    CustomerFactory,
    ContactFactory,
    SourceFactory,
    ProductFactory,
    OpportunityFactory,
    AgreementFactory,
    OrderFactory,
    InboxEventFactory,
    MarketingCampaignFactory,
    CampaignMemberFactory,
    SupportCaseFactory,
    MailboxFactory,
    UserFactory,
)
