"""Search across contacts (names, e-mail addresses, phone numbers), customers (names) and
support cases (subjects): typed results, best first.

Scores run up to 2: an exact e-mail address is 2, a phone number's digits 1.2, and a text
match its word similarity to the query (up to 1). On PostgreSQL a query that looks like a phone
number is matched by the end of its digits, one that looks like an address exactly or by its
beginning, and other text by its words (full text, English stemming for case subjects). When no
row has every word (a typo), each unknown word is corrected to the words rows hold that are
nearest in spelling (``search_words``, migration 0021) and the rows are searched by their words
again; only when that finds nothing does ``pg_trgm`` compare the whole query with every name.
SQLite matches substrings through its FTS5 trigram tables, ranked by BM25. Both use the
structures migrations 0020 and 0021 make, and the PostgreSQL expressions below are spelled
exactly as their indexes are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from crm_core.base.pagination import Page, decode_cursor, encode_cursor
from crm_core.customers.models import Contact, Customer
from crm_core.customers.services import name_key
from crm_core.errors import FieldError, InvalidInput
from crm_core.support.models import SupportCase

MAX_QUERY_CHARS = 200
# Search pages are for people looking, not for export: paging stops this deep.
MAX_DEPTH = 1000
EXACT_EMAIL = 2.0
PHONE = 1.2
_TYPE_ORDER = {"contact": 0, "customer": 1, "case": 2}
_PHONE_CHARS = re.compile(r"[\d\s()+.\-/]+")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")


@dataclass(frozen=True)
class Hit:
    type: str
    id: int
    title: str
    snippet: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        href = {"contact": "contacts", "customer": "customers", "case": "cases"}[self.type]
        return {
            "type": self.type,
            "id": self.id,
            "title": self.title,
            "snippet": self.snippet,
            "score": round(self.score, 4),
            "href": f"/api/{href}/{self.id}",
        }


def parse_query(raw: str) -> str:
    """The query's text, whitespace folded; a field error when empty or too long."""
    folded = " ".join(raw.split())
    if not folded or len(folded) > MAX_QUERY_CHARS:
        raise InvalidInput([FieldError(("q",), f"must be 1 to {MAX_QUERY_CHARS} characters")])
    return folded


def phone_digits(query: str) -> str | None:
    """The digits of a query that looks like a phone number, however formatted.

    A leading trunk ``0`` is dropped (``020 7946 0958`` is ``+44 20 7946 0958``), so the
    digits match the end of the stored E.164 number, with or without its country code.
    """
    if not _PHONE_CHARS.fullmatch(query):
        return None
    digits = re.sub(r"\D", "", query).lstrip("0")
    return digits if len(digits) >= 5 else None


def search(session: Session, *, query: str, cursor: str | None, limit: int) -> Page:
    """Contacts, customers and cases matching ``query``, best first, ``limit`` at a time."""
    q = parse_query(query)
    after = decode_cursor(cursor, length=1)
    offset = after[0] if after is not None else 0
    if not isinstance(offset, int) or not 0 <= offset <= MAX_DEPTH:
        raise InvalidInput([FieldError(("cursor",), "not a cursor this API returned")])
    want = offset + limit + 1
    finder = _postgres_hits if session.get_bind().dialect.name == "postgresql" else _sqlite_hits
    best: dict[tuple[str, int], Hit] = {}
    for hit in finder(session, q, want):
        known = best.get((hit.type, hit.id))
        if known is None or hit.score > known.score:
            best[hit.type, hit.id] = hit
    merged = _merged(session, best)
    ranked = sorted(
        (hit for key, hit in best.items() if key not in merged),
        key=lambda h: (-h.score, _TYPE_ORDER[h.type], h.id),
    )
    shown = ranked[offset : offset + limit]
    more = len(ranked) > offset + limit and offset + limit <= MAX_DEPTH
    return Page(
        items=[hit.as_dict() for hit in shown],
        next=encode_cursor([offset + limit]) if more else None,
    )


