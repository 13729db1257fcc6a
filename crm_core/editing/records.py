"""What the write services share: their errors, field snapshots for the audit log, and the
normalization of typed fields that the schemas leave as given (e-mail, tags)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from crm_core.base.entities import ExternalRef
from crm_core.errors import FieldError, InvalidInput
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import normalize_email


class RecordNotFound(LookupError):
    """No entity of this kind has this id."""

    def __init__(self, entity: str, entity_id: int) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"no {entity} {entity_id}")


class RecordConflict(Exception):
    """The write would break a rule of the data (a unique address, one primary contact…)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)

    def error_dicts(self) -> list[dict[str, Any]]:
        if self.field is None:
            return []
        return [FieldError((self.field,), str(self), "conflict").as_dict()]


class RecordMerged(LookupError):
    """The entity was merged into another: it is a tombstone that names its survivor."""

    def __init__(self, entity: str, entity_id: int, into: int) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.into = into
        super().__init__(f"{entity} {entity_id} was merged into {entity} {into}")


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The current values of ``fields``, copied (so later changes do not alter them)."""
    values = {}
    for name in fields:
        value = getattr(obj, name)
        values[name] = (
            list(value)
            if isinstance(value, list)
            else dict(value)
            if isinstance(value, dict)
            else value
        )
    return values


def normalized_email(value: str) -> str:
    """The matching form of an address the schema has already checked."""
    try:
        return normalize_email(value)
    except InvalidField as exc:
        raise InvalidInput([FieldError(("email",), exc.message)]) from None


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags without duplicates, in the order given."""
    return list(dict.fromkeys(tags))


def forget_external_refs(session: Session, *, entity_type: str, ids: Iterable[int]) -> None:
    """Drop senders' ids for deleted entities, so no later event is matched to nothing."""
    id_list = list(ids)
    if id_list:
        session.execute(
            delete(ExternalRef).where(
                ExternalRef.entity_type == entity_type, ExternalRef.entity_id.in_(id_list)
            )
        )
