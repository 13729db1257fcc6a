"""The Cases pages: the inbox (mine and unassigned, the one due first on top, breach badges),
a case's thread (e-mail HTML sanitized, in a sandboxed frame), and the writes an agent does
there (reply threaded and sent once, an internal note never mailed, status, priority and
assignee), refused for a viewer."""

from __future__ import annotations

import datetime as dt
import html as html_text
import json
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.ingestion import single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.mail import CaseTokens
from crm_core.support.models import SupportCase
from tests.smtp_server import smtp_server
from tests.webhooks.conftest import Sender
from tests.webhooks.console.conftest import queries_for

__all__ = ["smtp_server"]

SignedIn = Callable[[str], tuple[FlaskClient, str]]
_FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def _case(
    app: Flask, sender: Sender, subject: str = "Help", email: str = "u@client.example"
) -> int:
    """A case opened by a help-desk ticket; its id."""
    ticket = {"external_id": f"T-{subject}", "subject": subject, "requester": {"email": email}}
    answer = sender.post("tickets", json.dumps(ticket).encode())
    assert answer.status_code == 202, answer.get_data(as_text=True)
    event_id = int(answer.json["event_id"])  # type: ignore[index]
    crm = app.extensions["crm"]
    with crm.sessions.begin() as session:
        single_event.run_event(
            session, event_id=event_id, policy=IngestPolicy.from_settings(crm.settings)
        )
    with crm.sessions() as session:
        return session.scalars(select(SupportCase.id).where(SupportCase.subject == subject)).one()


def _set(app: Flask, case_id: int, **values: object) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        session.execute(update(SupportCase).where(SupportCase.id == case_id).values(**values))


def _activities(app: Flask, case_id: int, kind: str) -> list[Activity]:
    with app.extensions["crm"].sessions() as session:
        query = select(Activity).where(Activity.support_case_id == case_id, Activity.type == kind)
        return list(session.scalars(query))


def test_the_inbox_shows_mine_and_unassigned_due_first_with_breach_badges(
    app: Flask, sender: Sender, signed_in: SignedIn, make_user: Callable[[str], str]
) -> None:
    client, _ = signed_in("agent")
    me = re.search(r'class="who">([^ ]+) ', client.get("/console/cases").get_data(as_text=True))
    assert me
    other = make_user("agent")
    now = dt.datetime.now(dt.UTC)
    late = _case(app, sender, "Late one")
    soon = _case(app, sender, "Soon one")
    theirs = _case(app, sender, "Their one")
    _set(app, late, first_response_due_at=now - dt.timedelta(hours=1), assignee=me.group(1))
    _set(app, soon, first_response_due_at=now + dt.timedelta(hours=1))
    _set(app, theirs, first_response_due_at=now - dt.timedelta(hours=2), assignee=other)
    html = client.get("/console/cases").get_data(as_text=True)
    assert html.index(f'id="case-{late}"') < html.index(f'id="case-{soon}"')
    assert f'id="case-{theirs}"' not in html
    late_row = html.split(f'id="case-{late}"')[1].split("</tr>")[0]
    soon_row = html.split(f'id="case-{soon}"')[1].split("</tr>")[0]
    assert "SLA breached" in late_row
    assert "SLA breached" not in soon_row
    assert "<td>me</td>" in late_row
    every = client.get("/console/cases?show=open").get_data(as_text=True)
    assert f'id="case-{theirs}"' in every
    unassigned = client.get("/console/cases?show=unassigned").get_data(as_text=True)
    assert f'id="case-{late}"' not in unassigned
    assert f'id="case-{soon}"' in unassigned
    # The inbox costs the same few statements however many cases it lists.
    few = queries_for(app, client, "/console/cases?show=open")
    for n in range(5):
        _case(app, sender, f"More {n}", email=f"more{n}@client.example")
    assert queries_for(app, client, "/console/cases?show=open") == few


