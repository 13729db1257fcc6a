"""The Flask application factory."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from crm_core.blobs.configured import blob_store_from_settings
from crm_core.config import Settings, get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring
from crm_core.ingestion.inbox import Inbox
from crm_core.ops.logs import configure_logging
from webhooks import (
    api,
    bodies,
    campaigns,
    console,
    events,
    failure_budget,
    forms,
    health,
    intake,
    personal_data,
    publisher,
    ratelimit,
    telemetry,
    unstorable,
    unsubscribe,
)
from webhooks.api_writes import bp as writes_api
from webhooks.attachments import bp as attachments_api
from webhooks.audit import bp as audit_api
from webhooks.auth import check_route_permissions
from webhooks.exports import bp as exports_api
from webhooks.idempotency import check_idempotent_posts
from webhooks.openapi import views as apidocs
from webhooks.problems import register_error_handlers
from webhooks.state import CrmState, init_state


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    configure_logging(
        format=settings.resolved_log_format(), level=settings.log_level, process="web"
    )
    app = Flask(__name__)
    engine = make_engine(
        settings.resolved_database_url(),
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pre_ping=settings.db_pre_ping,
        keyring=Keyring.from_settings(settings),
    )
    init_state(
        app,
        CrmState(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            inbox=Inbox(engine),
            blobs=blob_store_from_settings(settings),
        ),
    )
    bodies.init_app(app, settings)
    unstorable.init_app(app)
    if settings.trusted_proxy_hops:
        # The client address (failure budget) is the one the trusted proxies saw.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
    register_error_handlers(app)
    telemetry.init_app(app, settings)
    limiter = ratelimit.init_app(app, settings)
    failure_budget.init_app(app, settings, limiter.storage)
    publisher.init_app(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(forms.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(audit_api)
    app.register_blueprint(writes_api)
    app.register_blueprint(apidocs.bp)
    app.register_blueprint(exports_api)
    app.register_blueprint(attachments_api)
    app.register_blueprint(personal_data.bp)
    console.init_app(app, settings)
    check_route_permissions(app)
    check_idempotent_posts(app)
    return app
