"""Lead normalization, table by table."""

from __future__ import annotations

import pytest

from crm_core.errors import InvalidInput
from crm_core.ingestion.commands import normalize_lead
from crm_core.leads.domains import free_mail_domains, read_domain_list, shipped_free_domains
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import (
    PhoneResult,
    email_domain,
    is_free_or_disposable,
    join_name,
    normalize_country,
    normalize_email,
    normalize_phone,
    split_name,
)
from crm_core.payloads.schemas import LeadPayload


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ADA+crm@Sub.Example.org", "ada+crm@sub.example.org"),
        ("\tbob@example.co.uk\n", "bob@example.co.uk"),
        ("jürgen@müller.de", "jürgen@müller.de"),
    ],
)
def test_normalize_email_accepts_and_folds(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a..b@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@localhost",
    ],
)
def test_normalize_email_rejects_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidField) as caught:
        normalize_email(raw)
    assert caught.value.field == "email"
    assert caught.value.message


@pytest.mark.parametrize(
    ("email", "domain"),
    [("ada@example.com", "example.com"), ("a@b@eu.example.org", "eu.example.org")],
)
def test_email_domain(email: str, domain: str) -> None:
    assert email_domain(email) == domain


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+49 30 901820", None, PhoneResult("+4930901820", "+49 30 901820", True)),
        ("030 901820", "DE", PhoneResult("+4930901820", "030 901820", True)),
        ("(415) 555-2671", "US", PhoneResult("+14155552671", "(415) 555-2671", True)),
        ("+1 415 555 2671", "GB", PhoneResult("+14155552671", "+1 415 555 2671", True)),
        ("020 7946 0958", "gb", PhoneResult("+442079460958", "020 7946 0958", True)),
        ("00 44 20 7946 0958", "DE", PhoneResult("+442079460958", "00 44 20 7946 0958", True)),
        ("  +33  1 42 68 53 00 ", None, PhoneResult("+33142685300", "+33 1 42 68 53 00", True)),
        # Kept raw and flagged, never dropped:
        ("555", "US", PhoneResult(None, "555", False)),
        ("call me maybe", "US", PhoneResult(None, "call me maybe", False)),
        ("(415) 555-2671", None, PhoneResult(None, "(415) 555-2671", False)),
        ("+1 000 000 0000", None, PhoneResult(None, "+1 000 000 0000", False)),
    ],
)
def test_normalize_phone(raw: str, region: str | None, expected: PhoneResult) -> None:
    assert normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("Lovelace, Ada", ("Ada", "Lovelace")),
        ("Lovelace,Ada", ("Ada", "Lovelace")),
        ("Ada", ("Ada", None)),
        ("Jean-Luc de la Fontaine", ("Jean-Luc", "de la Fontaine")),
        ("Ludwig van Beethoven", ("Ludwig", "van Beethoven")),
        ("  Ada   King   Lovelace  ", ("Ada King", "Lovelace")),
        ("Mary Ann Smith", ("Mary Ann", "Smith")),
        ("", (None, None)),
        ("   ", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_name(full: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_name(full) == expected


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Ada", "Lovelace", "Ada Lovelace"),
        (" Ada ", "  Lovelace", "Ada Lovelace"),
        ("Ada", None, "Ada"),
        (None, "Lovelace", "Lovelace"),
        ("Jean-Luc", "de la  Fontaine", "Jean-Luc de la Fontaine"),
        (None, None, None),
        ("  ", "", None),
    ],
)
def test_join_name(first: str | None, last: str | None, expected: str | None) -> None:
    assert join_name(first, last) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("germany ", "DE"),
        ("Deutschland", "DE"),
        ("Österreich", "AT"),
        ("United States", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("España", "ES"),
        ("Russia", "RU"),
        ("South Korea", "KR"),
        ("Viet Nam", "VN"),
        ("Narnia", None),
        ("XX", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_country(raw: str | None, expected: str | None) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize(
    ("domain", "extra", "expected"),
    [
        ("gmail.com", (), True),
        ("GMAIL.com", (), True),
        ("hotmail.co.uk", (), True),
        ("web.de", (), True),
        ("mailinator.com", (), True),
        ("eu.mailinator.com", (), True),
        ("yopmail.com", (), True),
        ("acme.com", (), False),
        ("gmail.com.acme.com", (), False),
        ("acme.com", ("acme.com",), True),
        ("mail.acme.com", ("acme.com",), True),
    ],
)
def test_is_free_or_disposable(domain: str, extra: tuple[str, ...], expected: bool) -> None:
    assert is_free_or_disposable(domain, frozenset(extra)) is expected


def test_the_shipped_lists_have_a_few_hundred_well_formed_domains() -> None:
    domains = shipped_free_domains()
    assert len(domains) > 500
    assert all(d == d.strip().lower() and "." in d and " " not in d for d in domains)


def test_domain_lists_skip_comments_and_blank_lines() -> None:
    assert read_domain_list("# heading\n\nExample.ORG  # ours\n  b.example\n") == {
        "example.org",
        "b.example",
    }


def test_extra_free_domains_extend_the_shipped_ones() -> None:
    domains = free_mail_domains([" Corp-Mail.example ", ""])
    assert "corp-mail.example" in domains
    assert "gmail.com" in domains
    assert "corp-mail.example" not in free_mail_domains()


def test_normalize_lead_cleans_every_field() -> None:
    payload = LeadPayload(
        email="  Ada@Example.COM ",
        phone="030 901820",
        full_name="  Ada   Lovelace ",
        company=" Analytical  Engines ",
        country="Germany",
        utm_campaign="spring-launch",
        message="  Call me back  ",
    )
    lead = normalize_lead(payload, default_region="US")
    assert lead.email == "ada@example.com"
    assert lead.email_display == "Ada@Example.COM"
    assert lead.domain == "example.com"
    # The lead's country decides how a national number is read, before the default.
    assert lead.phone == PhoneResult("+4930901820", "030 901820", True)
    assert (lead.first_name, lead.last_name, lead.full_name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert lead.company == "Analytical Engines"
    assert lead.country == "DE"
    assert lead.utm_campaign == "spring-launch"
    assert lead.message == "Call me back"


def test_normalize_lead_joins_first_and_last_name() -> None:
    lead = normalize_lead(
        LeadPayload(email="a@example.com", first_name="Ada", last_name="Lovelace"),
        default_region=None,
    )
    assert lead.full_name == "Ada Lovelace"


def test_normalize_lead_uses_the_default_region_without_a_country() -> None:
    lead = normalize_lead(LeadPayload(phone="(415) 555-2671"), default_region="US")
    assert lead.phone is not None
    assert lead.phone.e164 == "+14155552671"
    assert lead.email is None


def test_normalize_lead_keeps_an_unparseable_phone_and_an_unknown_country() -> None:
    lead = normalize_lead(
        LeadPayload(email="a@example.com", phone="ext. 12", country="Narnia"), default_region="US"
    )
    assert lead.phone == PhoneResult(None, "ext. 12", False)
    assert lead.country is None
    assert lead.country_raw == "Narnia"


def test_normalize_lead_lists_each_bad_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_lead(
            LeadPayload(email="not an address", phone="+1 415 555 2671"), default_region=None
        )
    assert [error.loc for error in caught.value.errors] == [("email",)]
    assert caught.value.errors[0].as_dict()["field"] == "email"
