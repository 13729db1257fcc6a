"""``GET /api/audit``: who changed what, newest first (admin)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request

from crm_core.base.pagination import parse_limit
from crm_core.errors import FieldError, InvalidInput
from crm_core.people.audit import list_entries
from crm_core.readapi.schemas import AuditEntryDoc, AuditQuery, Page
from webhooks.auth import current_actor, require_api_key
from webhooks.openapi.registry import documented
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("audit", __name__, url_prefix="/api")
_MAX_ID = 2**63 - 1


def _since(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput([FieldError(("since",), "must be an ISO 8601 time")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _entity_id(raw: str | None) -> int | None:
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_ID:
        raise InvalidInput([FieldError(("id",), "must be an entity's id")])
    return int(raw)


@bp.get("/audit")
@documented(
    summary="Who changed what, newest first",
    query=AuditQuery,
    responses={200: Page[AuditEntryDoc], 400: "A query parameter is not valid (each one named)."},
    tags=("audit",),
)
@require_api_key
def list_audit() -> Response:
    """Audit entries, filtered by ``entity``, ``id``, ``actor`` (a label) and ``since``."""
    args = request.args
    try:
        limit = parse_limit(args.get("limit"))
        entity_id, since = _entity_id(args.get("id")), _since(args.get("since"))
        with crm_state().sessions() as session:
            page = list_entries(
                session,
                actor=current_actor(),
                entity=args.get("entity") or None,
                entity_id=entity_id,
                by=args.get("actor") or None,
                since=since,
                cursor=args.get("cursor"),
                limit=limit,
            )
    except InvalidInput as exc:
        return problem(
            400, str(exc), title="Invalid query", type_="invalid-query", errors=exc.error_dicts()
        )
    return jsonify(page.as_dict())
