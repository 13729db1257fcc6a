"""POST /forms/<source>: a website's plain HTML form, as browsers and scripts post it."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import Engine, select
from werkzeug.test import TestResponse

from crm_core import models as m
from crm_core.config import Settings
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from webhooks.app import create_app
from webhooks.publisher import BackgroundPublisher

SITE = "https://www.example.com"
THANKS = "https://www.example.com/thanks"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORM = {"email": "ada@example.com", "first_name": "Ada", "consent": "yes", "_gotcha": ""}
BOUNDARY = "----form7MA4YWxkTrZu0gW"


@pytest.fixture
def app(database_url: str, committed_db: Engine) -> Flask:
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        secret_key="forms test secret key",
        form_posts_per_address_per_minute=5,
        max_form_bytes=4096,
    )
    return create_app(settings)


@pytest.fixture
def published(app: Flask) -> list[int]:
    ids: list[int] = []
    app.extensions["crm_publisher"] = BackgroundPublisher(ids.extend)
    return ids


def form_source(app: Flask, name: str = "website", **options: object) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        services.create_source(session, name=name, provider="form", **options)  # type: ignore[arg-type]


def events(app: Flask) -> list[InboxEvent]:
    with app.extensions["crm"].sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def post(
    app: Flask,
    fields: dict[str, str] | None = None,
    *,
    source: str = "website",
    origin: str | None = SITE,
    accept: str = BROWSER,
    body: bytes | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    address: str = "203.0.113.7",
) -> TestResponse:
    headers = {"Accept": accept, "Content-Type": content_type}
    if origin is not None:
        headers["Origin"] = origin
    data = body if body is not None else urlencode(fields or FORM).encode()
    return app.test_client().post(
        f"/forms/{source}", data=data, headers=headers, environ_base={"REMOTE_ADDR": address}
    )


def multipart(fields: dict[str, str]) -> bytes:
    parts = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    )
    return f"{parts}--{BOUNDARY}--\r\n".encode()


def test_a_urlencoded_post_is_stored_verbatim_and_redirected(
    app: Flask, published: list[int]
) -> None:
    form_source(app, allowed_origins=[SITE], redirect_url=THANKS)
    response = post(app)
    assert response.status_code == 303
    assert response.headers["Location"] == THANKS
    [event] = events(app)
    assert (event.body, event.topic, event.status) == (
        urlencode(FORM).encode(),
        "submission",
        EventStatus.RECEIVED,
    )
    assert event.headers["origin"] == SITE
    assert published == [event.id]


def test_a_multipart_post_goes_to_our_thank_you_page(app: Flask, published: list[int]) -> None:
    form_source(app, allowed_origins=[SITE])
    body = multipart(FORM)
    response = post(app, body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/forms/website/thanks")
    [event] = events(app)
    assert (event.body, event.status) == (body, EventStatus.RECEIVED)
    page = app.test_client().get(response.headers["Location"])
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert b"Thank you" in page.data


def test_the_thank_you_page_escapes_what_it_shows(app: Flask) -> None:
    page = app.test_client().get("/forms/%3Cscript%3Ealert(1)%3C%5Cscript%3E/thanks")
    assert b"<script>" not in page.data
    assert b"&lt;script&gt;" in page.data


def test_a_script_asking_for_json_gets_the_event_id(app: Flask, published: list[int]) -> None:
    form_source(app, allowed_origins=[SITE])
    response = post(app, accept="application/json")
    assert response.status_code == 202
    [event] = events(app)
    assert response.json == {"event_id": event.id}
    assert response.headers["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize("origin", ["https://evil.example", "http://www.example.com", "null", None])
def test_another_origin_is_refused_and_nothing_stored(app: Flask, origin: str | None) -> None:
    form_source(app, allowed_origins=[SITE])
    response = post(app, origin=origin, accept="application/json")
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "/problems/origin-not-allowed"
    assert events(app) == []


def test_the_referer_stands_in_for_a_missing_origin(app: Flask, published: list[int]) -> None:
    form_source(app, allowed_origins=[SITE])
    response = app.test_client().post(
        "/forms/website",
        data=urlencode(FORM),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{SITE}/contact?ref=ad",
        },
    )
    assert response.status_code == 303
    assert len(events(app)) == 1


def test_a_source_without_origins_accepts_every_page(app: Flask, published: list[int]) -> None:
    form_source(app)
    assert post(app, origin="https://anywhere.example").status_code == 303
    assert post(app, {**FORM, "x": "1"}, origin=None).status_code == 303
    assert len(events(app)) == 2


def test_a_browser_refused_gets_a_plain_page(app: Flask) -> None:
    form_source(app, allowed_origins=[SITE])
    response = post(app, origin="https://evil.example")
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert b"its own site" in response.data


@pytest.mark.parametrize("accept", [BROWSER, "application/json"])
def test_a_filled_honeypot_is_answered_alike_and_creates_nothing(
    app: Flask, published: list[int], accept: str
) -> None:
    form_source(app, allowed_origins=[SITE], redirect_url=THANKS)
    real = post(app, accept=accept)
    bot = post(app, {**FORM, "email": "bot@example.com", "_gotcha": "buy now"}, accept=accept)
    assert bot.status_code == real.status_code
    assert bot.headers.get("Location") == real.headers.get("Location")
    assert bot.mimetype == real.mimetype
    if accept == "application/json":
        assert set(bot.json) == set(real.json) == {"event_id"}
    first, spam = events(app)
    assert (spam.status, spam.topic) == (EventStatus.IGNORED, "honeypot")
    assert published == [first.id]


def test_a_filled_honeypot_without_email_is_not_told_it_is_invalid(app: Flask) -> None:
    form_source(app)
    response = post(app, {"_gotcha": "x"})
    assert response.status_code == 303
    [spam] = events(app)
    assert spam.status == EventStatus.IGNORED


def test_one_address_posting_too_often_is_told_to_wait(app: Flask, published: list[int]) -> None:
    form_source(app)
    for n in range(5):
        assert post(app, {**FORM, "n": str(n)}).status_code == 303
    response = post(app, {**FORM, "n": "6"}, accept="application/json")
    assert response.status_code == 429
    assert response.json["type"] == "/problems/rate-limited"
    assert int(response.headers["Retry-After"]) >= 1
    # Another address still gets through.
    assert post(app, {**FORM, "n": "7"}, address="198.51.100.9").status_code == 303
    assert len(events(app)) == 6


def test_a_source_posted_too_often_is_told_to_wait(app: Flask, published: list[int]) -> None:
    form_source(app, rate_limit_per_minute=2)
    assert post(app, {**FORM, "n": "1"}, address="192.0.2.1").status_code == 303
    assert post(app, {**FORM, "n": "2"}, address="192.0.2.2").status_code == 303
    response = post(app, {**FORM, "n": "3"}, address="192.0.2.3")
    assert response.status_code == 429
    assert response.mimetype == "text/html"  # a browser gets a page
    assert "Retry-After" in response.headers
    assert len(events(app)) == 2


def test_a_form_without_email_or_phone_is_named_and_kept(app: Flask) -> None:
    form_source(app)
    response = post(app, {"first_name": "Nobody"}, accept="application/json")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "body"
    assert "email or phone" in response.json["errors"][0]["message"]
    [event] = events(app)
    assert event.status == EventStatus.INVALID


def test_a_browser_is_told_what_is_missing_on_a_page(app: Flask) -> None:
    form_source(app)
    response = post(app, {"first_name": "<b>Nobody</b>", "consent": "<i>"})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert b"<i>" not in response.data
    assert b"consent" in response.data


def test_a_body_too_large_is_refused(app: Flask) -> None:
    form_source(app)
    response = post(app, {**FORM, "message": "x" * 5000}, accept="application/json")
    assert response.status_code == 413
    assert events(app) == []


def test_a_json_body_is_the_wrong_media_type(app: Flask) -> None:
    form_source(app)
    response = post(
        app, body=b'{"email": "a@example.com"}', content_type="application/json", accept="*/*"
    )
    assert response.status_code == 415
    assert response.json["accepted"] == ["application/x-www-form-urlencoded", "multipart/form-data"]


def test_bytes_that_are_not_utf8_are_refused_not_a_500(app: Flask) -> None:
    form_source(app)
    response = post(app, body=b"email=\xff\xfe", accept="application/json")
    assert response.status_code == 422
    assert response.json["errors"][0]["type"] == "unicode_invalid"


def test_an_unknown_source_is_404(app: Flask) -> None:
    assert post(app, source="nowhere", accept="application/json").status_code == 404


def test_forms_and_signed_providers_keep_to_their_own_routes(app: Flask) -> None:
    form_source(app)
    with app.extensions["crm"].sessions.begin() as session:
        services.create_source(session, name="shop", provider="shopify", secret="shpss_x")
    client = app.test_client()
    webhook = client.post(
        "/webhooks/website", data=urlencode(FORM), content_type="application/x-www-form-urlencoded"
    )
    assert webhook.status_code == 404
    assert webhook.json["type"] == "/problems/wrong-endpoint"
    assert post(app, source="shop", accept="application/json").status_code == 404
    assert events(app) == []


def test_the_same_post_twice_is_one_event(app: Flask, published: list[int]) -> None:
    form_source(app)
    first = post(app, accept="application/json")
    again = post(app, accept="application/json")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json == again.json
    assert published == [first.json["event_id"]]


def test_an_unreachable_database_is_503_and_nothing_is_acknowledged() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=1",
        broker_url="memory://",
        ratelimit_url="memory://",
        secret_key="forms test secret key",
    )
    app = create_app(settings)
    response = post(app, accept="application/json")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert post(app).mimetype == "text/html"


def test_a_contact_is_not_created_at_intake(app: Flask, published: list[int]) -> None:
    form_source(app)
    post(app)
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(m.Contact)).first() is None


def test_a_form_is_read_at_intake_as_the_worker_will_read_it(app: Flask) -> None:
    """The inbox keeps 255 characters of Content-Type: a boundary past them is refused now,
    not acknowledged and then found unreadable."""
    form_source(app)
    padded = f"multipart/form-data; note={'x' * 260}; boundary={BOUNDARY}"
    response = post(app, body=multipart(FORM), content_type=padded, accept="application/json")
    assert response.status_code == 422
    [event] = events(app)
    assert event.status == EventStatus.INVALID