def _merged(session: Session, hits: dict[tuple[str, int], Hit]) -> set[tuple[str, int]]:
    """The hits that are merged customers or contacts: they live on in their survivors."""
    merged: set[tuple[str, int]] = set()
    for kind, model in (("contact", Contact), ("customer", Customer)):
        ids = [ident for found, ident in hits if found == kind]
        if ids:
            rows = session.scalars(
                select(model.id).where(model.id.in_(ids), model.merged_into.is_not(None))
            )
            merged.update((kind, ident) for ident in rows)
    return merged


def _contact_hit(contact: Any, score: float) -> Hit:
    name = contact.full_name or " ".join(
        part for part in (contact.first_name, contact.last_name) if part
    )
    title = name or contact.email or contact.phone or f"contact {contact.id}"
    snippet = " · ".join(part for part in (contact.email, contact.phone) if part)
    return Hit("contact", contact.id, title, snippet, float(score))


def _customer_hit(customer: Any, score: float) -> Hit:
    snippet = " · ".join(
        part for part in (customer.kind, customer.domain or customer.email) if part
    )
    return Hit("customer", customer.id, customer.name, snippet, float(score))


def _case_hit(support_case: Any, score: float) -> Hit:
    snippet = f"{support_case.status} · {support_case.priority}"
    return Hit("case", support_case.id, support_case.subject, snippet, float(score))


_CONTACT_COLUMNS = (
    Contact.id,
    Contact.first_name,
    Contact.last_name,
    Contact.full_name,
    Contact.email,
    Contact.phone,
)
_CUSTOMER_COLUMNS = (Customer.id, Customer.name, Customer.kind, Customer.domain, Customer.email)
_CASE_COLUMNS = (SupportCase.id, SupportCase.subject, SupportCase.status, SupportCase.priority)

# The indexed expressions of migration 0020 (ix_search_*), verbatim.
_CONTACT_NAMES = (
    "coalesce(contacts.first_name, '') || ' ' || coalesce(contacts.last_name, '') || ' '"
    " || coalesce(contacts.full_name, '')"
)
_CONTACT_TEXT: ColumnElement[str] = literal_column(f"lower({_CONTACT_NAMES})", String())
_CONTACT_TSV: ColumnElement[Any] = literal_column(f"to_tsvector('simple', {_CONTACT_NAMES})")
_CUSTOMER_TSV: ColumnElement[Any] = literal_column("to_tsvector('simple', customers.name)")
_SUBJECT: ColumnElement[str] = literal_column("lower(support_cases.subject)", String())
_SUBJECT_TSV: ColumnElement[Any] = literal_column("to_tsvector('english', support_cases.subject)")
_REVERSED_PHONE: ColumnElement[str] = literal_column("reverse(contacts.phone)", String())
# Matching rows scored and sorted per table, at most.
CANDIDATES = 1000


