"""The schema enforces what the seed says, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.customers.services import create_customer
from tests.factories import (
    AgreementFactory,
    ContactFactory,
    CustomerFactory,
    OpportunityFactory,
    OrderFactory,
    ProductFactory,
    SourceFactory,
)


def primaries(session: Session, customer: m.Customer) -> list[int]:
    query = select(m.Contact.id).where(m.Contact.customer_id == customer.id, m.Contact.is_primary)
    return list(session.scalars(query))


def test_create_customer_makes_its_contact_primary(session: Session) -> None:
    contact = m.Contact(email="ada@example.com", email_normalized="ada@example.com")
    customer = create_customer(session, name="Ada Lovelace", primary_contact=contact)
    assert primaries(session, customer) == [contact.id]
    assert customer.name_key == "ada lovelace"


def test_database_refuses_two_primary_contacts(session: Session) -> None:
    customer = CustomerFactory()
    ContactFactory(customer=customer, is_primary=True)
    with pytest.raises(IntegrityError):
        ContactFactory(customer=customer, is_primary=True)


def test_many_non_primary_contacts_are_fine(session: Session) -> None:
    customer = CustomerFactory()
    ContactFactory.create_batch(3, customer=customer, is_primary=False)
    count = session.scalar(select(func.count()).where(m.Contact.customer_id == customer.id))
    assert count == 3


def test_normalized_email_is_unique(session: Session) -> None:
    ContactFactory(email="x@example.com", email_normalized="x@example.com")
    with pytest.raises(IntegrityError):
        ContactFactory(email="X@example.com", email_normalized="x@example.com")


def test_deleting_a_customer_takes_its_contacts_and_opportunities(session: Session) -> None:
    contact = ContactFactory()
    opportunity = OpportunityFactory(customer=contact.customer)
    session.delete(contact.customer)
    session.flush()
    session.expunge_all()
    assert session.get(m.Contact, contact.id) is None
    assert session.get(m.Opportunity, opportunity.id) is None


def test_a_customer_with_an_agreement_cannot_be_deleted(session: Session) -> None:
    agreement = AgreementFactory()
    customer = session.get(m.Customer, agreement.customer_id)
    session.delete(customer)
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize(
    ("quantity", "unit_price"),
    [(0, Decimal("1.00")), (-1, Decimal("1.00")), (1, Decimal("-0.01"))],
)
def test_order_lines_need_positive_quantity_and_price(
    session: Session, quantity: int, unit_price: Decimal
) -> None:
    order = OrderFactory()
    product = ProductFactory()
    session.add(
        m.OrderLine(
            order_id=order.id,
            product_id=product.id,
            line_no=1,
            quantity=quantity,
            unit_price=unit_price,
            line_total=unit_price * quantity,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_order_of_source_is_unique_by_number(session: Session) -> None:
    source = SourceFactory()
    OrderFactory(source_id=source.id, order_number="A-1")
    OrderFactory(order_number="A-1")  # another source (none) may reuse the number
    with pytest.raises(IntegrityError):
        OrderFactory(source_id=source.id, order_number="A-1")


def test_status_values_are_checked(session: Session) -> None:
    with pytest.raises(IntegrityError):
        OpportunityFactory(stage="maybe")


def test_agreement_period_must_not_end_before_it_starts(session: Session) -> None:
    with pytest.raises(IntegrityError):
        AgreementFactory(effective_on=dt.date(2026, 5, 1), terminates_on=dt.date(2026, 4, 30))


def test_agreement_links_many_opportunities(session: Session) -> None:
    first = OpportunityFactory()
    second = OpportunityFactory(customer=first.customer)
    agreement = AgreementFactory(customer_id=first.customer_id, origin_opportunity_id=first.id)
    agreement.opportunities.extend([first, second])
    session.flush()
    session.expire_all()
    assert {o.id for o in session.get(m.Agreement, agreement.id).opportunities} == {
        first.id,
        second.id,
    }
    with pytest.raises(IntegrityError):
        AgreementFactory(customer_id=first.customer_id, origin_opportunity_id=first.id)


def test_timestamps_come_back_aware_and_in_utc(session: Session) -> None:
    moment = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    order = OrderFactory(ordered_at=moment)
    session.expire_all()
    loaded = session.get(m.Order, order.id)
    assert loaded.ordered_at == moment
    assert loaded.ordered_at.utcoffset() == dt.timedelta(0)


def test_naive_timestamps_are_refused(session: Session) -> None:
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="naive datetime"):
        OrderFactory(ordered_at=dt.datetime(2026, 3, 1, 12, 30))
