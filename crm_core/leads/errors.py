"""The error a single bad lead field raises; a whole lead collects them into ``InvalidInput``."""

from __future__ import annotations

from crm_core.errors import FieldError, InvalidInput


class InvalidField(ValueError):
    """One field of a lead cannot be used as given (an invalid e-mail address, say)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_field_error(self) -> FieldError:
        """The same problem as a ``FieldError``, as ``InvalidInput`` lists them."""
        return FieldError((self.field,), self.message)


def invalid_lead(problems: list[InvalidField]) -> InvalidInput:
    """One ``InvalidInput`` listing every bad field of a lead."""
    return InvalidInput([problem.as_field_error() for problem in problems])
