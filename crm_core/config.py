"""Settings, read from ``CRM_*`` environment variables (twelve-factor).

Every setting has a default that works on a fresh machine with no services:
a SQLite database and an embedded SQLite-backed broker under ``./var/``.
Point ``CRM_DATABASE_URL`` at PostgreSQL and ``CRM_BROKER_URL`` at Redis (or
RabbitMQ) to run on real services; no code changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    """All configuration of the platform; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    var_dir: Path = Field(
        default=DEFAULT_VAR_DIR,
        description="Where the embedded defaults keep their files (database, broker, beat state).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the record. Default: SQLite file var/crm.sqlite3.",
    )
    broker_url: str = Field(
        default="",
        description="Celery broker URL. Default: embedded SQLite broker var/broker.sqlite3.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:5000",
        description="Base URL at which this platform is reachable by people and senders.",
    )
    db_pool_size: int = Field(default=5, ge=1, description="Connections kept per process.")
    db_pool_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for one.")
    readiness_timeout: float = Field(
        default=2.0, gt=0, description="Seconds /readyz waits for the database and broker."
    )
    heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="How often beat asks a worker to record a heartbeat."
    )
    log_level: str = Field(default="INFO", description="Log level of web and worker processes.")
    sla_first_response_hours: dict[str, float] = Field(
        default={"urgent": 1, "high": 4, "normal": 24, "low": 72},
        description="Hours to the first response of a new case, by priority (JSON object).",
    )
    max_attachments: int = Field(
        default=20, ge=0, description="Attachments recorded per e-mail; the rest are counted."
    )
    max_attachment_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=0,
        description="Total decoded bytes of the attachments recorded per e-mail.",
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

    @property
    def broker_is_embedded(self) -> bool:
        return self.resolved_broker_url().startswith(("sqla+", "sqlalchemy+"))

    @property
    def broker_is_redis(self) -> bool:
        return self.resolved_broker_url().startswith(("redis://", "rediss://"))

    def ensure_var_dir(self) -> Path:
        """Create the directory for embedded files, when any default is in use."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return self.var_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