def test_a_case_page_shows_inbound_html_sanitized_in_a_sandboxed_frame(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    case_id = _case(app, sender)
    with app.extensions["crm"].sessions.begin() as session:
        found = session.get(SupportCase, case_id)
        assert found is not None
        session.add(
            Activity(
                type=ActivityType.EMAIL_RECEIVED,
                direction=Direction.INBOUND,
                summary="It broke",
                details={
                    "text": "It broke again",
                    "html": '<p onclick="steal()">It <b>broke</b></p><script>steal()</script>'
                    '<img src="https://tracker.example/p.gif">',
                },
                customer_id=found.customer_id,
                support_case_id=case_id,
            )
        )
    client, _ = signed_in("viewer")
    page = client.get(f"/console/cases/{case_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    frame = re.search(r'<iframe class="mail" sandbox="" [^>]*srcdoc="([^"]*)"', html)
    assert frame, "no sandboxed frame"
    shown = html_text.unescape(frame.group(1))
    assert "<b>broke</b>" in shown
    assert "script" not in shown
    assert "onclick" not in shown
    assert "steal()" not in html
    assert "It broke again" in html
    # A viewer sees no write button.
    assert "Send reply" not in html
    assert "Add note" not in html
    assert ">Save<" not in html
    assert client.get("/console/cases/999999").status_code == 404


def test_an_agent_replies_threaded_once_and_a_second_submit_sends_nothing(
    app: Flask, sender: Sender, signed_in: SignedIn, smtp_server
) -> None:
    crm = app.extensions["crm"]
    crm.settings.mail_url = smtp_server.url()
    case_id = _case(app, sender, "Printer")
    client, token = signed_in("agent")
    page = client.get(f"/console/cases/{case_id}").get_data(as_text=True)
    key = _FORM_KEY.search(page)
    assert key
    form = {"message": "Turn it off and on.", "form_key": key.group(1), "csrf_token": token}
    first = client.post(f"/console/cases/{case_id}/reply", data=form)
    assert first.status_code == 303
    again = client.post(f"/console/cases/{case_id}/reply", data=form, follow_redirects=True)
    assert "already sent" in again.get_data(as_text=True)
    [mail] = smtp_server.handler.received
    assert mail.rcpt_tos == ["u@client.example"]
    tokens = CaseTokens.from_secret(crm.settings.resolved_secret_key())
    assert mail.message["Subject"] == f"Re: Printer {tokens.token(case_id)}"
    assert "Turn it off and on." in mail.message.get_body(("plain",)).get_content()
    [sent] = _activities(app, case_id, ActivityType.EMAIL_SENT)
    assert sent.details["delivery"] == "sent"
    shown = client.get(f"/console/cases/{case_id}").get_data(as_text=True)
    assert "reply sent" in shown
    assert "Turn it off and on." in shown
    # A blank reply is refused beside its field, with what was typed kept.
    key = _FORM_KEY.search(shown)
    assert key
    blank = {"message": "   ", "form_key": key.group(1), "csrf_token": token}
    refused = client.post(f"/console/cases/{case_id}/reply", data=blank)
    assert refused.status_code == 422
    assert 'id="f-message-error">a reply needs a body' in refused.get_data(as_text=True)
    assert len(smtp_server.handler.received) == 1


def test_a_note_is_on_the_case_and_never_mailed(
    app: Flask, sender: Sender, signed_in: SignedIn, smtp_server
) -> None:
    app.extensions["crm"].settings.mail_url = smtp_server.url()
    case_id = _case(app, sender)
    client, token = signed_in("agent")
    added = client.post(
        f"/console/cases/{case_id}/notes",
        data={"summary": "Customer is on the old plan", "details": "", "csrf_token": token},
    )
    assert added.status_code == 303
    [note] = _activities(app, case_id, ActivityType.NOTE)
    assert note.summary == "Customer is on the old plan"
    assert smtp_server.handler.received == []
    empty = client.post(
        f"/console/cases/{case_id}/notes", data={"summary": "", "csrf_token": token}
    )
    assert empty.status_code == 422
    assert 'id="f-summary-error"' in empty.get_data(as_text=True)


def test_status_priority_and_assignee_change_along_the_allowed_transitions(
    app: Flask, sender: Sender, signed_in: SignedIn, make_user: Callable[[str], str]
) -> None:
    case_id = _case(app, sender)
    client, token = signed_in("agent")
    colleague = make_user("agent")
    viewer = make_user("viewer")
    before = client.get(f"/console/cases/{case_id}")
    assert f'<option value="{colleague}"' in before.get_data(as_text=True)
    form = {"status": "pending", "priority": "urgent", "assignee": colleague, "csrf_token": token}
    assert client.post(f"/console/cases/{case_id}", data=form).status_code == 303
    with app.extensions["crm"].sessions() as session:
        found = session.get(SupportCase, case_id)
        assert found is not None
        assert (found.status, found.priority, found.assignee) == ("pending", "urgent", colleague)
        opened = found.opened_at or found.created_at
        assert found.first_response_due_at is not None
        urgent_due = found.first_response_due_at - opened
    # Closed cases can only be reopened: a jump elsewhere is refused beside the field.
    _set(app, case_id, status="closed")
    bad = {"status": "pending", "priority": "urgent", "assignee": colleague, "csrf_token": token}
    refused = client.post(f"/console/cases/{case_id}", data=bad)
    assert refused.status_code == 422
    assert "cannot become pending" in refused.get_data(as_text=True).split('id="f-status-error"')[1]
    not_an_agent = {"status": "closed", "priority": "urgent", "assignee": viewer,
                    "csrf_token": token}  # fmt: skip
    refused = client.post(f"/console/cases/{case_id}", data=not_an_agent)
    assert refused.status_code == 422
    assert 'id="f-assignee-error">must be an active agent' in refused.get_data(as_text=True)
    low = {"status": "closed", "priority": "low", "assignee": "", "csrf_token": token}
    assert client.post(f"/console/cases/{case_id}", data=low).status_code == 303
    with app.extensions["crm"].sessions() as session:
        found = session.get(SupportCase, case_id)
        assert found is not None
        assert found.assignee is None
        assert found.priority == "low"
        if found.first_responded_at is None and found.first_response_due_at is not None:
            assert found.first_response_due_at - opened > urgent_due  # the SLA followed


def test_a_viewers_forged_writes_are_refused(
    app: Flask, sender: Sender, signed_in: SignedIn, smtp_server
) -> None:
    app.extensions["crm"].settings.mail_url = smtp_server.url()
    case_id = _case(app, sender)
    client, token = signed_in("viewer")
    writes = {
        f"/console/cases/{case_id}/reply": {"message": "hi", "form_key": "k"},
        f"/console/cases/{case_id}/notes": {"summary": "hi"},
        f"/console/cases/{case_id}": {"status": "closed", "priority": "low", "assignee": ""},
    }
    for path, data in writes.items():
        answer = client.post(path, data={**data, "csrf_token": token})
        assert answer.status_code == 403, path
    assert smtp_server.handler.received == []
    with app.extensions["crm"].sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.support_case_id == case_id, Activity.type == ActivityType.NOTE)
        )
        assert count == 0
        found = session.get(SupportCase, case_id)
        assert found is not None
        assert found.status != "closed"
