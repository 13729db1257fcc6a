"""Settings, read from ``CRM_*`` environment variables (twelve-factor).

Every setting has a default that works on a fresh machine with no services:
a SQLite database and an embedded SQLite-backed broker under ``./var/``.
Point ``CRM_DATABASE_URL`` at PostgreSQL and ``CRM_BROKER_URL`` at Redis (or
RabbitMQ) to run on real services; no code changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    max_json_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest JSON webhook body accepted (bytes)."
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
        default=6000, ge=0, description="Requests per minute per source (0: unlimited)."
    )
    ratelimit_url: str = Field(
        default="",
        description="Rate-limit storage (limits URL). Default: the broker's Redis, else memory.",
    )
    ratelimit_prefix: str = Field(
        default="crm", description="Namespace of the rate-limit keys in shared storage."
    )
    handler_modules: list[str] = Field(
        default_factory=list,
        description="Extra modules whose import registers event handlers (a JSON list).",
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
