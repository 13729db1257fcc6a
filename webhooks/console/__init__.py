"""The operator console: the platform in a browser, at ``/console``.

Server-rendered pages (Flask blueprints, Jinja2 templates with autoescaping, htmx for partial
updates, vendored under ``static/``), signed in as one of the users of ``crm users``. Every
page goes through the same ``crm_core`` services and permissions as the API. The frame
(sessions, CSRF, the Content-Security-Policy, error pages) is ``site``; a page area is a
blueprint in ``PAGES``, and each view declares its permission with ``@console_route``.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from crm_core.config import Settings
from webhooks.console import (
    campaigns,
    cases,
    events,
    overview,
    people,
    pipeline,
    sessions,
    signin,
)
from webhooks.console import settings as settings_page
from webhooks.console.access import check_console_routes
from webhooks.console.site import bp, root

# Each page area, at /console<prefix>.
PAGES: tuple[tuple[Blueprint, str], ...] = (
    (signin.bp, ""),
    (overview.bp, ""),
    (events.bp, "/events"),
    (people.bp, "/people"),
    (cases.bp, "/cases"),
    (pipeline.bp, "/pipeline"),
    (campaigns.bp, "/campaigns"),
    (settings_page.bp, "/settings"),
)
for _page, _prefix in PAGES:
    bp.register_blueprint(_page, url_prefix=_prefix)


def init_app(app: Flask, settings: Settings) -> None:
    """Serve the console from ``app``: its session cookie, its pages, ``/`` leading to it."""
    sessions.configure(app, settings)
    app.register_blueprint(bp)
    app.register_blueprint(root)
    check_console_routes(app)
