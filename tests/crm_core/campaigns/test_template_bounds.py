"""Hostile templates: every one ends, bounded, in text or in a refusal that names the bound.

Nothing here times a render. Each template would, without the bounds, build
megabytes to gigabytes or run for minutes; the assertions are on the outcome
(a refusal naming the bound) and on the size of what comes out.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.campaigns.sandbox import MAX_PART_CHARS, measure
from crm_core.campaigns.templates import compile_templates, validate_templates
from crm_core.errors import InvalidInput

CONTACT = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
CUSTOMER = {"name": "Acme"}
URL = "https://crm.example/unsubscribe/abc"


def render_text(source: str) -> str:
    templates = compile_templates(subject="Hi", text=source)
    return templates.render(contact=CONTACT, customer=CUSTOMER, unsubscribe_url=URL).text


# (template, the bound its refusal names)
HOSTILE = [
    ('{{ "%010000000d" % 1 }}', "format width"),
    ('{{ "%.10000000f" % 1.5 }}', "format precision"),
    ('{{ "%*d" % (10000000, 1) }}', "format width"),
    ('{{ "%((x)5)010000000d" % {"(x)5": 1} }}', "format width"),
    ('{{ "{:10000000}".format(1) }}', "format width"),
    ('{{ "{0:>{1}}".format("x", 10000000) }}', "another field"),
    ('{{ "%010000000d"|format(1) }}', "format width"),
    ('{{ "x"|center(10000000) }}', "padding width"),
    ('{{ "x".ljust(10000000) }}', "padding width"),
    ('{{ "x".rjust(10000000) }}', "padding width"),
    ('{{ "1".zfill(10000000) }}', "padding width"),
    ('{{ "a\nb"|indent(10000000) }}', "padding width"),
    ('{{ ("\t" * 100000).expandtabs(1000) }}', "value size"),
    ('{{ ("a " * 50000)|wordwrap(1, wrapstring="y" * 1000) }}', "value size"),
    ('{{ ("x" * 100000)|replace("", "y" * 1000) }}', "value size"),
    ('{{ ("x" * 100000).replace("x", "y" * 1000) }}', "value size"),
    ('{{ [1]|batch(1000000000, "x")|list }}', "batch or slice count"),
    ("{{ [1]|slice(1000000000)|list }}", "batch or slice count"),
    ("{{ 5|round(-100000000) }}", "rounding precision"),
    ("{{ [1, [2]]|tojson(indent=100000) }}", "JSON indent"),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "loop iterations",
    ),
    ("{% for i in range(100000) %}{{ loop.length }}{% endfor %}", "loop iterations"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "depth"),
    (
        "{% for x in " + "[" * 25 + "1" + "]" * 25 + " recursive %}"
        "{{ loop(x) if x is iterable }}{% endfor %}",
        "depth",
    ),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(19) }}",
        "operations",
    ),
    (
        "{% set ns = namespace(l=[]) %}{% set ns.l = [ns, ns] %}"
        "{% for x in ns.l recursive %}{{ loop(x.l) }}{% endfor %}",
        "value size",  # a structure that holds itself is endless
    ),
    ('{% set a = "x" * 100000 %}{{ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a }}', "value size"),
    ('{% set a = "x" * 100000 %}{{ a + a + a + a + a + a + a + a + a + a + a }}', "value size"),
    ('{% set a = ["x" * 100000] * 100000 %}{{ a|join }}', "value size"),
    ('{% set a = ["x" * 100000] * 100000 %}{{ "".join(a) }}', "value size"),
    ('{% set a = "x" * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a]|string }}', "value size"),
    ('{% set a = "x" * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a] }}', "value size"),
    ('{% set a = "x" * 100000 %}{{ "%s" * 11 % ((a,) * 11) }}', "value size"),
    ('{% set a = "x" * 100000 %}{{ "{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}".format(a) }}', "value size"),
    ("{{ 9 ** 100 ** 100 }}", "integer size"),
    ("{{ ((9 ** 100) ** 10) * ((9 ** 100) ** 10) }}", "integer size"),
    ('{% for i in range(10000) %}{{ "x" * 1000 }}{% endfor %}', "rendered size"),
    (
        "{% set x %}{% for i in range(10000) %}" + "y" * 1000 + "{% endfor %}{% endset %}ok",
        "characters written",
    ),
    ('{{ "x".translate({120: "y" * 100000}) }}', "not available"),
]


def names_the_bound(refusal: InvalidInput, bound: str) -> bool:
    """The refusal names ``bound``, or the last-resort time bound, which a loaded machine can
    reach before the count a template was written to exceed."""
    return bound in str(refusal) or "render time" in str(refusal)


@pytest.mark.parametrize(("source", "bound"), HOSTILE)
def test_a_hostile_template_is_refused_naming_the_bound(source: str, bound: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        render_text(source)
    assert names_the_bound(refused.value, bound)
    assert refused.value.errors[0].loc == ("text",)


@pytest.mark.parametrize(("source", "bound"), HOSTILE)
def test_create_refuses_a_hostile_template(source: str, bound: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_templates(subject="Hi", text=source)
    assert names_the_bound(refused.value, bound)


def test_a_template_within_the_bounds_renders_as_before() -> None:
    source = (
        '{{ "%5d|%-6s|%.2f" % (42, "ab", 3.14159) }} {{ "{:>8}".format("r") }} '
        '{{ "x"|center(5) }}|{{ "ab"|replace("a", "A") }} {{ ["a", "b"]|join(",") }} '
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ 2 ** 10 }} "
        "{% macro hi(n) %}hi {{ n }}{% endmacro %}{{ hi(contact.first_name) }}"
    )
    assert render_text(source) == "   42|ab    |3.14        r   x  |Ab a,b 123 1024 hi Ann"


def test_a_recursive_macro_fails_that_render_and_is_refused_at_create() -> None:
    # The recursion of the issue: at send time a failed message, never a RecursionError.
    source = "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"
    with pytest.raises(InvalidInput, match="macro and recursive loop depth"):
        render_text(source)
    with pytest.raises(InvalidInput, match="macro and recursive loop depth"):
        validate_templates(subject=source, text="Hi")


def test_a_bound_that_depends_on_the_contact_is_left_to_the_send() -> None:
    # Only the sample contact is known at create; a real contact's data fails at send time.
    source = '{% if contact.first_name == "Ann" %}{{ "x"|center(10000000) }}{% endif %}'
    validate_templates(subject="Hi", text=source)
    with pytest.raises(InvalidInput, match="padding width"):
        render_text(source)


# Pieces a hostile template is made of; hypothesis strings them together.
EXPRESSIONS = st.sampled_from(
    [
        '"x" * 100000', '"ab" * 50000', "range(100000)", "[1] * 100000", "9 ** 99",
        '"%0999d" % 1', '"x"|center(999)', '("x " * 1000)|wordwrap(1)', "contact.first_name",
        '"%s"|format(contact)', '"{:>999}".format(1)', "[contact] * 1000", '"y"',
    ]
)  # fmt: skip
WRAPPERS = st.sampled_from(
    [
        "{{{{ {0} }}}}",
        "{{{{ ({0}) ~ ({0}) }}}}",
        "{{{{ ({0}) + ({0}) }}}}",
        "{{{{ ({0})|join }}}}",
        "{{{{ ({0})|string * 10 }}}}",
        "{{% for i in range(1000) %}}{{{{ {0} }}}}{{% endfor %}}",
        "{{% for i in {0} %}}{{% for j in {0} %}}.{{% endfor %}}{{% endfor %}}",
        "{{% set v = {0} %}}{{{{ v ~ v ~ v ~ v }}}}",
        "{{% macro m(n) %}}{{{{ {0} }}}}{{{{ m(n) }}}}{{% endmacro %}}{{{{ m(1) }}}}",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(WRAPPERS, EXPRESSIONS), min_size=1, max_size=4))
def test_any_mix_of_hostile_pieces_ends_bounded(pieces: list[tuple[str, str]]) -> None:
    source = "".join(wrapper.format(expression) for wrapper, expression in pieces)
    text, errors = "", []
    try:
        text = render_text(source)
    except InvalidInput as refused:
        errors = refused.errors
    # Either a bounded text, or a refusal of the text part that names its reason.
    assert len(text) <= MAX_PART_CHARS
    assert measure(text) <= MAX_PART_CHARS
    assert all(error.loc == ("text",) and error.msg for error in errors)
