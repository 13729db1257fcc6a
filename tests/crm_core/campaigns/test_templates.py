"""Campaign templates render per contact in a sandbox that user-written templates cannot escape."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from crm_core.campaigns.templates import (
    compile_templates,
    contact_context,
    customer_context,
    validate_templates,
)
from crm_core.errors import InvalidInput
from tests.factories import ContactFactory, CustomerFactory

CONTACT = {"first_name": "Ann", "last_name": "O'Neil <admin>", "email": "ann@example.com"}
CUSTOMER = {"name": "Acme & Sons", "country": "DE"}
URL = "https://crm.example/unsubscribe/abc?x=1&y=2"


def render(subject: str = "Hi", text: str = "", html: str | None = None) -> Any:
    templates = compile_templates(subject=subject, text=text, html=html)
    return templates.render(contact=CONTACT, customer=CUSTOMER, unsubscribe_url=URL)


def test_contact_customer_and_unsubscribe_url_are_in_the_context() -> None:
    message = render(
        subject="News for {{ contact.first_name }} at {{ customer.name }}",
        text="Dear {{ contact.first_name }},\nLeave: {{ unsubscribe_url }}",
        html=(
            "<p>{{ contact.last_name }} / {{ customer.name }}</p>"
            "<a href='{{ unsubscribe_url }}'>x</a>"
        ),
    )
    assert message.subject == "News for Ann at Acme & Sons"
    assert message.text == f"Dear Ann,\nLeave: {URL}"
    # HTML is escaped; text and subject are not.
    assert message.html == (
        "<p>O&#39;Neil &lt;admin&gt; / Acme &amp; Sons</p>"
        "<a href='https://crm.example/unsubscribe/abc?x=1&amp;y=2'>x</a>"
    )


def test_without_html_there_is_no_html_part() -> None:
    assert render(text="plain").html is None


def test_undefined_values_render_empty() -> None:
    message = render(
        subject="Hi {{ contact.nickname }}!",
        text="[{{ contact.missing.deeper }}][{{ nobody }}][{{ customer['nope'] }}]",
    )
    assert message.subject == "Hi !"
    assert message.text == "[][][]"


def test_a_subject_is_folded_to_one_line() -> None:
    templates = compile_templates(subject="Hello {{ contact.first_name }}", text="")
    message = templates.render(
        contact={"first_name": "Ann\r\nBcc: victim@example.com"}, customer={}, unsubscribe_url=URL
    )
    assert message.subject == "Hello Ann Bcc: victim@example.com"


@pytest.mark.parametrize(
    ("field", "source"),
    [("subject", "{{ contact.first_name "), ("text", "{% if %}"), ("html", "{% for x in y %}")],
)
def test_syntax_errors_name_the_template(field: str, source: str) -> None:
    sources = {"subject": "ok", "text": "ok", "html": "ok", field: source}
    with pytest.raises(InvalidInput) as caught:
        validate_templates(**sources)
    assert [error.loc for error in caught.value.errors] == [(field,)]
    assert "template error" in caught.value.errors[0].msg


def test_every_bad_template_is_reported() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_templates(subject="{{", text="{% endfor %}", html=None)
    assert [error.loc for error in caught.value.errors] == [("subject",), ("text",)]


def test_valid_templates_pass() -> None:
    validate_templates(subject="{{ contact.first_name }}", text="x", html="<b>{{ 1 + 1 }}</b>")


ESCAPES = [
    "{{ contact.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'].system('true') }}",
    "{{ '{0.__class__}'.format(contact) }}",
    "{{ contact.update({'first_name': 'x'}) }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{{ 'a' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 9 ** 999999999 }}",
    "{% for i in range(10**9) %}{% endfor %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_template_cannot_escape_the_sandbox(source: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        render(text=source)
    (error,) = caught.value.errors
    assert error.loc == ("text",)


def test_private_attributes_are_refused_with_the_reason() -> None:
    class Secretive:
        _secret = "s3cret"

    templates = compile_templates(subject="x", text="[{{ contact._secret }}]")
    with pytest.raises(InvalidInput, match="_secret' is not allowed"):
        templates.render(contact=Secretive(), customer={}, unsubscribe_url=URL)  # type: ignore[arg-type]


def test_context_is_plain_data_from_the_models(session: Session) -> None:
    customer = CustomerFactory(name="Acme", domain="acme.example", country="DE")
    contact = ContactFactory(customer=customer, first_name="Ann", job_title="CTO")
    session.flush()
    contact_data = contact_context(contact)
    customer_data = customer_context(customer)
    assert contact_data["first_name"] == "Ann"
    assert contact_data["job_title"] == "CTO"
    assert customer_data["domain"] == "acme.example"
    values = [*contact_data.values(), *customer_data.values()]
    assert all(value is None or isinstance(value, str | int) for value in values)
    templates = compile_templates(subject="{{ contact.first_name }} @ {{ customer.name }}", text="")
    message = templates.render(contact=contact_data, customer=customer_data, unsubscribe_url=URL)
    assert message.subject == "Ann @ Acme"
