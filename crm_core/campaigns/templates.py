"""Campaign templates: subject, text and HTML rendered per contact in Jinja2's sandbox.

Templates are written by marketing users through the API, so they run in an
immutable sandbox (no ``_``-attributes, no mutating calls, bounded ranges) and
see plain dicts, never ORM objects: a template cannot reach the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from crm_core.customers.models import Contact, Customer
from crm_core.errors import FieldError, InvalidInput

MAX_TEMPLATE_CHARS = 200_000
# Bounds on what one expression may build, so a template cannot exhaust a worker's memory.
MAX_PRODUCT_LENGTH = 100_000
MAX_EXPONENT = 100


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` kept from building huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders a blocked attribute as "", hiding the attempt; fail instead.
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {MAX_EXPONENT}")
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        return super().call_binop(context, operator, left, right)


def _check_repeat(sequence: Any, times: Any) -> None:
    repeatable = isinstance(sequence, str | list | tuple) and isinstance(times, int)
    if repeatable and len(sequence) * times > MAX_PRODUCT_LENGTH:
        raise SecurityError(f"a value longer than {MAX_PRODUCT_LENGTH}")


# Undefined names and attributes render as "" (a contact without a first name
# is normal); ChainableUndefined also lets ``contact.missing.deeper`` render "".
_TEXT = BoundedSandbox(autoescape=False, undefined=ChainableUndefined)
_HTML = BoundedSandbox(autoescape=True, undefined=ChainableUndefined)

CONTACT_FIELDS = (
    "id", "first_name", "last_name", "full_name", "email", "phone", "job_title", "country",
)  # fmt: skip
CUSTOMER_FIELDS = (
    "id", "kind", "name", "domain", "lifecycle_stage", "email", "phone", "website",
    "industry", "city", "region", "postal_code", "country", "owner",
)  # fmt: skip


@dataclass(frozen=True)
class RenderedMessage:
    """One contact's message; ``subject`` is a single line."""

    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class CampaignTemplates:
    """Compiled templates, made once per batch and rendered once per contact."""

    subject: Template
    text: Template
    html: Template | None

    def render(
        self, *, contact: Mapping[str, Any], customer: Mapping[str, Any], unsubscribe_url: str
    ) -> RenderedMessage:
        """Render all parts; InvalidInput (loc: the template) when a template misbehaves."""
        context = {"contact": contact, "customer": customer, "unsubscribe_url": unsubscribe_url}
        subject = _render("subject", self.subject, context)
        return RenderedMessage(
            # Folded to one line: a value with a newline must not break the header.
            subject=" ".join(subject.split()),
            text=_render("text", self.text, context),
            html=_render("html", self.html, context) if self.html is not None else None,
        )


def compile_templates(*, subject: str, text: str, html: str | None = None) -> CampaignTemplates:
    """Parse the three templates; InvalidInput names each one with a syntax error."""
    errors: list[FieldError] = []
    compiled = {
        name: _compile(name, source, environment, errors)
        for name, source, environment in (
            ("subject", subject, _TEXT),
            ("text", text, _TEXT),
            ("html", html, _HTML),
        )
        if source is not None
    }
    if errors:
        raise InvalidInput(errors)
    return CampaignTemplates(
        subject=compiled["subject"], text=compiled["text"], html=compiled.get("html")
    )


def validate_templates(*, subject: str, text: str, html: str | None = None) -> None:
    """Check the templates when a campaign is created or changed (InvalidInput if bad)."""
    compile_templates(subject=subject, text=text, html=html)


def contact_context(contact: Contact) -> dict[str, Any]:
    """What a template may know about the contact."""
    return {name: getattr(contact, name) for name in CONTACT_FIELDS}


def customer_context(customer: Customer) -> dict[str, Any]:
    """What a template may know about the contact's customer."""
    return {name: getattr(customer, name) for name in CUSTOMER_FIELDS}


def _compile(
    name: str, source: str, environment: ImmutableSandboxedEnvironment, errors: list[FieldError]
) -> Template:
    if not isinstance(source, str):
        errors.append(FieldError(loc=(name,), msg="must be a string"))
    elif len(source) > MAX_TEMPLATE_CHARS:
        errors.append(FieldError(loc=(name,), msg=f"longer than {MAX_TEMPLATE_CHARS} characters"))
    else:
        try:
            return environment.from_string(source)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            errors.append(FieldError(loc=(name,), msg=f"template error{where}: {exc.message}"))
    return environment.from_string("")


def _render(name: str, template: Template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except SecurityError as exc:
        raise InvalidInput([FieldError(loc=(name,), msg=f"not allowed: {exc}")]) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        # A template can fail per contact (e.g. a filter given None); never a traceback.
        msg = f"cannot render: {type(exc).__name__}: {exc}"
        raise InvalidInput([FieldError(loc=(name,), msg=msg)]) from None
