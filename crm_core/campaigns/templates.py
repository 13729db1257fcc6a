"""Campaign templates: subject, text and HTML rendered per contact in Jinja2's sandbox.

Templates are written by marketing users through the API, so they run in an
immutable sandbox (no ``_``-attributes, no mutating calls) whose every way of
making work is bounded (``crm_core.campaigns.sandbox``), and see plain dicts,
never ORM objects: a template cannot reach the session or exhaust the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from crm_core.campaigns.sandbox import (
    MAX_CALL_DEPTH,
    MAX_PART_CHARS,
    BoundedSandbox,
    TemplateBoundError,
    render_budget,
)
from crm_core.customers.models import Contact, Customer
from crm_core.errors import FieldError, InvalidInput

MAX_TEMPLATE_CHARS = 200_000

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
    """Check the templates when a campaign is created or changed (InvalidInput if bad).

    Each is parsed, then rendered once for a sample contact: a template that
    breaks a bound (size, width, loops, recursion) or the sandbox is refused
    here, not at send time. Errors that depend on a contact's data are left to
    the send, which fails that contact's message alone.
    """
    templates = compile_templates(subject=subject, text=text, html=html)
    try:
        templates.render(
            contact=SAMPLE_CONTACT, customer=SAMPLE_CUSTOMER, unsubscribe_url=SAMPLE_URL
        )
    except InvalidInput as exc:
        refused = [error for error in exc.errors if error.type == BOUND_ERROR]
        if refused:
            raise InvalidInput(refused) from None


# What a template sees when it is checked, before any real contact: every field set.
SAMPLE_CONTACT: dict[str, Any] = {
    **dict.fromkeys(CONTACT_FIELDS, "sample"), "id": 1, "email": "sample@example.com",
}  # fmt: skip
SAMPLE_CUSTOMER: dict[str, Any] = {**dict.fromkeys(CUSTOMER_FIELDS, "sample"), "id": 1}
SAMPLE_URL = "https://crm.example/unsubscribe/sample"
# The FieldError type of a template the sandbox or its bounds refused.
BOUND_ERROR = "template_bound"


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
        return _bounded_render(template, context)
    except TemplateBoundError as exc:
        raise InvalidInput([FieldError((name,), str(exc), BOUND_ERROR)]) from None
    except RecursionError:
        msg = f"exceeds the bound on macro and recursive loop depth ({MAX_CALL_DEPTH})"
        raise InvalidInput([FieldError((name,), msg, BOUND_ERROR)]) from None
    except SecurityError as exc:
        raise InvalidInput([FieldError((name,), f"not allowed: {exc}", BOUND_ERROR)]) from None
    except (
        TemplateError,
        ArithmeticError,
        AttributeError,
        TypeError,
        ValueError,
        LookupError,
    ) as exc:
        # A template can fail per contact (e.g. a filter given None); never a traceback.
        msg = f"cannot render: {type(exc).__name__}: {exc}"
        raise InvalidInput([FieldError(loc=(name,), msg=msg)]) from None


def _bounded_render(template: Template, context: dict[str, Any]) -> str:
    """The rendered text, stopped as soon as it is longer than a part may be."""
    chunks: list[str] = []
    size = 0
    with render_budget():
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_PART_CHARS:
                raise TemplateBoundError("rendered size in characters", MAX_PART_CHARS)
            chunks.append(chunk)
    return "".join(chunks)
