"""The contact a lead (or a buyer's, a requester's address) is about, found or created.

One lead is resolved as a batch of one (``matching.resolve_contacts``) inside
a savepoint: the resolver locks the identities it may create, so two
transactions creating the same new person end with one contact and one company
per domain; a writer that does not take those locks can still win a race, and
then the savepoint rolls back and the retry finds the winner's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.leads.matching import ContactMatch, resolve_contacts
from crm_core.leads.normalize import NormalizedLead, free_mail_domains, normalize_email, split_name

# A conflict means another transaction just created the row we wanted; the
# retry finds it. More than a few in a row means something else is wrong.
RACE_RETRIES = 3

T = TypeVar("T")


def retrying_on_conflict(session: Session, work: Callable[[], T]) -> T:
    """Run ``work`` in a savepoint, again (up to ``RACE_RETRIES`` times) after a conflict.

    Locks taken inside a savepoint that rolls back are released; each attempt
    takes them again.
    """
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            with session.begin_nested():
                return work()
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def find_or_create_contact(
    session: Session, *, lead: NormalizedLead, free_domains: Container[str] | None = None
) -> ContactMatch:
    """The lead's contact: matched (and merged) or created with its customer, race-safe."""
    domains = free_domains if free_domains is not None else free_mail_domains()
    return retrying_on_conflict(
        session, lambda: resolve_contacts(session, [lead], free_domains=domains)[0]
    )


def contact_for_address(
    session: Session,
    *,
    email: str,
    name: str | None = None,
    free_domains: Container[str] | None = None,
) -> ContactMatch:
    """The contact of an e-mail address (a buyer, a requester), created when unknown.

    Raises ``InvalidField`` for an address that is not one.
    """
    first, last = split_name(name)
    lead = NormalizedLead(
        email=normalize_email(email),
        email_display=email.strip(),
        first_name=first,
        last_name=last,
        full_name=" ".join(name.split()) if name and name.strip() else None,
    )
    return find_or_create_contact(session, lead=lead, free_domains=free_domains)
