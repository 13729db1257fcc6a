"""Search: typed results, exact e-mail first, phone numbers however written, typos on
PostgreSQL (pg_trgm), substrings on SQLite (FTS5), and indexes kept in step with the rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from crm_core.errors import InvalidInput
from crm_core.readapi.search import phone_digits, search
from tests.factories import ContactFactory, CustomerFactory, SupportCaseFactory


def found(session: Session, q: str, limit: int = 50) -> list[tuple[str, int]]:
    page = search(session, query=q, cursor=None, limit=limit)
    return [(item["type"], item["id"]) for item in page.items]


def items(session: Session, q: str) -> list[dict[str, Any]]:
    return search(session, query=q, cursor=None, limit=50).items


def backend(session: Session) -> str:
    return session.get_bind().dialect.name


@pytest.fixture
def grace(session: Session) -> Any:
    return ContactFactory(
        first_name="Grace",
        last_name="Hopper",
        full_name="Grace Hopper",
        email="Grace@Navy.example",
        email_normalized="grace@navy.example",
        phone="+14155552671",
    )


def test_an_exact_email_comes_first_then_near_ones(session: Session, grace: Any) -> None:
    near = ContactFactory(email="grace@navy.example.org", email_normalized="grace@navy.example.org")
    results = items(session, "  GRACE@navy.example ")
    assert (results[0]["type"], results[0]["id"]) == ("contact", grace.id)
    assert results[0]["score"] == 2.0
    assert results[0]["title"] == "Grace Hopper"
    assert results[0]["href"] == f"/api/contacts/{grace.id}"
    assert "Grace@Navy.example" in results[0]["snippet"]
    assert ("contact", near.id) in [(r["type"], r["id"]) for r in results[1:]]


def test_a_name_finds_contacts_customers_and_cases_typed_and_ranked(
    session: Session, grace: Any
) -> None:
    company = CustomerFactory(name="Hopper Industries")
    subject = SupportCaseFactory(subject="Invoice for Hopper is wrong")
    SupportCaseFactory(subject="Nothing to see")
    results = items(session, "hopper")
    assert {(r["type"], r["id"]) for r in results} >= {
        ("contact", grace.id),
        ("customer", company.id),
        ("case", subject.id),
    }
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 2 for s in scores), results
    assert {r["type"] for r in results} == {"contact", "customer", "case"}


def test_case_subjects_match_their_words_in_any_order(session: Session) -> None:
    jam = SupportCaseFactory(subject="The printer has a paper jam again")
    SupportCaseFactory(subject="The scanner is fine")
    assert ("case", jam.id) in found(session, "printer jam")
    assert ("case", jam.id) in found(session, "jam printer")
    if backend(session) == "postgresql":  # full text, with English stemming
        assert ("case", jam.id) in found(session, "printers jammed")


def test_a_typo_still_finds_the_name_on_postgresql(session: Session, grace: Any) -> None:
    if backend(session) != "postgresql":
        pytest.skip("word similarity is pg_trgm's; SQLite's FTS5 matches substrings")
    company = CustomerFactory(name="Lovelace Analytics")
    assert found(session, "Grace Hoppr")[0] == ("contact", grace.id)
    assert found(session, "Lovelase Analytics")[0] == ("customer", company.id)


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The SQL statements run on ``session``'s connection inside the block."""
    ran: list[str] = []
    connection = session.connection()

    def note(*args: Any) -> None:
        ran.append(args[2])

    event.listen(connection, "before_cursor_execute", note)
    try:
        yield ran
    finally:
        event.remove(connection, "before_cursor_execute", note)


def listed_words(session: Session) -> set[str]:
    return set(session.scalars(text("SELECT word FROM search_words")))


def test_a_typo_is_corrected_to_the_words_rows_hold(session: Session, grace: Any) -> None:
    if backend(session) != "postgresql":
        pytest.skip("the list of words (migration 0021) is PostgreSQL's")
    ada = ContactFactory(first_name="Ada", last_name="Lovelace", full_name="Ada Lovelace")
    ContactFactory(first_name="Ada", last_name="Byron", full_name="Ada Byron")
    jam = SupportCaseFactory(subject="Printer jammed again, order 12345")
    company = CustomerFactory(name="Lovelace Analytics")
    words = listed_words(session)
    assert {"lovelace", "analytics", "printer", "jammed", "again", "order"} <= words
    assert "12345" not in words  # digits and short words are kept as typed, not listed
    assert "of" not in words
    with statements(session) as ran:
        assert found(session, "Ada Lovelase")[0] == ("contact", ada.id)
        assert found(session, "Lovelase Analytcs")[0] == ("customer", company.id)
        assert ("case", jam.id) in found(session, "prnter jam")  # stemmed, as the word search
        assert ("contact", grace.id) not in found(session, "Ada Lovelase")
    # Found by the corrected words alone: no row was compared by trigram similarity.
    assert ran
    assert not [sql for sql in ran if "%>" in sql]
    with statements(session) as ran:
        assert found(session, "Zzyzx Qwrtp") == []
    assert [sql for sql in ran if "%>" in sql]  # nothing near in the list: similarity then


