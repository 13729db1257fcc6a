"""crm people export|erase and crm events prune: one-line answers, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from crm_cli.main import cli
from crm_core.activities.models import Activity, ActivityType
from crm_core.attachments.models import StoredAttachment
from crm_core.blobs import blob_key
from crm_core.blobs.filesystem import FileBlobStore
from crm_core.config import get_settings
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_session_factory
from crm_core.ingestion.models import EventEntity, EventStatus, InboxEvent, Source
from crm_core.people.models import AuditEntry

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)


@pytest.fixture
def runner(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "cli test secret key")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def person(committed_db: Engine) -> dict[str, int]:
    """A person customer with one contact, a lead event about them and an older one."""
    with make_session_factory(committed_db).begin() as session:
        source = Source(name="site")
        customer = Customer(kind="person", name="Ottoline Brackenbury", name_key="ottoline")
        session.add_all([source, customer])
        session.flush()
        contact = Contact(
            customer_id=customer.id,
            is_primary=True,
            first_name="Ottoline",
            last_name="Brackenbury",
            email="Otto@Example.org",
            email_normalized="otto@example.org",
        )
        session.add(contact)
        session.flush()
        events = [
            InboxEvent(
                source_id=source.id,
                kind="leads",
                webhook_id=f"w{n}",
                content_type="application/json",
                headers={},
                body=b'{"email": "OTTO@example.org", "first_name": "Ottoline"}',
                status=EventStatus.PROCESSED,
                received_at=OLD if n else dt.datetime.now(dt.UTC),
            )
            for n in range(2)
        ]
        session.add_all(events)
        session.flush()
        session.add(EventEntity(event_id=events[0].id, entity_type="contact", entity_id=contact.id))
        return {"contact": contact.id, "new": events[0].id, "old": events[1].id}


def test_export_then_erase_by_address(
    runner: CliRunner, person: dict[str, int], committed_db: Engine
) -> None:
    exported = runner.invoke(cli, ["people", "export", "OTTO@example.org"])
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.output)
    assert document["contacts"][0]["email_normalized"] == "otto@example.org"
    assert len(document["inbox_events"]) == 2  # linked, and found by the address
    refused = runner.invoke(cli, ["people", "erase", "otto@example.org"], input="n\n")
    assert refused.exit_code == 1
    erased = runner.invoke(cli, ["people", "erase", "otto@example.org", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert erased.output.splitlines()[-1] == f"contact {person['contact']} erased"
    assert "inbox_events\t2" in erased.output
    again = runner.invoke(cli, ["people", "erase", "--contact", str(person["contact"]), "--yes"])
    assert again.exit_code == 0
    assert again.output.startswith(f"contact {person['contact']} was already erased on ")
    gone = runner.invoke(cli, ["people", "erase", "otto@example.org", "--yes"])
    assert (gone.exit_code, gone.output) == (
        1,
        "Error: no contact has the address otto@example.org\n",
    )
    with make_session_factory(committed_db)() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "erase")).all()
        assert entry.actor.startswith("operator:")
        assert "otto" not in json.dumps(entry.changes).lower()
    shown = runner.invoke(cli, ["events", "show", str(person["new"]), "--body"])
    assert shown.exit_code == 1
    assert "was removed on" in shown.output
    assert "by the erasure of a person's data" in shown.output


def test_prune_dry_run_then_prune_and_replay_refused(
    runner: CliRunner, person: dict[str, int]
) -> None:
    dry = runner.invoke(cli, ["events", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would drop the body of 1 event(s) received before ")
    pruned = runner.invoke(cli, ["events", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert pruned.output.startswith("dropped the body of 1 event(s)")
    assert runner.invoke(cli, ["events", "prune", "--dry-run"]).output.startswith(
        "would drop the body of 0 event(s)"
    )
    shown = runner.invoke(cli, ["events", "show", str(person["old"])])
    assert json.loads(shown.output)["body_removed_by"] == "retention"
    replay = runner.invoke(cli, ["events", "replay", str(person["old"])])
    assert replay.exit_code == 1
    assert replay.output.startswith(f"Error: event {person['old']} cannot be replayed: its body")
    kept = runner.invoke(cli, ["events", "show", str(person["new"]), "--body"])
    assert json.loads(kept.output)["body"].startswith('{"email"')


def test_people_commands_need_exactly_one_person(runner: CliRunner) -> None:
    both = runner.invoke(cli, ["people", "export", "a@b.example", "--contact", "3"])
    assert both.exit_code == 2
    assert "give either an EMAIL or --contact ID" in both.output
    none = runner.invoke(cli, ["people", "erase", "--yes"])
    assert none.exit_code == 2
    missing = runner.invoke(cli, ["people", "export", "--contact", "99999"])
    assert (missing.exit_code, missing.output) == (1, "Error: no contact 99999\n")


def test_erase_deletes_their_files_but_not_one_another_row_names(
    runner: CliRunner,
    person: dict[str, int],
    committed_db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_BLOB_URL", f"file://{tmp_path}")
    store = FileBlobStore(tmp_path)
    theirs, shared = b"CV of Ottoline Brackenbury" * 10, b"the price list" * 10
    with make_session_factory(committed_db).begin() as session:
        customer_id = session.get_one(Contact, person["contact"]).customer_id
        other = Customer(kind="company", name="Stranger Ltd", name_key="stranger ltd")
        session.add(other)
        session.flush()
        for customer, contact_id, files in (
            (customer_id, person["contact"], [theirs, shared]),
            (other.id, None, [shared]),
        ):
            activity = Activity(
                type=ActivityType.EMAIL_RECEIVED,
                customer_id=customer,
                contact_id=contact_id,
                summary="files",
                details={},
            )
            session.add(activity)
            session.flush()
            for n, content in enumerate(files):
                key = store.put(content)
                session.add(
                    StoredAttachment(
                        activity_id=activity.id,
                        filename=f"f{n}.pdf",
                        content_type="application/pdf",
                        size=len(content),
                        sha256=key,
                    )
                )
    erased = runner.invoke(cli, ["people", "erase", "otto@example.org", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "attachments\t2" in erased.output
    assert "attachment_blobs\t1" in erased.output
    assert sorted(store.keys()) == [blob_key(shared)]
