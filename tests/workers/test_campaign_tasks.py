"""The campaign tasks in-process against the test database and a real SMTP server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.activities.models import Activity, ActivityType
from crm_core.campaigns import services
from crm_core.campaigns.models import CampaignSend, MarketingCampaign
from crm_core.config import MissingSettingError, Settings
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_session_factory
from crm_core.mail_transport.backends import InvalidMailUrlError
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.smtp_server import SmtpTestServer, smtp_server
from webhooks.app import create_app
from workers import db as worker_db
from workers import tasks

__all__ = ["smtp_server"]
SECRET = "campaign-e2e-secret"


@pytest.fixture
def settings(database_url: str, smtp_server: SmtpTestServer) -> Settings:
    return Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        secret_key=SECRET,
        public_url="https://crm.example.com",
        mail_url=smtp_server.url(),
        mail_from="Shop <news@shop.example>",
    )


@pytest.fixture
def use_settings() -> Iterator[Callable[[Settings], None]]:
    """Switch the tasks' settings for the rest of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda settings: stack.enter_context(worker_db.injected(settings=settings))


@pytest.fixture
def worker(
    committed_db: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[int]]:
    """Tasks bound to the test database and settings; the send_batch ids they published."""
    stack = contextlib.ExitStack()
    stack.enter_context(
        worker_db.injected(settings=settings, sessions=make_session_factory(committed_db))
    )
    published: list[int] = []

    def record(campaign_id: int, *, parallel: int, countdown: float | None = None) -> int:
        published.extend([campaign_id] * parallel)
        return parallel

    monkeypatch.setattr(tasks, "enqueue_send_batches", record)
    with stack:
        yield published


def _contacts(engine: Engine, count: int) -> list[int]:
    with make_session_factory(engine).begin() as session:
        customer = Customer(name="Many Co", name_key="many co", kind="company")
        session.add(customer)
        session.flush()
        contacts = [
            Contact(
                customer_id=customer.id,
                first_name=f"P{n}",
                email=f"p{n}@example.com",
                email_normalized=f"p{n}@example.com",
            )
            for n in range(count)
        ]
        session.add_all(contacts)
        session.flush()
        return [c.id for c in contacts]


def _campaign(engine: Engine, code: str = "news") -> int:
    with make_session_factory(engine).begin() as session:
        campaign = services.create_campaign(
            session,
            name="News",
            code=code,
            subject="News for {{ contact.first_name }}",
            text="Hi {{ contact.first_name }}. Leave: {{ unsubscribe_url }}",
        )
        services.send_now(session, campaign_id=campaign.id)
        return campaign.id


def _run_until_idle(published: list[int]) -> None:
    while published:
        tasks.send_batch(published.pop())


def _statuses(engine: Engine, campaign_id: int) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(CampaignSend.status, func.count())
            .where(CampaignSend.campaign_id == campaign_id)
            .group_by(CampaignSend.status)
        )
        return {status: count for status, count in rows}


def test_a_campaign_reaches_each_recipient_once_and_unsubscribe_works(
    committed_db: Engine,
    worker: list[int],
    smtp_server: SmtpTestServer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(tasks.celery_app.conf, "crm_campaign_batch_size", 7)
    _contacts(committed_db, 50)
    campaign_id = _campaign(committed_db)
    assert tasks.dispatch_campaigns() == 1
    _run_until_idle(worker)
    received = smtp_server.handler.received
    assert sorted(mail.rcpt_tos[0] for mail in received) == sorted(
        f"p{n}@example.com" for n in range(50)
    )
    message = received[0].message
    url = message["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://crm.example.com/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert url in message.get_body(("plain",)).get_content()
    # Batches of 7 over one connection each.
    assert smtp_server.handler.sessions == 8
    with Session(committed_db) as session:
        view = services.get_campaign_view(session, campaign_id=campaign_id)
        activities = session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.type == ActivityType.CAMPAIGN_SENT, Activity.campaign_id == campaign_id)
        )
    assert (view.status, view.stats["sent"], view.stats["targeted"], activities) == (
        "sent",
        50,
        50,
        50,
    )

    client = create_app(settings).test_client()
    assert client.post(url.removeprefix("https://crm.example.com")).status_code == 200

    # Re-dispatching, repeating send and running more batches send nothing more.
    assert tasks.dispatch_campaigns() == 0
    with make_session_factory(committed_db).begin() as session:
        assert services.send_now(session, campaign_id=campaign_id) is False
    tasks.send_batch(campaign_id)
    assert len(smtp_server.handler.received) == 50
    with Session(committed_db) as session:
        stats = services.get_campaign_view(session, campaign_id=campaign_id).stats
    assert (stats["unsubscribed"], stats["suppressed"]) == (1, 1)