def test_words_run_together_or_short_of_a_letter_are_corrected(
    session: Session, grace: Any
) -> None:
    if backend(session) != "postgresql":
        pytest.skip("the list of words (migration 0021) is PostgreSQL's")
    ada = ContactFactory(first_name="Ada", last_name="Byrne", full_name="Ada Byrne")
    ContactFactory(first_name="Ada", last_name="Hopkins", full_name="Ada Hopkins")
    with statements(session) as ran:
        assert found(session, "GraceHopper")[0] == ("contact", grace.id)
        assert found(session, "Ad Byrne")[0] == ("contact", ada.id)
        assert found(session, "Ada Byrn") == [("contact", ada.id)]
    assert not [sql for sql in ran if "%>" in sql]


def test_renamed_rows_add_their_new_words(session: Session, grace: Any) -> None:
    if backend(session) != "postgresql":
        pytest.skip("the list of words (migration 0021) is PostgreSQL's")
    grace.last_name, grace.full_name = "Hopperfield", "Grace Hopperfield"
    session.flush()
    assert "hopperfield" in listed_words(session)
    assert found(session, "Grace Hoperfield")[0] == ("contact", grace.id)


def test_a_word_not_listed_is_still_found_by_similarity(session: Session, grace: Any) -> None:
    if backend(session) != "postgresql":
        pytest.skip("word similarity is pg_trgm's")
    session.execute(text("DELETE FROM search_words WHERE word = 'hopper'"))
    assert found(session, "Grace Hoppr")[0] == ("contact", grace.id)


def test_near_spellings_are_looked_for_only_when_no_row_has_every_word(
    session: Session, grace: Any
) -> None:
    if backend(session) != "postgresql":
        pytest.skip("word similarity is pg_trgm's")
    literal = ContactFactory(first_name="Grace", last_name="Hoppr", full_name="Grace Hoppr")
    assert found(session, "Grace Hoppr") == [("contact", literal.id)]


def test_sqlite_full_text_matches_substrings_ranked(session: Session, grace: Any) -> None:
    if backend(session) != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    ContactFactory(first_name="Hopperton", last_name="Hopper", full_name="Hopperton Hopper")
    results = found(session, "oppe")
    assert results[0][0] == "contact"
    assert ("contact", grace.id) in results
    # FTS5 has no notion of a typo: only PostgreSQL's trigram similarity forgives one.
    assert found(session, "Hoppr") == []


@pytest.mark.parametrize(
    "written",
    ["(415) 555-2671", "+1 415 555 2671", "415.555.2671", "4155552671", "+14155552671"],
)
def test_a_phone_number_matches_however_it_is_written(
    session: Session, grace: Any, written: str
) -> None:
    ContactFactory(phone="+14155550000")
    results = items(session, written)
    assert [(r["type"], r["id"]) for r in results] == [("contact", grace.id)]
    assert results[0]["score"] == 1.2


def test_a_national_number_with_a_trunk_zero_matches_the_e164_one(session: Session) -> None:
    london = ContactFactory(phone="+442079460958")
    assert found(session, "020 7946 0958") == [("contact", london.id)]


def test_phone_digits() -> None:
    assert phone_digits("(020) 7946-0958") == "2079460958"
    assert phone_digits("+1 415 555 2671") == "14155552671"
    assert phone_digits("1234") is None
    assert phone_digits("Flat 12345") is None


def test_the_indexes_follow_changes_and_deletes(session: Session, grace: Any) -> None:
    grace.full_name = "Grace Brewster"
    grace.last_name = "Brewster"
    grace.phone = "+14155559999"
    session.flush()
    assert ("contact", grace.id) in found(session, "Brewster")
    assert ("contact", grace.id) not in found(session, "Hopper")
    assert found(session, "415 555 2671") == []
    assert found(session, "415 555 9999") == [("contact", grace.id)]
    case = SupportCaseFactory(subject="Broken zipper")
    assert ("case", case.id) in found(session, "zipper")
    session.delete(case)
    session.flush()
    assert ("case", case.id) not in found(session, "zipper")


def test_results_page_without_repeats(session: Session) -> None:
    made = [
        ContactFactory(first_name="Quentin", last_name=f"Quarry{n}", full_name=f"Quentin Quarry{n}")
        for n in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = search(session, query="Quentin", cursor=cursor, limit=2)
        seen.extend((item["type"], item["id"]) for item in page.items)
        if page.next is None:
            break
        cursor = page.next
    assert len(seen) == len(set(seen))
    assert {("contact", c.id) for c in made} <= set(seen)


@pytest.mark.parametrize("q", ["", "   ", "x" * 201])
def test_an_empty_or_huge_query_is_a_field_error(session: Session, q: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        search(session, query=q, cursor=None, limit=10)
    assert raised.value.errors[0].field == "q"


def test_merged_contacts_and_customers_are_not_found(session: Session, grace: Any) -> None:
    """A merged record lives on in its survivor: search shows the survivor only."""
    twin = ContactFactory(first_name="Grace", last_name="Hopper", full_name="Grace Hopper")
    company = CustomerFactory(name="Hopper Industries")
    merged_company = CustomerFactory(name="Hopper Industries")
    session.flush()
    assert {("contact", twin.id), ("customer", merged_company.id)} <= set(found(session, "hopper"))
    twin.merged_into = grace.id
    merged_company.merged_into = company.id
    session.flush()
    hits = found(session, "hopper")
    assert ("contact", grace.id) in hits
    assert ("customer", company.id) in hits
    assert ("contact", twin.id) not in hits
    assert ("customer", merged_company.id) not in hits


def test_a_cursor_from_elsewhere_is_a_field_error(session: Session) -> None:
    with pytest.raises(InvalidInput) as raised:
        search(session, query="ann", cursor="WyJ4Il0", limit=10)
    assert raised.value.errors[0].field == "cursor"
