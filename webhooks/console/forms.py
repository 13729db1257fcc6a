"""Forms in the console: bad input re-renders the form with each error beside its field.

A view validates through the same service (or pydantic model) the API uses. When that
refuses the input, ``FormErrors.of(exc)`` turns the refusal into messages by field name, and
the template's ``field`` macro (``console/_forms.html``) shows each message under its input,
tied to it with ``aria-describedby``; a message that belongs to no field shows above the
form. The view answers 422 with the form as it was filled in::

    try:
        update_contact(db, actor=actor, ...)
    except (InvalidInput, ValidationError) as exc:
        return render_template("console/people/contact_form.html",
                               form=request.form, errors=FormErrors.of(exc)), 422
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from crm_core.editing.records import RecordConflict
from crm_core.errors import InvalidInput


@dataclass
class FormErrors:
    """Error messages by field name; ``general`` for the ones that belong to no field."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, exc: InvalidInput | ValidationError | RecordConflict, *, known: Iterable[str] = ()
    ) -> FormErrors:
        """The messages of a service's or a model's refusal (bad input, or a conflict with the
        data, like an address another contact has). A message for a field not in ``known``
        (when given) goes to ``general``, so it is never lost."""
        errors = cls()
        names = set(known)
        if isinstance(exc, ValidationError):
            pairs = [(_name(e["loc"]), str(e["msg"])) for e in exc.errors()]
        elif isinstance(exc, RecordConflict):
            pairs = [(exc.field or "", str(exc))]
        else:
            pairs = [(_name(e.loc), e.msg) for e in exc.errors]
        for name, message in pairs:
            errors.add(name if not names or name in names else "", message)
        return errors

    def add(self, name: str, message: str) -> None:
        """Add a message for ``name`` (empty: for the form as a whole)."""
        if name and name != "body":
            self.fields.setdefault(name, []).append(message)
        else:
            self.general.append(message)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def for_field(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def _name(loc: Iterable[object]) -> str:
    """The form field a location names: its first part (``email`` of ``("email",)``)."""
    parts = [str(part) for part in loc]
    return parts[0] if parts else ""


def form_values(form: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The submitted values of ``names``, stripped; absent ones as empty strings."""
    return {name: (form.get(name) or "").strip() for name in names}