def test_with_consent_required_only_contacts_who_granted_it_get_the_campaign(
    committed_db: Engine,
    worker: list[int],
    smtp_server: SmtpTestServer,
    settings: Settings,
    use_settings: Callable[[Settings], None],
) -> None:
    ids = _contacts(committed_db, 4)
    with make_session_factory(committed_db).begin() as session:
        session.execute(
            update(Contact).where(Contact.id.in_(ids[:2])).values(marketing_consent="granted")
        )
        session.execute(
            update(Contact).where(Contact.id == ids[2]).values(marketing_consent="denied")
        )
    use_settings(settings.model_copy(update={"campaigns_require_consent": True}))
    campaign_id = _campaign(committed_db)
    assert tasks.dispatch_campaigns() == 1
    _run_until_idle(worker)
    assert sorted(mail.rcpt_tos[0] for mail in smtp_server.handler.received) == [
        "p0@example.com",
        "p1@example.com",
    ]
    assert _statuses(committed_db, campaign_id) == {"sent": 2}


def test_a_crashed_batch_leaves_unknown_rows_that_are_never_resent(
    committed_db: Engine, worker: list[int], smtp_server: SmtpTestServer
) -> None:
    _contacts(committed_db, 10)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    worker.clear()

    def die(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("worker killed mid-batch")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.sending, "deliver_batch", die)
        patch.setitem(tasks.celery_app.conf, "crm_campaign_batch_size", 4)
        with pytest.raises(SystemExit):
            tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"sending": 4, "pending": 6}
    # Later: the dispatcher finds rows sending for longer than a task may run.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "_claim_timeout", lambda: 0)
        tasks.dispatch_campaigns()
    tasks.send_batch(campaign_id)
    tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"unknown": 4, "sent": 6}
    assert len(smtp_server.handler.received) == 6
    with Session(committed_db) as session:
        view = services.get_campaign_view(session, campaign_id=campaign_id)
    assert (view.status, view.stats["unknown"], view.stats["sent"]) == ("sent", 4, 6)


def test_a_refused_connection_sends_nothing_and_keeps_rows_pending(
    committed_db: Engine,
    worker: list[int],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    use_settings: Callable[[Settings], None],
) -> None:
    from tests.services import free_port

    dead = settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{free_port()}"})
    use_settings(dead)
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"pending": 3}
    with Session(committed_db) as session:
        attempts = session.scalars(select(CampaignSend.attempts)).all()
    assert attempts == [0, 0, 0]


def test_a_bounced_recipient_fails_and_the_rest_go_out(
    committed_db: Engine, worker: list[int], smtp_server: SmtpTestServer
) -> None:
    smtp_server.handler.refuse_rcpt["p1@example.com"] = "550 no such user"
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    _run_until_idle(worker)
    assert _statuses(committed_db, campaign_id) == {"sent": 2, "failed": 1}


def test_a_connection_lost_during_data_is_unknown_and_not_retried(
    committed_db: Engine, worker: list[int], smtp_server: SmtpTestServer
) -> None:
    # The server takes each message, then hangs up before answering: it may have gone out.
    smtp_server.handler.drop_after_data = True
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    _run_until_idle(worker)
    tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"unknown": 3}
    assert len(smtp_server.handler.received) == 3


def test_a_missing_public_url_refuses_the_batch_before_claiming_it(
    committed_db: Engine,
    worker: list[int],
    settings: Settings,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    use_settings: Callable[[Settings], None],
) -> None:
    unset = settings.model_copy(update={"public_url": ""})
    use_settings(unset)
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    with pytest.raises(MissingSettingError, match="CRM_PUBLIC_URL"):
        tasks.send_batch(campaign_id)
    # Nothing claimed, so nothing for the dispatcher to give up on as unknown.
    assert _statuses(committed_db, campaign_id) == {"pending": 3}
    assert smtp_server.handler.received == []
    use_settings(settings)
    tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"sent": 3}


