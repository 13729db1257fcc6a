"""Settings, read from ``CRM_*`` environment variables (twelve-factor).

Every setting has a default that works on a fresh machine with no services:
a SQLite database and an embedded SQLite-backed broker under ``./var/``.
Point ``CRM_DATABASE_URL`` at PostgreSQL and ``CRM_BROKER_URL`` at Redis (or
RabbitMQ) to run on real services; no code changes.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
ENCRYPTION_KEY_FILE = "encryption_key"


DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


class MissingSettingError(RuntimeError):
    """A setting that a real database (production) requires is not set."""


class InvalidSettingError(MissingSettingError):
    """A setting is set but unusable (e.g. a malformed key); handled like a missing one."""


class MissingSecretKeyError(MissingSettingError):
    """``CRM_SECRET_KEY`` is required (a real database is configured) but not set."""


class Settings(BaseSettings):
    """All configuration of the platform.

    Each field's ``description`` is its documentation: docs/configuration.md is
    generated from them (``crm config-docs --write-into docs/configuration.md``).
    """

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    var_dir: Path = Field(
        default=DEFAULT_VAR_DIR,
        description="Where the embedded defaults keep their files (database, broker, beat state).",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the record, e.g. postgresql+psycopg://user:pass@host:5432/crm."
            " Default: SQLite file var/crm.sqlite3."
        ),
    )
    broker_url: str = Field(
        default="",
        description=(
            "Celery broker URL, e.g. redis://host:6379/0 (or amqp://… for RabbitMQ)."
            " Default: embedded SQLite broker var/broker.sqlite3."
        ),
    )
    broker_key_prefix: str = Field(
        default="",
        description="Prefix of every broker key on Redis, so environments can share one server.",
    )
    public_url: str = Field(
        default="",
        description=(
            "Base URL at which this platform is reachable by people and senders; unsubscribe"
            " links in campaign mail are built on it. Required with CRM_DATABASE_URL: until it"
            " is set, campaign batches are refused before any send is claimed and a preview"
            f" answers 503 naming the setting. Else {DEFAULT_PUBLIC_URL}, and `crm dev` sets"
            " it to the address it serves."
        ),
    )
    default_region: str = Field(
        default="US",
        pattern=r"^[A-Za-z]{2}$",
        description="Region (ISO 3166 alpha-2) a phone number without country code is read in,"
        " when the lead names no country.",
    )
    extra_freemail_domains: str = Field(
        default="",
        description=(
            "Comma-separated domains to treat as free-mail, besides the shipped lists"
            " (never matched as companies)."
        ),
    )
    db_pool_size: int = Field(default=5, ge=1, description="Database connections kept per process.")
    db_pre_ping: bool = Field(
        default=False,
        description=(
            "Test each pooled connection with a round trip before use. Off: a connection the "
            "server dropped fails one request (503, the sender retries) or one task attempt "
            "(retried), and the pool is refreshed; on, every request pays the round trip."
        ),
    )
    publish_linger_ms: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description=(
            "How long the web layer's publisher waits after publishing before it publishes "
            "again; accepted events arriving meanwhile go out together (0: no wait)."
        ),
    )
    source_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "How long the intake may reuse a source's looked-up credentials (0: never): a"
            " revoked secret or disabled source is honoured at most this long, a newly rotated"
            " secret works at once."
        ),
    )
    auto_ack_enabled: bool = Field(
        default=False, description="Acknowledge each new case opened by e-mail with a reply."
    )
    auto_ack_subject: str = Field(
        default="Re: {{ case.subject }}",
        description=(
            "Jinja2 template of the acknowledgement's subject, with `case` and `contact`"
            " (the case token is added)."
        ),
    )
    auto_ack_text: str = Field(
        default=(
            "Hello{% if contact.first_name %} {{ contact.first_name }}{% endif %},\n\n"
            "we have received your request and opened case #{{ case.id }}. "
            "We will answer as soon as we can; please keep the case number in the subject "
            "when you write again.\n"
        ),
        description="Jinja2 template of the acknowledgement's text, with `case` and `contact`.",
    )
    auto_ack_per_sender_per_day: int = Field(
        default=3, ge=0, description="Most acknowledgements one address gets in 24 hours."
    )
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a pooled database connection."
    )
    readiness_timeout: float = Field(
        default=2.0, gt=0, description="Seconds /readyz waits for the database and broker."
    )
    heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="How often beat asks a worker to record a heartbeat."
    )
    task_time_limit_seconds: int = Field(
        default=300,
        ge=5,
        description="Longest a task may run; a claim older than this belongs to a dead worker.",
    )
    retry_backoff_max_seconds: int = Field(
        default=600, ge=1, description="Longest wait between two attempts at an event."
    )
    max_attempts: int = Field(default=8, ge=1, description="Attempts before an event is dead.")
    log_level: str = Field(default="INFO", description="Log level of web and worker processes.")
    log_format: Literal["", "json", "console"] = Field(
        default="",
        description=(
            "How every process writes its log lines: json (one object a line) or console"
            " (readable). Default: json with CRM_DATABASE_URL set, console on the embedded SQLite."
        ),
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "A port on which this process serves its Prometheus metrics without a key (the web"
            " process also serves them at /metrics to an admin key). Unset: no port."
        ),
    )
    sla_first_response_hours: dict[str, float] = Field(
        default={"urgent": 1, "high": 4, "normal": 24, "low": 72},
        description="Hours to the first response of a new case, by priority (JSON object).",
    )
    sla_resolution_hours: dict[str, float] = Field(
        default={"urgent": 8, "high": 24, "normal": 72, "low": 168},
        description=(
            "Hours from a case's opening to its resolution, by priority (JSON object);"
            " sets each case's resolution due time."
        ),
    )
    max_attachments: int = Field(
        default=20, ge=0, description="Attachments recorded per e-mail; the rest are counted."
    )
    max_attachment_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=0,
        description="Total decoded bytes of the attachments recorded per e-mail.",
    )
    blob_url: str = Field(
        default="",
        description=(
            "Where attachment bytes are kept, each once by its SHA-256: s3://bucket/prefix (an"
            " S3-compatible bucket, through boto3; credentials and region the standard AWS way)"
            " or file://DIR. Default: the folder var/blobs."
        ),
    )
    blob_s3_endpoint_url: str = Field(
        default="",
        description=(
            "Endpoint of the S3-compatible server of CRM_BLOB_URL (MinIO, Ceph, R2…), e.g."
            " https://minio.internal:9000. Default: boto3's own (AWS_ENDPOINT_URL, else AWS)."
        ),
    )
    max_mime_parts: int = Field(
        default=500,
        ge=1,
        description=(
            "MIME parts an e-mail may have (counted on its bytes before it is parsed);"
            " more is refused: 422 at the intake, invalid for IMAP mail."
        ),
    )
    max_mime_depth: int = Field(
        default=20,
        ge=1,
        description="Levels MIME parts may nest in an e-mail; deeper is refused like too many.",
    )
    bounce_transient_limit: int = Field(
        default=3,
        ge=1,
        description=(
            "Verified transient (4.x.x) delivery failures of one address, within"
            " CRM_BOUNCE_TRANSIENT_DAYS, that put it on the suppression list."
        ),
    )
    bounce_transient_days: int = Field(
        default=7, ge=1, le=365, description="The window, in days, transient failures count in."
    )
    imap_poll_seconds: float = Field(
        default=60.0, gt=0, description="How often beat polls every enabled IMAP mailbox."
    )
    imap_batch_size: int = Field(
        default=200, ge=1, description="Messages per IMAP FETCH round while polling a mailbox."
    )
    imap_max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1,
        description="Larger IMAP messages are skipped (left unread, flagged $CrmSkipped).",
    )
    imap_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Socket timeout of IMAP connections."
    )
    # NoDecode: the variable is a comma-separated list, not the JSON pydantic-settings expects.
    support_addresses: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Comma-separated addresses whose inbound mail opens a support case.",
    )

    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Signs unsubscribe links and other tokens. Required with CRM_DATABASE_URL; "
            "the embedded default keeps a generated one in var/secret_key."
        ),
    )
    encryption_keys: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Comma-separated Fernet keys, newest first, that secrets at rest (signing and"
            " subscription secrets, IMAP passwords) are encrypted under; the newest encrypts,"
            " all decrypt. Required with CRM_DATABASE_URL; the embedded default keeps a"
            " generated one in var/encryption_key. `crm secrets generate-key` makes one."
        ),
    )
    mail_url: str = Field(
        default="",
        description=(
            "Outbound mail: smtp://user:pass@host:port[?starttls=1], smtps://…, "
            "mailgun+https://api:KEY@api.mailgun.net/v3/DOMAIN, "
            "sendgrid+https://apikey:KEY@api.sendgrid.com, "
            "postmark+https://:SERVER_TOKEN@api.postmarkapp.com (each provider's own send API), "
            "https://… (the provider-neutral JSON API, for an adapter of your own), console:// "
            "or file://DIR. Default: file://var/outbox. A password is only sent over TLS "
            "(smtps:// or ?starttls=1) unless ?insecure=1."
        ),
    )
    mail_from: str = Field(
        default="CRM <crm@localhost>",
        description="The From of every message the platform sends; its domain names Message-IDs.",
    )
    mail_rate_per_second: float = Field(
        default=0.0, ge=0, description="Messages per second per sending process; 0 for no limit."
    )
    unsubscribe_max_age_days: int = Field(
        default=365, ge=1, description="Days an unsubscribe link in a sent message keeps working."
    )

    max_json_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest JSON body accepted (bytes), by a webhook or the API; larger is 413.",
    )
    idempotency_key_hours: float = Field(
        default=24.0,
        gt=0,
        description=(
            "How long the API keeps an Idempotency-Key's first answer to replay it; older keys"
            " are swept and may be used again."
        ),
    )
    max_email_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="Largest e-mail webhook body accepted (bytes)."
    )
    max_json_depth: int = Field(
        default=32, ge=2, description="Deepest nesting of arrays and objects in a JSON body."
    )
    signature_tolerance_seconds: int = Field(
        default=300, gt=0, description="How far a webhook-timestamp may be from now, either way."
    )
    rotation_grace_hours: float = Field(
        default=24.0, ge=0, description="How long a rotated-out signing secret keeps verifying."
    )
    rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        description=(
            "Requests per minute per source, unless the source has its own"
            " (`crm sources add --rate-limit`); 0: unlimited."
        ),
    )
    ratelimit_url: str = Field(
        default="",
        description="Rate-limit storage (limits URL). Default: the broker's Redis, else memory.",
    )
    ratelimit_prefix: str = Field(
        default="crm", description="Namespace of the rate-limit keys in shared storage."
    )
    auth_failures_per_window: int = Field(
        default=30,
        ge=0,
        description=(
            "Failed unauthenticated requests (unknown source, bad signature, bad API key) one"
            " client address may make per CRM_AUTH_FAILURE_WINDOW_SECONDS; after that it is"
            " answered 429 until the window ends. IPv6 addresses count per /64. 0: no limit."
        ),
    )
    form_posts_per_address_per_minute: int = Field(
        default=10,
        ge=0,
        description=(
            "Web form posts (`POST /forms/<source>`) one client address may make per minute,"
            " to all forms together; then 429. IPv6 addresses count per /64. 0: no limit."
        ),
    )
    max_form_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest web form body accepted (bytes); larger is 413. Files are not kept.",
    )
    campaigns_require_consent: bool = Field(
        default=False,
        description=(
            "Send campaigns only to contacts whose marketing consent is `granted`: turn it on"
            " where the law asks for opt-in (the EU's ePrivacy rules, say). Every campaign's"
            " recipients then leave out contacts whose consent is `denied`, `unknown` or never"
            " stated. Off, consent is not checked (segments may still filter on it)."
        ),
    )
    auth_failure_window_seconds: int = Field(
        default=300, gt=0, description="The window of CRM_AUTH_FAILURES_PER_WINDOW, in seconds."
    )
    trusted_proxy_hops: int = Field(
        default=0,
        ge=0,
        description=(
            "Reverse proxies in front of the web process that append to X-Forwarded-For; the"
            " client address is read that many hops back. 0: the peer's own address (no proxy)."
        ),
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins an account may have in a login window before it is refused.",
    )
    login_failures_per_address: int = Field(
        default=50,
        ge=1,
        description="Failed sign-ins one client address may have in a login window.",
    )
    login_window_seconds: int = Field(
        default=900,
        ge=1,
        description="The moving window failed sign-ins are counted in, in seconds.",
    )
    console_idle_minutes: int = Field(
        default=30,
        ge=1,
        description=(
            "A console session ends after this many minutes without a page or a click; the"
            " overview's live refresh does not count as one."
        ),
    )
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        description="A console session ends this many hours after sign-in, however active.",
    )
    sweep_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often beat runs the inbox sweeper."
    )
    sweep_grace_seconds: float = Field(
        default=5.0, ge=0, description="Age at which a received event not yet taken is republished."
    )
    sweep_republish_seconds: float = Field(
        default=120.0, gt=0, description="Wait before the sweeper republishes the same event again."
    )
    inbox_retention_days: int = Field(
        default=90,
        ge=0,
        description=(
            "Days a processed (or ignored) inbox event keeps its raw body; then the body is"
            " dropped and its metadata kept. Invalid, failed and dead events keep theirs until"
            " resolved. 0 keeps every body."
        ),
    )
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often beat runs the inbox retention task."
    )
    retention_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Inbox bodies the retention task drops per transaction.",
    )

    followup_rules: str = Field(
        default="",
        description="Path of the follow-up rules file (TOML); empty: the shipped defaults.",
    )
    followup_eval_seconds: float = Field(
        default=60.0, gt=0, description="How often beat evaluates the follow-up rules."
    )
    followup_batch_size: int = Field(
        default=200,
        ge=1,
        description="Most subjects one rule fires on per evaluation; the rest fire at the next.",
    )
    notify_allow_private: bool = Field(
        default=False,
        description=(
            "Allow notifications to private, loopback and link-local addresses (tests,"
            " receivers on an internal network)."
        ),
    )
    notify_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect timeout of one notification POST."
    )
    notify_read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Read timeout of one notification POST."
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, description="Attempts at one notification before it is failed."
    )
    notify_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts at a notification."
    )

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port_is_none(cls, value: object) -> object:
        # CRM_METRICS_PORT= (set but empty, as a Procfile's ${VAR:-} leaves it): no port.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("support_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(str(item).strip().lower() for item in value if str(item).strip())
        return value

    def resolved_database_url(self) -> str:
        """The database URL, falling back to the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'crm.sqlite3').resolve()}"

    def resolved_broker_url(self) -> str:
        """The broker URL, falling back to the embedded SQLite broker."""
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.var_dir / 'broker.sqlite3').resolve()}"

    def resolved_mail_url(self) -> str:
        """The outbound mail URL, falling back to one .eml file per message in var/outbox."""
        if self.mail_url:
            return self.mail_url
        return f"file://{(self.var_dir / 'outbox').resolve()}"

    def resolved_public_url(self) -> str:
        """The base URL of links in outgoing mail: the setting, else (embedded default only)
        ``DEFAULT_PUBLIC_URL``.

        With a real database the platform runs behind an address only the
        deployment knows; a loopback default would put dead unsubscribe links
        into campaign mail, so it has to be configured.
        """
        if self.public_url:
            return self.public_url
        if self.database_url:
            raise MissingSettingError("CRM_PUBLIC_URL must be set when CRM_DATABASE_URL is")
        return DEFAULT_PUBLIC_URL

    def resolved_secret_key(self) -> str:
        """The signing secret: the setting, else (embedded default only) a generated one.

        With a real database several machines must agree on the key, so it has to
        be configured; on one machine it is generated once and kept, mode 0600,
        in ``<var_dir>/secret_key``, so links stay valid across restarts.
        """
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured
        if self.database_url:
            raise MissingSecretKeyError("CRM_SECRET_KEY must be set when CRM_DATABASE_URL is")
        return _read_or_create_secret(self.ensure_var_dir() / SECRET_KEY_FILE)

    def resolved_encryption_keys(self) -> list[str]:
        """The keys secrets at rest are encrypted under, newest first.

        Like the secret key: required with a real database, where every process
        must hold the same keys; on one machine generated once into
        ``<var_dir>/encryption_key`` (mode 0600).
        """
        configured = self.encryption_keys.get_secret_value()
        if configured:
            return [key.strip() for key in configured.split(",") if key.strip()]
        if self.database_url:
            raise MissingSettingError("CRM_ENCRYPTION_KEYS must be set when CRM_DATABASE_URL is")
        path = self.ensure_var_dir() / ENCRYPTION_KEY_FILE
        return [_read_or_create_secret(path, make=_new_fernet_key, setting="CRM_ENCRYPTION_KEYS")]

    def resolved_log_format(self) -> str:
        """``json`` or ``console``: the setting, else JSON with a real database."""
        if self.log_format:
            return self.log_format
        return "json" if self.database_url else "console"

    @property
    def broker_is_embedded(self) -> bool:
        return self.resolved_broker_url().startswith(("sqla+", "sqlalchemy+"))

    @property
    def broker_is_redis(self) -> bool:
        return self.resolved_broker_url().startswith(("redis://", "rediss://"))

    def resolved_ratelimit_url(self) -> str:
        """Rate-limit storage: explicit, else the broker's Redis, else this process's memory."""
        if self.ratelimit_url:
            return self.ratelimit_url
        if self.broker_is_redis:
            return self.resolved_broker_url()
        return "memory://"

    def ensure_var_dir(self) -> Path:
        """Create the directory for embedded files, when any default is in use."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return self.var_dir

    def extra_freemail_domain_list(self) -> list[str]:
        """``extra_freemail_domains`` split into lower-case domains."""
        parts = (part.strip().lower() for part in self.extra_freemail_domains.split(","))
        return [part for part in parts if part]


def _new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def _new_fernet_key() -> str:
    # The form cryptography's Fernet takes: url-safe base64 of 32 random bytes.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _read_or_create_secret(
    path: Path, *, make: Callable[[], str] = _new_secret_key, setting: str = "CRM_SECRET_KEY"
) -> str:
    """The key kept at ``path``, written there first (made by ``make``) if absent.

    The new key goes to a private temporary file that is hard-linked into
    place: the link fails if another process won the race, and then both use
    the winner's key. Nobody ever reads a half-written file.
    """
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if not key:
        raise MissingSecretKeyError(f"{path} is empty; delete it or set {setting}")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
