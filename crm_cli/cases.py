"""``crm cases``: act on support cases from the command line."""

from __future__ import annotations

from typing import TextIO

import click

from crm_cli.session import operator
from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.errors import InvalidInput
from crm_core.mail import CaseTokens
from crm_core.mail_transport.backends import backend_from_url
from crm_core.support.replies import CaseNotFound, send_case_reply


@click.group()
def cases() -> None:
    """Support cases."""


@cases.command("reply")
@click.argument("case_id", type=int)
@click.option("--body", required=True, help="The text of the reply.")
@click.option("--html", "html_file", type=click.File("r"), help="An HTML alternative, from a file.")
def reply(case_id: int, body: str, html_file: TextIO | None) -> None:
    """Send a reply from case CASE_ID, threaded onto its e-mails, and record it."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url())
    backend = backend_from_url(
        settings.resolved_mail_url(), rate_per_second=settings.mail_rate_per_second
    )
    try:
        outcome = send_case_reply(
            make_session_factory(engine),
            backend,
            actor=operator(),
            case_id=case_id,
            body=body,
            html=html_file.read() if html_file else None,
            sender=settings.mail_from,
            case_tokens=CaseTokens.from_secret(settings.resolved_secret_key()),
        )
    except CaseNotFound:
        raise click.ClickException(f"no case {case_id}") from None
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if outcome.delivery != "sent":
        raise click.ClickException(f"reply recorded but {outcome.delivery}: {outcome.error}")
    click.echo(f"sent <{outcome.message_id}> (activity {outcome.activity_id})")
