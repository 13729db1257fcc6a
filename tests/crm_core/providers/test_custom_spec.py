"""The custom provider's mapping file: the examples load, and each kind of mistake is named
by its key."""

from __future__ import annotations

import pytest

from crm_core.errors import InvalidInput
from crm_core.payloads.kinds import EventKind
from crm_core.providers.custom_spec import (
    Algorithm,
    Encoding,
    Items,
    kind_fields,
    load_mapping,
    mapping_from_document,
)
from tests.provider_requests import EXAMPLES

MINIMAL = """
kind = "leads"
[signature]
header = "X-Signature"
[delivery_id]
header = "X-Delivery"
[fields]
email = "/email"
"""


def _errors(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        load_mapping(text)
    return [(error.field, error.msg) for error in caught.value.errors]


def test_the_github_style_example_describes_hex_sha256_with_a_prefix() -> None:
    spec = load_mapping((EXAMPLES / "github-style.toml").read_bytes())
    assert spec.kind == EventKind.ORDERS
    signature = spec.signature
    assert (signature.header, signature.algorithm, signature.encoding, signature.prefix) == (
        "X-Hub-Signature-256",
        Algorithm.SHA256,
        Encoding.HEX,
        "sha256=",
    )
    assert signature.timestamp is None
    assert spec.delivery_id.header == "X-Shop-Delivery"
    assert spec.topic is not None
    assert spec.topic.handled == ["order.completed"]
    lines = spec.fields["lines"]
    assert isinstance(lines, Items)
    assert (lines.each, lines.fields["unit_price"]) == ("/order/items", "/price")
    assert spec.constants == {"status": "paid"}


def test_the_lead_form_example_signs_a_timestamp_in_base64() -> None:
    spec = load_mapping((EXAMPLES / "lead-form.toml").read_bytes())
    timestamp = spec.signature.timestamp
    assert timestamp is not None
    assert (timestamp.header, timestamp.signed, timestamp.tolerance) == (
        "X-Form-Timestamp",
        "{timestamp}.{body}",
        300,
    )
    assert spec.signature.encoding == Encoding.BASE64
    assert spec.delivery_id.pointer == "/submission/id"
    assert spec.fields["deal.amount"] == "/submission/answers/budget"
    assert timestamp.message("1700000000", b'{"a": 1}') == b'1700000000.{"a": 1}'


def test_defaults_and_the_stored_form_read_back_the_same() -> None:
    spec = load_mapping(MINIMAL)
    assert (spec.signature.algorithm, spec.signature.encoding, spec.signature.prefix) == (
        Algorithm.SHA256,
        Encoding.HEX,
        "",
    )
    assert spec.constants == {}
    for path in ("github-style.toml", "lead-form.toml"):
        spec = load_mapping((EXAMPLES / path).read_bytes())
        assert mapping_from_document(spec.model_dump(mode="json")) == spec


def test_a_kind_s_fields_come_from_its_payload_schema() -> None:
    orders = kind_fields("orders")
    assert {"order_number", "email", "currency", "lines", "total"} <= orders.pointers
    assert orders.lists["lines"] == {"sku", "name", "quantity", "unit_price"}
    assert "lines" not in orders.constants
    tickets = kind_fields("tickets")
    assert {"requester.email", "requester.name", "requester"} <= tickets.pointers
    assert "requester" not in tickets.constants
    assert "from" in kind_fields("emails").pointers
    assert "attributes" in kind_fields("leads").pointers
    assert "attributes" not in kind_fields("leads").constants


BAD: list[tuple[str, str, str, str]] = [
    # (what is wrong, replace this, with this, the key the error names)
    ("not TOML", 'kind = "leads"', "kind = leads", ""),
    ("an unknown kind", '"leads"', '"invoices"', "kind"),
    ("an unknown top-level key", 'kind = "leads"', 'kind = "leads"\nsecret = "x"', "secret"),
    ("no signature", '[signature]\nheader = "X-Signature"', "", "signature"),
    (
        "an unknown algorithm",
        'header = "X-Signature"',
        'header = "X-Signature"\nalgorithm = "md5"',
        "signature.algorithm",
    ),
    (
        "an unknown encoding",
        'header = "X-Signature"',
        'header = "X-Signature"\nencoding = "b32"',
        "signature.encoding",
    ),
    (
        "a key misspelt in a table",
        'header = "X-Signature"',
        'header = "X-Signature"\nalgoritm = "sha1"',
        "signature.algoritm",
    ),
    ("a header name with a space", '"X-Signature"', '"X Signature"', "signature.header"),
    (
        "a prefix with a space",
        'header = "X-Signature"',
        'header = "X-Signature"\nprefix = "sha 256="',
        "signature.prefix",
    ),
    (
        "a delivery id in two places",
        'header = "X-Delivery"',
        'header = "X-Delivery"\npointer = "/id"',
        "delivery_id",
    ),
    ("a delivery id nowhere", 'header = "X-Delivery"', "", "delivery_id"),
    ("a pointer without its slash", '"/email"', '"email"', "fields.email"),
    ("a pointer with a bad escape", '"/email"', '"/e~2mail"', "fields.email"),
    ("a field the kind lacks", 'email = "/email"', 'email = "/email"\nemial = "/x"', "fields"),
    ("no field at all", 'email = "/email"', "", "fields"),
    (
        "items for a field that is no list",
        'email = "/email"',
        'email = "/email"\n[fields.company]\neach = "/x"',
        "fields",
    ),
    (
        "a constant of a field the kind lacks",
        'email = "/email"',
        'email = "/email"\n[constants]\ncurrency = "EUR"',
        "constants",
    ),
    (
        "a constant that is a table",
        'email = "/email"',
        'email = "/email"\n[constants.company]\nname = "x"',
        "constants",
    ),
]
ORDER_BAD: list[tuple[str, str, str]] = [
    ("an item table without each", '[fields.lines]\nsku = "/sku"', "fields.lines.each"),
    ("an item field the line lacks", '[fields.lines]\neach = "/items"\ncolour = "/c"', "fields"),
    (
        "an item pointer that is no pointer",
        '[fields.lines]\neach = "/items"\nsku = "sku"',
        "fields",
    ),
]
TIMESTAMP_BAD: list[tuple[str, str, str]] = [
    ("an unknown placeholder", 'signed = "{timestamp}.{id}.{body}"', "signature.timestamp.signed"),
    ("the body left out", 'signed = "{timestamp}"', "signature.timestamp.signed"),
    ("the timestamp twice", 'signed = "{timestamp}{timestamp}{body}"',
     "signature.timestamp.signed"),
    ("a broken brace", 'signed = "{timestamp.{body}"', "signature.timestamp.signed"),
    ("no tolerance", "tolerance = 0", "signature.timestamp.tolerance"),
    ("an unknown format", 'format = "rfc2822"', "signature.timestamp.format"),
    ("no header", 'format = "unix"', "signature.timestamp.header"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "old", "new", "key"), BAD, ids=[case[0] for case in BAD])
def test_each_kind_of_mistake_is_named_by_its_key(what: str, old: str, new: str, key: str) -> None:
    assert old in MINIMAL
    errors = _errors(MINIMAL.replace(old, new, 1))
    assert key in [field for field, _ in errors] or (key == "" and errors[0][0] == "body"), errors
    assert all("\n" not in message for _, message in errors)


def test_a_field_the_kind_lacks_is_named_with_the_fields_it_has() -> None:
    [(field, message)] = _errors(MINIMAL + 'emial = "/x"\n')
    assert field == "fields"
    assert message.startswith("emial: not a field of leads; one of attributes, company,")


@pytest.mark.parametrize(("what", "table", "key"), ORDER_BAD, ids=[c[0] for c in ORDER_BAD])
def test_each_mistake_in_an_item_table_is_named(what: str, table: str, key: str) -> None:
    text = MINIMAL.replace('"leads"', '"orders"') + table + "\n"
    assert key in [field for field, _ in _errors(text)]


@pytest.mark.parametrize(("what", "line", "key"), TIMESTAMP_BAD, ids=[c[0] for c in TIMESTAMP_BAD])
def test_each_mistake_in_a_signed_timestamp_is_named(what: str, line: str, key: str) -> None:
    header = "" if key.endswith(".header") else 'header = "X-Timestamp"\n'
    text = MINIMAL.replace(
        "[delivery_id]", f"[signature.timestamp]\n{header}{line}\n[delivery_id]", 1
    )
    assert key in [field for field, _ in _errors(text)]


def test_an_oversized_file_is_refused_before_it_is_parsed() -> None:
    [(field, message)] = _errors(MINIMAL + "#" * 70_000)
    assert (field, message) == ("body", "a mapping file is at most 65536 bytes")