def test_a_campaign_that_cannot_start_fails_alone_and_the_other_goes_out(
    committed_db: Engine,
    worker: list[int],
    smtp_server: SmtpTestServer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _contacts(committed_db, 3)
    bad_id = _campaign(committed_db, code="bad")
    # Stored before segments were checked: the duration overflows when subtracted from now.
    overflowing = {"all": [{"field": "last_activity_at", "op": "gt", "value": "P999999999D"}]}
    with make_session_factory(committed_db).begin() as session:
        session.execute(
            update(MarketingCampaign)
            .where(MarketingCampaign.id == bad_id)
            .values(segment=overflowing)
        )
    good_id = _campaign(committed_db, code="good")

    assert tasks.dispatch_campaigns() == 1
    _run_until_idle(worker)
    assert sorted(mail.rcpt_tos[0] for mail in smtp_server.handler.received) == [
        "p0@example.com", "p1@example.com", "p2@example.com",
    ]  # fmt: skip
    with Session(committed_db) as session:
        good = services.get_campaign_view(session, campaign_id=good_id)
        bad = services.get_campaign_view(session, campaign_id=bad_id)
    assert (good.status, good.stats["sent"]) == ("sent", 3)
    assert (bad.status, bad.stats["targeted"]) == ("failed", 0)
    assert bad.failure_reason is not None
    assert "segment.all.0.value: a duration must be at most 36525 days" in bad.failure_reason
    # The next tick leaves it failed and sends nothing more.
    assert tasks.dispatch_campaigns() == 0
    assert len(smtp_server.handler.received) == 3

    # The reason is shown where people look: the API and the command line.
    app = create_app(settings)
    with app.extensions["crm"].sessions.begin() as session:
        _, key = api_keys.create_api_key(
            session, actor=Actor.operator("test"), name="ops", scopes=["read"]
        )
    shown = app.test_client().get(
        f"/api/campaigns/{bad_id}", headers={"Authorization": f"Bearer {key}"}
    )
    assert (shown.json["status"], shown.json["failure_reason"]) == ("failed", bad.failure_reason)
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    output = CliRunner().invoke(cli, ["campaigns", "show", str(bad_id)]).output
    assert f"failed\t{bad.failure_reason}" in output


def _errors(engine: Engine, campaign_id: int) -> set[str | None]:
    with Session(engine) as session:
        query = select(CampaignSend.error).where(CampaignSend.campaign_id == campaign_id)
        return set(session.scalars(query))


def test_a_recursive_template_fails_its_sends_with_the_reason_never_unknown(
    committed_db: Engine, worker: list[int], smtp_server: SmtpTestServer
) -> None:
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    # Stored before templates were bounded (create refuses it now).
    with make_session_factory(committed_db).begin() as session:
        session.execute(
            update(MarketingCampaign)
            .where(MarketingCampaign.id == campaign_id)
            .values(text_template="{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
        )
    tasks.dispatch_campaigns()
    _run_until_idle(worker)
    assert _statuses(committed_db, campaign_id) == {"failed": 3}
    assert _errors(committed_db, campaign_id) == {
        "text: exceeds the bound on macro and recursive loop depth (20)"
    }
    assert smtp_server.handler.received == []


def test_a_mistyped_mail_url_claims_nothing(
    committed_db: Engine,
    worker: list[int],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    use_settings: Callable[[Settings], None],
) -> None:
    typo = settings.model_copy(update={"mail_url": "smtp//mail.example.com:25"})
    use_settings(typo)
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    with pytest.raises(InvalidMailUrlError, match="unknown mail URL scheme"):
        tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"pending": 3}


def test_a_failure_after_the_claim_gives_the_rows_back_then_fails_them_with_the_reason(
    committed_db: Engine,
    worker: list[int],
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _contacts(committed_db, 3)
    campaign_id = _campaign(committed_db)
    tasks.dispatch_campaigns()
    worker.clear()

    def unreadable(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the contacts could not be read")

    monkeypatch.setattr(tasks.sending, "prepare_batch", unreadable)
    tasks.send_batch(campaign_id)
    # Claimed, then given back: pending, one attempt counted, the reason kept.
    assert _statuses(committed_db, campaign_id) == {"pending": 3}
    assert _errors(committed_db, campaign_id) == {"RuntimeError: the contacts could not be read"}
    # Later, the dispatcher has nothing to call unknown.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "_claim_timeout", lambda: 0)
        tasks.dispatch_campaigns()
    assert _statuses(committed_db, campaign_id) == {"pending": 3}
    # After the attempt limit the rows fail, with the reason, and the campaign ends.
    tasks.send_batch(campaign_id)
    tasks.send_batch(campaign_id)
    assert _statuses(committed_db, campaign_id) == {"failed": 3}
    tasks.send_batch(campaign_id)
    with Session(committed_db) as session:
        assert services.get_campaign_view(session, campaign_id=campaign_id).status == "sent"
    assert smtp_server.handler.received == []