def _starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` begins with ``prefix``, as a range its ``text_pattern_ops`` index serves.

    Not ``LIKE :pattern``: once the driver prepares the statement, PostgreSQL may switch to a
    generic plan, which cannot read a prefix out of a parameter and scans the whole table.
    """
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    lower = bindparam("prefix", prefix, String())
    upper = bindparam("after", after, String())
    return and_(column.op("~>=~")(lower), column.op("~<~")(upper))


def _postgres_hits(session: Session, q: str, want: int) -> list[Hit]:
    """A phone number by the end of its digits, an address exactly or by its beginning, other
    text by its words (full text), or, when no row has them all, by trigram similarity."""
    digits = phone_digits(q)
    if digits:
        phones = select(*_CONTACT_COLUMNS).where(_starts_with(_REVERSED_PHONE, digits[::-1]))
        # No ORDER BY here: with one, PostgreSQL walks the primary key hoping to meet a few
        # matches early, through a million rows when there is one; ``search`` sorts them.
        return [_contact_hit(row, PHONE) for row in session.execute(phones.limit(CANDIDATES))]
    lowered = q.lower()
    if _EMAIL.fullmatch(lowered):
        address = Contact.email_normalized
        score = case((address == lowered, EXACT_EMAIL), else_=len(lowered) / func.length(address))
        addresses = select(*_CONTACT_COLUMNS, score.label("score")).where(
            _starts_with(address, lowered)
        )
        ranked = addresses.order_by(score.desc(), Contact.id).limit(want)
        return [_contact_hit(row, row.score) for row in session.execute(ranked)]
    plain = func.plainto_tsquery(literal_column("'simple'"), q)
    english = func.websearch_to_tsquery(literal_column("'english'"), q)
    searches: list[tuple[str, Any, ColumnElement[bool], str]] = [
        ("contact", _CONTACT_TEXT, _CONTACT_TSV.op("@@")(plain), lowered),
        ("customer", Customer.name_key, _CUSTOMER_TSV.op("@@")(plain), name_key(q)),
        ("case", _SUBJECT, _SUBJECT_TSV.op("@@")(english), lowered),
    ]
    found = _ranked(session, searches, want)
    if found:
        return found
    # No row has every word: perhaps a typo. First the words corrected to known spellings,
    # searched by their words again; then, if that finds nothing, trigram similarity.
    groups = _corrected_words(session, q)
    if groups is not None:
        simple, stemmed = _any_of(groups, "simple"), _any_of(groups, "english")
        corrected: list[tuple[str, Any, ColumnElement[bool], str]] = [
            ("contact", _CONTACT_TEXT, _CONTACT_TSV.op("@@")(simple), lowered),
            ("customer", Customer.name_key, _CUSTOMER_TSV.op("@@")(simple), name_key(q)),
            ("case", _SUBJECT, _SUBJECT_TSV.op("@@")(stemmed), lowered),
        ]
        found = _ranked(session, corrected, want)
        if found:
            return found
    near = [(kind, column, column.op("%>")(query), query) for kind, column, _, query in searches]
    return _ranked(session, near, want)


# Known spellings a query word may be corrected to, at most, nearest first.
SPELLINGS = 5
# Each word of the query: whether ``search_words`` would list it (migration 0021's filter;
# other words are kept as typed), and the listed words nearest in spelling (itself first when
# it is there). ``%`` is trigram similarity above ``pg_trgm.similarity_threshold`` (0.3); a
# typo (a letter missing, extra, wrong or swapped, or two) changes a word's length by two at
# most, which keeps two words run together from being read as either of them.
_SPELLINGS = text(
    "SELECT q.w, s.word, s.word = q.w AS exact,"
    " length(q.w) BETWEEN 3 AND 40 AND q.w !~ '[[:digit:]]' AS listed"
    " FROM unnest(tsvector_to_array(to_tsvector('simple', :q))) AS q (w)"
    " LEFT JOIN LATERAL (SELECT DISTINCT word, word <-> q.w AS distance FROM search_words"
    " WHERE word % q.w AND abs(length(word) - length(q.w)) <= 2"
    " ORDER BY distance LIMIT :n) AS s ON true"
)


def _corrected_words(session: Session, q: str) -> list[list[str]] | None:
    """Each word of ``q`` (as the ``simple`` configuration splits it) with what it may mean:
    itself, and, unless some row has it exactly, the known words nearest in spelling
    (``search_words``, migration 0021). The word stays among them: a case subject matches by
    its stem (``jam`` finds ``jammed``), which the list, of words as written, does not know.

    Trigram similarity says little of a short word (``lrs`` and ``lars`` share two trigrams
    of seven), so a word shorter than ``SHORT`` also means the listed words one edit away. A
    word with no near spelling may be two words run together (``graceschulz``). None when
    nothing would change."""
    rows = session.execute(_SPELLINGS, {"q": q, "n": SPELLINGS}).all()
    spellings: dict[str, list[str]] = {}
    known: set[str] = set()
    for word, spelling, exact, listed in rows:
        found = spellings.setdefault(word, [])
        if exact or (not listed and len(word) >= MIN_LISTED):  # None: no spelling
            known.add(word)
        elif spelling is not None:
            found.append(spelling)
    unknown = {word: found for word, found in spellings.items() if word not in known}
    listed = _listed(session, unknown)
    groups: list[list[str]] = []
    for word, found in spellings.items():
        if word in known:
            groups.append([word])
            continue
        near = found + [w for w in _candidates(word, found) if w in listed and w not in found]
        if near:
            groups.append([word, *near[:SPELLINGS]])
        else:
            groups.extend(_split(word, listed) or [[word]])
    if len(groups) == len(spellings) and all(len(group) == 1 for group in groups):
        return None
    return groups


# The shortest word ``search_words`` lists, and the length below which a word's near
# spellings are looked for one edit away too.
MIN_LISTED = 3
SHORT = 6
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _edits(word: str) -> list[str]:
    """Every word one edit from ``word``: a letter more, less, changed, or two swapped."""
    cuts = [(word[:at], word[at:]) for at in range(len(word) + 1)]
    return [
        *(left + letter + right for left, right in cuts for letter in _LETTERS),
        *(left + right[1:] for left, right in cuts if right),
        *(left + letter + right[1:] for left, right in cuts if right for letter in _LETTERS),
        *(left + right[1] + right[0] + right[2:] for left, right in cuts if len(right) > 1),
    ]


def _splits(word: str) -> list[tuple[str, str]]:
    """``word`` cut in two words each long enough to be listed, the most even cut first."""
    cuts = range(MIN_LISTED, len(word) - MIN_LISTED + 1)
    return [(word[:at], word[at:]) for at in sorted(cuts, key=lambda at: abs(len(word) - 2 * at))]


def _candidates(word: str, found: list[str]) -> list[str]:
    """What an unknown ``word`` is looked up as, beyond its trigram spellings ``found``."""
    edits = _edits(word) if len(word) < SHORT else []
    halves = [half for cut in _splits(word) for half in cut] if not found else []
    return [*edits, *halves]


def _split(word: str, listed: set[str]) -> list[list[str]] | None:
    """The words of the most even cut of ``word`` whose two halves are both listed."""
    for left, right in _splits(word):
        if left in listed and right in listed:
            return [[left], [right]]
    return None


def _listed(session: Session, unknown: dict[str, list[str]]) -> set[str]:
    """Which words the unknown words may be (``_candidates``) ``search_words`` lists."""
    candidates = {c for word, found in unknown.items() for c in _candidates(word, found)}
    if not candidates:
        return set()
    rows = session.execute(
        text("SELECT DISTINCT word FROM search_words WHERE word = ANY(:candidates)"),
        {"candidates": sorted(candidates)},
    )
    return set(rows.scalars())


def _any_of(groups: list[list[str]], config: str) -> ColumnElement[Any]:
    """A text-search query matching a row with one word of each group (in ``config``)."""
    language: ColumnElement[Any] = literal_column(f"'{config}'")
    query: ColumnElement[Any] | None = None
    for group in groups:
        either: ColumnElement[Any] | None = None
        for word in group:
            term = func.plainto_tsquery(language, word)
            either = term if either is None else either.op("||")(term)
        assert either is not None
        query = either if query is None else query.op("&&")(either)
    assert query is not None
    return query


# Per kind: the columns a hit is made of (the id first), and how.
_KINDS: dict[str, tuple[tuple[Any, ...], Any]] = {
    "contact": (_CONTACT_COLUMNS, _contact_hit),
    "customer": (_CUSTOMER_COLUMNS, _customer_hit),
    "case": (_CASE_COLUMNS, _case_hit),
}
_WIDTH = max(len(columns) for columns, _ in _KINDS.values())


def _ranked(
    session: Session, searches: list[tuple[str, Any, ColumnElement[bool], str]], want: int
) -> list[Hit]:
    """The best ``want`` rows of every kind, by word similarity, in one statement.

    Each kind ranks at most its first ``CANDIDATES`` matching rows: a word in ten thousand rows
    (or a name like ten thousand others) stays quick to rank, at the cost that among more
    candidates than that, the best may not be shown.
    """
    branches = []
    for kind, text_column, matches, query in searches:
        columns = _KINDS[kind][0]
        fields = [column.label(f"f{n}") for n, column in enumerate(columns)]
        fields += [null().label(f"f{n}") for n in range(len(fields), _WIDTH)]
        rows = select(*fields, text_column.label("text")).where(matches)
        candidates = rows.limit(CANDIDATES).subquery()
        given = bindparam(f"q_{kind}", query, String())
        # A row with every word scores at least 0.5 (stemmed words may look little alike).
        score = func.greatest(func.word_similarity(given, candidates.c.text), 0.5)
        branches.append(
            select(
                literal(kind).label("kind"),
                *(candidates.c[f"f{n}"] for n in range(_WIDTH)),
                score.label("score"),
            )
        )
    every = union_all(*branches).subquery()
    order = case(_TYPE_ORDER, value=every.c.kind)
    ranked = select(every).order_by(every.c.score.desc(), order, every.c.f0).limit(want)
    hits = []
    for row in session.execute(ranked):
        columns, hit = _KINDS[row.kind]
        values = {column.key: getattr(row, f"f{n}") for n, column in enumerate(columns)}
        hits.append(hit(SimpleNamespace(**values), row.score))
    return hits


def _fts_phrases(q: str) -> str | None:
    """An FTS5 query matching every word of ``q`` (as a substring; the trigram tokenizer
    needs three characters, so shorter words are left out), or None when none is left."""
    words = [w for w in q.split() if len(w) >= 3]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _fts_ranked(session: Session, table: str, match: str, want: int) -> list[tuple[int, float]]:
    """(rowid, score) of ``table``'s best matches: a match is worth 0.5, and its BM25
    (negative, lower is better; near 0 in a small table) adds up to 0.5 more."""
    rows = session.execute(
        text(
            f"SELECT rowid, bm25({table}) AS rank FROM {table} "  # noqa: S608 (our table names)
            f"WHERE {table} MATCH :match ORDER BY rank LIMIT :want"
        ),
        {"match": match, "want": want},
    )
    return [(rowid, 0.5 + 0.5 * max(-rank, 0.0) / (1 + max(-rank, 0.0))) for rowid, rank in rows]


def _sqlite_hits(session: Session, q: str, want: int) -> Iterable[Hit]:
    digits = phone_digits(q)
    phrases = _fts_phrases(q)
    contact_scores: dict[int, float] = {}
    exact = session.scalar(select(Contact.id).where(Contact.email_normalized == q.lower()))
    if exact is not None:
        contact_scores[exact] = EXACT_EMAIL
    if digits:
        for rowid, _ in _fts_ranked(session, "contacts_fts", f'digits : "{digits}"', want):
            contact_scores.setdefault(rowid, PHONE)
    elif phrases:
        for rowid, score in _fts_ranked(session, "contacts_fts", phrases, want):
            contact_scores.setdefault(rowid, score)
    yield from _load(session, _CONTACT_COLUMNS, contact_scores, _contact_hit)
    if phrases is None or digits:
        return
    customers = dict(_fts_ranked(session, "customers_fts", phrases, want))
    yield from _load(session, _CUSTOMER_COLUMNS, customers, _customer_hit)
    cases = dict(_fts_ranked(session, "support_cases_fts", phrases, want))
    yield from _load(session, _CASE_COLUMNS, cases, _case_hit)


def _load(
    session: Session, columns: tuple[Any, ...], scores: dict[int, float], hit: Any
) -> Iterable[Hit]:
    if not scores:
        return
    rows = session.execute(select(*columns).where(columns[0].in_(list(scores))))
    for row in rows:
        yield hit(row, scores[row.id])
