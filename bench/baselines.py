"""Baseline web apps for the intake benchmark, served under the same gunicorn settings.

``bare``: parse the JSON body and answer 202. ``insert``: the same plus one
committed single-row INSERT. What the real intake adds on top (signature,
source lookup, idempotent insert, rate limit, publish) is the difference.
"""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request
from sqlalchemy import text

from crm_core.config import get_settings
from crm_core.db import make_engine

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_inserts "
    "(id BIGSERIAL PRIMARY KEY, webhook_id TEXT, body BYTEA)"
)


def bare_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/<source>/<kind>")
    def receive(source: str, kind: str) -> Response:
        json.loads(request.get_data())
        response = jsonify(event_id=0, status="received")
        response.status_code = 202
        return response

    return app


def insert_app() -> Flask:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url(), pool_size=settings.db_pool_size)
    with engine.begin() as conn:
        # gunicorn's workers start together; CREATE TABLE IF NOT EXISTS races itself.
        conn.execute(text("SELECT pg_advisory_xact_lock(4242)"))
        conn.execute(text(CREATE_TABLE))
    app = Flask(__name__)

    @app.post("/webhooks/<source>/<kind>")
    def receive(source: str, kind: str) -> Response:
        body = request.get_data()
        json.loads(body)
        with engine.begin() as conn:
            new_id = conn.execute(
                text("INSERT INTO bench_inserts (webhook_id, body) VALUES (:w, :b) RETURNING id"),
                {"w": request.headers.get("webhook-id"), "b": body},
            ).scalar_one()
        response = jsonify(event_id=new_id, status="received")
        response.status_code = 202
        return response

    return app
