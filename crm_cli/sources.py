"""``crm sources``: who may send webhooks."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from crm_cli.session import operator, transaction
from crm_core.admin import sources as admin
from crm_core.config import MissingSettingError, get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import services
from crm_core.payloads.kinds import ProviderName
from crm_core.providers import PROVIDERS, Provider
from crm_core.providers.custom_spec import load_mapping
from crm_core.providers.typeform_mapping import mapping_from_pairs


@click.group()
def sources() -> None:
    """Sending systems and their signing secrets."""


@sources.command("add")
@click.argument("name")
@click.option("--description", help="What this source is.")
@click.option("--rate-limit", type=click.IntRange(min=0), help="Requests per minute (0: none).")
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    default=ProviderName.STANDARD.value,
    show_default=True,
    help="Who sends the requests, and so how they are verified and read.",
)
@click.option("--secret", help="The signing secret the provider issued (Shopify, Stripe, …).")
@click.option("--secret-stdin", is_flag=True, help="Read that secret from standard input.")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="A web form's site allowed to post it (https://example.com); repeatable.",
)
@click.option("--redirect", help="Where a web form sends the browser after a post.")
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False),
    help="custom: the TOML file describing the sender (docs/providers/custom.md).",
)
@click.option(
    "--map",
    "refs",
    multiple=True,
    metavar="LEAD_FIELD=REF",
    help="typeform: fill a lead field from the question with this ref (or this hidden field).",
)
@click.option(
    "--public-key",
    help="sendgrid: the Verification Key of Signed Event Webhook Requests (base64).",
)
def add_source(
    name: str,
    description: str | None,
    rate_limit: int | None,
    provider: str,
    secret: str | None,
    secret_stdin: bool,
    origins: tuple[str, ...],
    redirect: str | None,
    mapping_file: str | None,
    refs: tuple[str, ...],
    public_key: str | None,
) -> None:
    """Create a source. The last line is what to paste: the URL for a provider's source
    (with its credentials for Freshdesk, the form's action for a web form), the signing
    secret for a standard one."""
    if not 1 <= len(name) <= 80 or "/" in name:
        raise click.ClickException("a source name is 1-80 characters without '/'")
    chosen = PROVIDERS[provider]
    secret = _given_secret(secret, secret_stdin)
    mapping = _given_mapping(mapping_file, refs)
    base_url = None if chosen.name == ProviderName.STANDARD else _base_url()
    with transaction() as session:
        try:
            source, secret = admin.create_source(
                session,
                actor=operator(),
                name=name,
                description=description,
                rate_limit_per_minute=rate_limit,
                provider=provider,
                secret=secret,
                allowed_origins=origins,
                redirect_url=redirect,
                mapping=mapping,
                public_key=public_key,
            )
        except services.SourceExists as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInput as exc:
            raise click.ClickException(_cli_message(exc, **ADD_OPTIONS)) from None
        origins, redirect = tuple(source.allowed_origins or []), source.redirect_url
    if base_url is None:
        click.echo(f"source {name!r} created; sign its requests with this secret:")
        click.echo(secret)
        return
    click.echo(f"source {name!r} created for {chosen.label}.")
    if chosen.name == ProviderName.FORM:
        _echo_form_settings(list(origins), redirect)
    _echo_steps(chosen.configured(mapping), base_url, name, secret)


@sources.command("set-mapping")
@click.argument("name")
@click.argument("mapping_file", required=False, type=click.Path(dir_okay=False))
@click.option("--map", "refs", multiple=True, metavar="LEAD_FIELD=REF", help="typeform: see add.")
def set_mapping(name: str, mapping_file: str | None, refs: tuple[str, ...]) -> None:
    """Read a source's requests with a new mapping: a custom source's MAPPING_FILE, a Typeform
    source's --map refs (none: only the defaults). Replay its invalid events afterwards."""
    mapping = _given_mapping(mapping_file, refs)
    with transaction() as session:
        try:
            admin.set_source_mapping(session, actor=operator(), name=name, mapping=mapping)
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInput as exc:
            raise click.ClickException(_cli_message(exc)) from None
    click.echo(f"source {name!r} reads its requests with the new mapping from now on;")
    click.echo(f"replay what it could not read: crm events list --source {name} --status invalid")


@sources.command("set-key")
@click.argument("name")
@click.argument("public_key")
def set_key(name: str, public_key: str) -> None:
    """Verify the source's signed requests with PUBLIC_KEY from now on (SendGrid: the
    Verification Key of Signed Event Webhook Requests)."""
    with transaction() as session:
        try:
            admin.set_source_public_key(session, actor=operator(), name=name, public_key=public_key)
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInput as exc:
            # The key is this command's argument, not an option as for ``sources add``.
            raise click.ClickException(_cli_message(exc, public_key="PUBLIC_KEY")) from None
    click.echo(f"source {name!r} verifies its signed requests with the new key from now on")


@sources.command("show")
@click.argument("name")
def show_source(name: str) -> None:
    """A source's provider, state, and the steps to set it up in the provider again."""
    with transaction() as session:
        try:
            source = services.get_source(session, name=name)
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
        provider = PROVIDERS[source.provider].configured(source.mapping)
        state = "enabled" if source.enabled else "disabled"
        # Only generated credentials are shown again; a provider's own secret is the provider's.
        current = services.active_secrets(session, source_id=source.id)
        secret = current[0] if current and not provider.takes_secret else None
        origins, redirect = list(source.allowed_origins or []), source.redirect_url
        has_key = source.public_key is not None
    click.echo(f"source {name!r}: {provider.label} ({provider.name.value}), {state}")
    if provider.takes_public_key:
        click.echo(
            "verification key: set"
            if has_key
            else f"verification key: none; its signed requests are refused until: crm sources"
            f" set-key {name} <key>"
        )
    if provider.name == ProviderName.FORM:
        _echo_form_settings(origins, redirect)
    if provider.name == ProviderName.STANDARD:
        secret = None  # a whsec_ secret is shown once, when it is made
        base_url = _base_url(required=False)
    else:
        base_url = _base_url()
    _echo_steps(provider, base_url, name, secret)


def _echo_form_settings(origins: list[str], redirect: str | None) -> None:
    if origins:
        click.echo("posts accepted from: " + ", ".join(origins))
    else:
        click.echo(
            "warning: no --origin given: pages of any site may post this form"
            " (the honeypot and the rate limits still apply)"
        )
    click.echo(f"after a post, browsers go to: {redirect or 'a thank-you page of ours'}")


def _echo_steps(provider: Provider, base_url: str, name: str, secret: str | None) -> None:
    for line in provider.setup_steps(provider.endpoint(base_url, name, secret)):
        click.echo(line)


def _given_secret(secret: str | None, from_stdin: bool) -> str | None:
    if secret is not None and from_stdin:
        raise click.ClickException("give the secret with --secret or --secret-stdin, not both")
    if from_stdin:
        secret = sys.stdin.readline().strip()
    return secret


def _given_mapping(mapping_file: str | None, refs: tuple[str, ...]) -> dict[str, Any] | None:
    """A custom source's mapping file, checked, or Typeform's refs; a one-line error otherwise."""
    if mapping_file is not None and refs:
        raise click.ClickException("give a mapping file or --map refs, not both")
    if refs:
        try:
            return mapping_from_pairs(list(refs))
        except InvalidInput as exc:
            raise click.ClickException(_cli_message(exc)) from None
    if mapping_file is None:
        return None
    try:
        text = Path(mapping_file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{mapping_file}: {exc.strerror or exc}") from None
    try:
        return load_mapping(text).model_dump(mode="json")
    except InvalidInput as exc:
        detail = "; ".join(f"{e.field}: {e.msg}" if e.loc else e.msg for e in exc.errors)
        raise click.ClickException(f"{mapping_file}: {' '.join(detail.split())}") from None


def _base_url(*, required: bool = True) -> str:
    """Where providers reach this platform: CRM_PUBLIC_URL (or the embedded default)."""
    try:
        return get_settings().resolved_public_url()
    except MissingSettingError:
        if not required:
            return "<CRM_PUBLIC_URL>"
        raise click.ClickException(
            "set CRM_PUBLIC_URL: it is the address the provider posts to"
        ) from None


# The fields of a source that ``sources add`` takes under another name.
ADD_OPTIONS = {
    "public_key": "--public-key",
    "allowed_origins": "--origin",
    "redirect_url": "--redirect",
}


def _cli_message(exc: InvalidInput, **arguments: str) -> str:
    """One line naming each refused field as the command takes it: ``--option`` by default,
    or the argument's name given in ``arguments`` (``public_key="PUBLIC_KEY"``)."""
    named = ((arguments.get(e.field, f"--{e.field}"), e.msg) for e in exc.errors)
    return " ".join("; ".join(f"{name}: {msg}" for name, msg in named).split())


@sources.command("list")
def list_sources() -> None:
    """Every source, whether it is enabled, its rate limit and its provider."""
    with transaction() as session:
        rows = [
            (s.name, "enabled" if s.enabled else "disabled", s.rate_limit_per_minute, s.provider)
            for s in services.list_sources(session)
        ]
    if not rows:
        click.echo("no sources")
    for name, state, limit, provider in rows:
        click.echo(f"{name}\t{state}\t{'default' if limit is None else limit}/min\t{provider}")


@sources.command("rotate")
@click.argument("name")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    help="How long the old secret keeps verifying (default: CRM_ROTATION_GRACE_HOURS).",
)
@click.option("--secret", help="The provider's new signing secret (Shopify, Stripe, …).")
@click.option("--secret-stdin", is_flag=True, help="Read that secret from standard input.")
def rotate(name: str, grace_hours: float | None, secret: str | None, secret_stdin: bool) -> None:
    """Take a new secret; the old one verifies for a while. The last line is the new
    secret for a standard source, the URL to paste for a provider's."""
    hours = get_settings().rotation_grace_hours if grace_hours is None else grace_hours
    secret = _given_secret(secret, secret_stdin)
    with transaction() as session:
        try:
            secret = admin.rotate_secret(
                session,
                actor=operator(),
                name=name,
                grace=dt.timedelta(hours=hours),
                secret=secret,
            )
            provider = PROVIDERS[services.get_source(session, name=name).provider]
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInput as exc:
            raise click.ClickException(_cli_message(exc)) from None
    click.echo(f"new secret for {name!r}; the previous one verifies for {hours:g} more hours:")
    if provider.name == ProviderName.STANDARD:
        click.echo(secret)
    else:
        shown = None if provider.takes_secret else secret
        click.echo(provider.endpoint(_base_url(required=False), name, shown))


@sources.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Refuse the source's requests (404) until it is enabled again."""
    _set_enabled(name, enabled=False)


@sources.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Accept the source's requests again."""
    _set_enabled(name, enabled=True)


def _set_enabled(name: str, *, enabled: bool) -> None:
    with transaction() as session:
        try:
            admin.set_source_enabled(session, actor=operator(), name=name, enabled=enabled)
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"source {name!r} {'enabled' if enabled else 'disabled'}")
